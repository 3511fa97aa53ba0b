"""The filter gradient of a convolution computed as a forward convolution.

In a training step a stride-s convolution between a large map L (n, S, S, c_L)
and a small map l (n, S/s, S/s, c_l) costs three kernels of equal arithmetic:
the forward (a Conv2D: L → l; a Conv2DTranspose: l → L), the input gradient, and
the filter gradient, for both layer kinds

    dw[a, b, i, o] = Σ_{n,p,q} L_pad[n, p·s + a, q·s + b, i] · l[n, p, q, o]

(L_pad: L padded as SAME pads it). TensorFlow computes it with
Conv2DBackpropFilter. On a CPU with native bfloat16 (AVX512-BF16 here) oneDNN
runs the forward and input-gradient kernels about twice as fast in bfloat16 as
in float32 but that one no faster, so it became the largest op of a bf16 step.
The same sums are one forward convolution: a VALID convolution of L_pad with its
batch and channel axes swapped (c_L as the batch, n as the channels) by l as the
filter (its p, q as the taps, n in, o out), dilated by s.

`kernels.install(network, KERNEL)` gives each Conv2D and Conv2DTranspose of a
network that qualifies (SAME padding, one square stride and kernel, no dilation
or groups, channels last, and a large map of at most LARGEST_MAP² pixels) this
gradient, on the layer object only (ogan_ign.kernels: a saved network is plain
Keras). The forward values are Keras's; the gradients are the same sums in
another order.

The size bound: the filter of that convolution is the small map, so its taps
grow with the image. `bench/bench_conv.py` (bf16, AVX512-BF16 without AMX, the
CPU `--filter_gradient auto` installs this kernel on) times it 1.2–2.6× faster
than Conv2DBackpropFilter for large maps of 16×16 and less, and 1.1–1.8× slower
for 32×32 and 64×64 ones: those keep TensorFlow's kernel.
"""

import tensorflow as tf
from keras import layers

from ogan_ign import kernels

KINDS = ("native", "as_conv")
LARGEST_MAP = 16  # the largest side of a large map whose filter gradient is a conv


def filter_gradient_as_conv(large, small, kernel_size, stride):
    """Conv2DBackpropFilter(large, small) of a SAME-padded `stride` convolution
    with a `kernel_size`² kernel between `large` (n, S, S, c_L) and `small`
    (n, ⌈S/s⌉, ⌈S/s⌉, c_l), as one forward convolution → (k, k, c_L, c_l).
    `large` is padded as SAME pads it (the odd pixel at the end)."""
    size, out = large.shape[1], small.shape[1]
    total = max((out - 1) * stride + kernel_size - size, 0)
    pad = [[0, 0], [total // 2, total - total // 2], [total // 2, total - total // 2], [0, 0]]
    image = tf.transpose(tf.pad(large, pad), [3, 1, 2, 0])
    weights = tf.transpose(small, [1, 2, 0, 3])
    dw = tf.nn.conv2d(image, weights, 1, "VALID", dilations=stride)
    return tf.transpose(dw, [1, 2, 0, 3])


def _gradient_scope(forward_scope):
    """The name scope of a custom gradient's ops: "gradient_tape/<the forward
    op's scope>/", where a tape puts the ops of TensorFlow's own gradients (a
    custom gradient's would land at the graph's root), so that profiles
    (bench/op_trace.py) file them under their layer. Names only: no value changes."""
    return f"gradient_tape/{forward_scope}/" if forward_scope else "gradient_tape/"


def conv2d(x, kernel, stride):
    """tf.nn.conv2d(x, kernel, stride, "SAME") whose filter gradient is
    `filter_gradient_as_conv` (its ops in a "filter_gradient" name scope)."""
    scope = _gradient_scope(tf.get_current_name_scope())

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            with tf.name_scope(scope):
                dx = tf.nn.conv2d_transpose(dy, kernel, tf.shape(x), stride, "SAME")
                with tf.name_scope("filter_gradient"):
                    return dx, filter_gradient_as_conv(x, dy, kernel.shape[0], stride)
        return tf.nn.conv2d(x, kernel, stride, "SAME"), grad
    # The kernel's value (in the layer's compute dtype), read outside: the
    # gradient is the value's, which the tape passes on to the variable.
    return conv(x, tf.convert_to_tensor(kernel))


def conv2d_transpose(x, kernel, stride):
    """tf.nn.conv2d_transpose(x, kernel, (n, s·H, s·W, kernel's outputs), stride,
    "SAME") whose filter gradient is `filter_gradient_as_conv` (named as `conv2d`'s)."""
    scope = _gradient_scope(tf.get_current_name_scope())

    @tf.custom_gradient
    def conv_transpose(x, kernel):
        shape = tf.stack([tf.shape(x)[0], x.shape[1] * stride, x.shape[2] * stride,
                          kernel.shape[2]])

        def grad(dy):
            with tf.name_scope(scope):
                dx = tf.nn.conv2d(dy, kernel, stride, "SAME")
                with tf.name_scope("filter_gradient"):
                    return dx, filter_gradient_as_conv(dy, x, kernel.shape[0], stride)
        return tf.nn.conv2d_transpose(x, kernel, shape, stride, "SAME"), grad
    return conv_transpose(x, tf.convert_to_tensor(kernel))


def _square(pair):
    return len(set(pair)) == 1


def large_side(layer):
    """The side of a convolution's large map (a Conv2D's input, a Conv2DTranspose's
    output) once the layer is part of a network; None before, or for a layer
    called in several places."""
    try:
        tensor = layer.output if isinstance(layer, layers.Conv2DTranspose) else layer.input
    except (AttributeError, ValueError):
        return None
    return tensor.shape[1]


def qualifies(layer):
    """Whether KERNEL changes this layer's gradient (see the module docstring)."""
    if type(layer) not in (layers.Conv2D, layers.Conv2DTranspose):
        return False
    side = large_side(layer)
    if side is not None and side > LARGEST_MAP:
        return False
    plain = (layer.padding == "same" and layer.data_format == "channels_last"
             and _square(layer.strides) and _square(layer.kernel_size)
             and tuple(layer.dilation_rate) == (1, 1))
    if isinstance(layer, layers.Conv2DTranspose):
        return plain and layer.output_padding is None
    return plain and layer.groups == 1


def _make(layer):
    """A Conv2D's convolution_op, or a Conv2DTranspose's call, with this gradient."""
    stride = layer.strides[0]
    if not isinstance(layer, layers.Conv2DTranspose):
        return "convolution_op", lambda inputs, kernel: conv2d(inputs, kernel, stride)

    def call(inputs):
        outputs = conv2d_transpose(inputs, layer.kernel, stride)
        if layer.use_bias:
            outputs = outputs + layer.bias
        return layer.activation(outputs)
    return "call", call


KERNEL = kernels.Kernel("as_conv", qualifies, _make)
