"""Per-layer training cost of one network: where a model's step time goes.

    PYTHONPATH=. nice python bench/bench_layers.py [--net ign|encoder|generator]
        [--size 32] [--precision fp32|bf16] [--batch_size 64] [--batchnorm auto|keras|fused]

Each layer of the network (the library's default at width 64) runs alone in a
tf.function, forward and backward (gradients of the input and the weights),
on a random input of its own input shape; the median of 15 timed runs is
printed with the FLOP rate of the conv and dense layers (6 × multiply-adds per
image, as in bench_scale.py). The last line compares the sum of the layers
with the whole network, forward and backward, timed the same way. Run it for
fp32 and bf16 to see which layers gain from bf16 and which lose. The default
runs BatchNorm as the training scripts do (`--batchnorm`'s default: TensorFlow's
fused kernel, ogan_ign.fused_batchnorm); `--batchnorm keras` as Keras's own ops.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags
from flops import layer_macs, resolve_batchnorm
from ogan_ign import fused_batchnorm, kernels, networks, training

FLAGS = flags.FLAGS
flags.DEFINE_enum("net", "ign", ["ign", "encoder", "generator"], "which network")
flags.DEFINE_integer("size", 32, "image side")
flags.DEFINE_enum("precision", "fp32", ["fp32", "bf16"], "compute precision")
flags.DEFINE_integer("batch_size", 64, "images per call")
flags.DEFINE_enum("batchnorm", "auto", ["auto", "keras", "fused"],
                  "keras: BatchNorm as Keras's ops; fused: on TensorFlow's fused kernel; auto: "
                  "--batchnorm's default in the scripts")


def median_ms(fn, repeats=15):
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        tf.nest.map_structure(lambda t: t.numpy(), fn())
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def forward_backward(fn, x, variables):
    @tf.function
    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(fn(x), tf.float32))
        return tape.gradient(loss, [x] + variables)
    return run


def main(_):
    batch = FLAGS.batch_size
    batchnorm = resolve_batchnorm(FLAGS.batchnorm)
    with training.precision_policy(FLAGS.precision):
        keras.utils.set_random_seed(0)
        net = {"ign": lambda: networks.dcgan_autoencoder(FLAGS.size, 3, latent=512),
               "encoder": lambda: networks.dcgan_encoder(FLAGS.size, 3, z_dim=128),
               "generator": lambda: networks.dcgan_generator(FLAGS.size, 3, z_dim=128)}[FLAGS.net]()
        if batchnorm == "fused":
            kernels.install(net, fused_batchnorm.KERNEL)
        total = 0.0
        print(f"{'layer':18} {'type':20} {'input':22} {'ms':>7} {'GFLOP/s':>8}")
        for layer in net.layers[1:]:
            shape = (batch,) + tuple(layer.input.shape[1:])
            x = tf.random.normal(shape)
            ms = median_ms(forward_backward(lambda v, l=layer: l(v, training=True), x,
                                            layer.trainable_variables))
            total += ms
            rate = 6 * layer_macs(layer) * batch / ms / 1e6
            print(f"{layer.name:18} {type(layer).__name__:20} {str(shape):22} {ms:7.2f} "
                  + (f"{rate:8.1f}" if rate else f"{'':8}"), flush=True)
        x = tf.random.normal((batch,) + tuple(net.input.shape[1:]))
        whole = median_ms(forward_backward(lambda v: net(v, training=True), x,
                                           net.trainable_variables))
        print(f"sum of the layers {total:.2f} ms; the whole network {whole:.2f} ms "
              f"({FLAGS.net}, {FLAGS.size} px, {FLAGS.precision}, batch {batch}, "
              f"{batchnorm} BatchNorm)")


if __name__ == "__main__":
    app.run(main)
