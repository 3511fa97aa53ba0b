"""Keras BatchNormalization run by TensorFlow's fused kernel.

Keras's layer computes its batch moments, the normalisation and their gradients
as a dozen elementwise ops over the whole map, and under a bf16 policy it casts
the map to float32 and back around them, so a bf16 step spends more time in
BatchNorm than a float32 one (docs/DESIGN_NOTES.md, bench/profile_ops.py). The
fused kernel does the forward and the backward in one op each, in the input's
dtype with float32 statistics:

    y = γ·(x − μ_B)/√(σ²_B + ε) + β          (training: the batch's μ_B, σ²_B)
    y = γ·(x − μ)/√(σ² + ε) + β              (inference: the moving μ, σ²)
    μ ← m·μ + (1 − m)·μ_B,  σ² ← m·σ² + (1 − m)·σ²_B

Same function, same weights, same moving statistics as Keras's layer (Keras's
biased batch variance; the kernel's unbiased one is scaled back by (n − 1)/n).
It takes NHWC maps in float32/bfloat16/float16 on one replica; anything else
runs Keras's own ops: float64, other ranks, masks, renorm, ε below the kernel's
minimum, and synchronized statistics (one_loss.synchronized_batchnorm sets those
under a strategy).

KERNEL installs it on the layer objects of a network (ogan_ign.kernels), so the
saved network stays plain Keras; networks.BatchNorm is the same as a class, kept
for .keras files saved when the networks used it.
"""

import keras
import tensorflow as tf
from keras import layers

from ogan_ign import kernels

KINDS = ("keras", "fused")  # the choices of --batchnorm


def fusable(layer, inputs, mask=None):
    """Whether the fused kernel computes `layer`'s call on `inputs`."""
    return (keras.backend.backend() == "tensorflow" and mask is None
            and not layer.synchronized and not layer.renorm
            and layer.epsilon >= 1.001e-5
            and len(inputs.shape) == 4 and layer.axis in (3, -1)
            and keras.backend.standardize_dtype(inputs.dtype)
            in ("float32", "bfloat16", "float16"))


def fused_call(layer, inputs, training=None):
    """`layer`'s BatchNormalization of `inputs` (where `fusable`) by the fused
    kernel, updating its moving statistics in training."""
    channels = inputs.shape[-1]
    gamma = (keras.ops.cast(layer.gamma, "float32") if layer.scale
             else tf.ones([channels], tf.float32))
    beta = (keras.ops.cast(layer.beta, "float32") if layer.center
            else tf.zeros([channels], tf.float32))
    if training and layer.trainable:
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=layer.epsilon, is_training=True)
        shape = tf.shape(inputs)
        count = tf.cast(shape[0] * shape[1] * shape[2], tf.float32)
        variance = variance * (count - 1.0) / count
        momentum = layer.momentum
        layer.moving_mean.assign(
            keras.ops.cast(layer.moving_mean, "float32") * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(
            keras.ops.cast(layer.moving_variance, "float32") * momentum
            + variance * (1.0 - momentum))
    else:
        outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta,
            mean=keras.ops.cast(layer.moving_mean, "float32"),
            variance=keras.ops.cast(layer.moving_variance, "float32"),
            epsilon=layer.epsilon, is_training=False)
    return keras.ops.cast(outputs, layer.compute_dtype)


def qualifies(layer):
    """Keras's BatchNormalization itself (a subclass may compute something else)."""
    return type(layer) is layers.BatchNormalization


def _make(layer):
    keras_call = layer.call  # the class's method, bound

    def call(inputs, training=None, mask=None):
        if fusable(layer, inputs, mask):
            return fused_call(layer, inputs, training)
        return keras_call(inputs, training=training, mask=mask)
    return "call", call


KERNEL = kernels.Kernel("fused", qualifies, _make)
