"""bench/op_trace.py, profile_ops.py's reading of TensorFlow's profiler trace: a
real trace of a small conv's forward and backward pass must yield the three conv
kernels under the right roles and layer; the name parsing is checked on
hand-written names."""

import os
import sys

import keras
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import op_trace  # noqa: E402  (bench/ is not a package)
from ogan_ign import conv_gradient, kernels  # noqa: E402


def traced_step(net):
    """op_trace.traced_ops of two forward and backward passes of `net` on a
    (2, 8, 8, 2) batch, the gradients of its input and of its weights."""
    x = tf.random.normal((2, 8, 8, 2))

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(net(x)))
        grads = tape.gradient(loss, [x] + net.trainable_weights)
        # Every result is used, so that no kernel is pruned from the graph.
        return loss + tf.add_n([tf.reduce_sum(g) for g in grads])

    run()
    return op_trace.traced_ops(run, 2)


class NameTest(tf.test.TestCase):

    def test_roles(self):
        self.assertEqual(op_trace.role("encoder_1/conv1_1/convolution", "_MklNativeConv2D"),
                         "forward")
        tape = "gradient_tape/encoder_1/conv1_1/convolution/"
        self.assertEqual(op_trace.role(tape + "Conv2DBackpropFilter",
                                          "_MklNativeConv2DBackpropFilter"), "filter gradient")
        self.assertEqual(op_trace.role(tape + "Conv2DBackpropInput",
                                          "_MklNativeConv2DBackpropInput"), "input gradient")
        # A transposed conv: forward is a BackpropInput op, its input gradient a Conv2D.
        self.assertEqual(op_trace.role("generator_1/deconv0_1/conv_transpose",
                                          "_MklNativeConv2DBackpropInput"), "forward")
        self.assertEqual(op_trace.role("gradient_tape/generator_1/deconv0_1/conv_transpose/"
                                          "Conv2D", "_MklNativeConv2D"), "input gradient")
        self.assertEqual(op_trace.role("gradient_tape/x/Mul", "Mul"), "other gradient")
        # ogan_ign.conv_gradient's filter gradient: a Conv2D and transposes.
        scope = "gradient_tape/encoder_1/conv1_1/filter_gradient/"
        for name, op_type in (("Conv2D", "_MklNativeConv2D"), ("transpose_1", "Transpose")):
            self.assertEqual(op_trace.role(scope + name, op_type), "filter gradient")

    def test_where(self):
        classes = {("encoder", "conv1"): "Conv2D", ("encoder", "bn1"): "BatchNormalization"}
        self.assertEqual(op_trace.where("gradient_tape/encoder_3/bn1_1/moments/Tile", classes),
                         ("encoder", "BatchNormalization"))
        self.assertEqual(op_trace.where("encoder_5/conv1_1/convolution", classes),
                         ("encoder", "Conv2D"))
        self.assertEqual(op_trace.where("rm_sprop/Mul_63", classes), ("—", "optimizer"))
        self.assertEqual(op_trace.where("Mean_2", classes), ("—", "loss, averages, other"))


class TraceTest(tf.test.TestCase):

    def test_conv_forward_and_backward(self):
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(4, 3, name="conv")],
                               name="net")
        wall_ms, events = traced_step(net)
        self.assertGreater(wall_ms, 0)
        classes = op_trace.layer_classes(keras.Sequential([net]))
        found = {(op_trace.where(name, classes), op_trace.role(name, op_type))
                 for name, op_type, _ in events if "Conv2D" in op_type}
        self.assertEqual(found, {(("net", "Conv2D"), role) for role in
                                 ("forward", "input gradient", "filter gradient")})

    def test_the_filter_gradient_as_a_conv_is_filed_under_its_layer(self):
        keras.utils.set_random_seed(0)
        net = keras.Sequential([keras.Input((8, 8, 2)),
                                keras.layers.Conv2D(4, 3, strides=2, padding="same",
                                                    name="conv"),
                                keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same",
                                                             name="deconv")], name="net")
        self.assertEqual(kernels.install(net, conv_gradient.KERNEL), 2)
        _, events = traced_step(net)
        classes = op_trace.layer_classes(keras.Sequential([net]))
        found = {(op_trace.where(name, classes), op_trace.role(name, op_type))
                 for name, op_type, _ in events
                 if "Conv2D" in op_type and "BackpropFilter" not in op_type}
        self.assertEqual(found, {((net.name, kind), role)
                                 for kind in ("Conv2D", "Conv2DTranspose")
                                 for role in ("forward", "input gradient", "filter gradient")})
