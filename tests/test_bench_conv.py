"""flops.filter_gradient_as_conv (bench_conv.py's comparison) equals
TensorFlow's Conv2DBackpropFilter on the networks' geometries (5×5 and 4×4
kernels, stride 2, SAME padding, even and odd map sides)."""

import os
import sys

import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import flops  # noqa: E402  (bench/ is not a package)


class FilterGradientTest(tf.test.TestCase):

    def test_equals_the_backprop_filter_kernel(self):
        rng = np.random.default_rng(0)
        for size, k, c_in, c_out in ((8, 5, 3, 4), (4, 5, 2, 3), (8, 4, 2, 5), (7, 5, 2, 2),
                                     (2, 4, 3, 2)):
            with self.subTest(size=size, k=k):
                out = (size + 1) // 2
                x = tf.constant(rng.normal(size=(3, size, size, c_in)), tf.float32)
                dy = tf.constant(rng.normal(size=(3, out, out, c_out)), tf.float32)
                expected = tf.raw_ops.Conv2DBackpropFilter(
                    input=x, filter_sizes=[k, k, c_in, c_out], out_backprop=dy,
                    strides=[1, 2, 2, 1], padding="SAME")
                self.assertAllClose(flops.filter_gradient_as_conv(x, dy, k, 2), expected,
                                    atol=1e-4)

    def test_equals_the_tape_gradient_of_a_conv(self):
        """The hand-written sum itself: d/dw of Σ dy·conv(x, w) by the tape."""
        rng = np.random.default_rng(1)
        x = tf.constant(rng.normal(size=(2, 6, 6, 2)), tf.float32)
        dy = tf.constant(rng.normal(size=(2, 3, 3, 3)), tf.float32)
        w = tf.Variable(tf.zeros((5, 5, 2, 3)))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(dy * tf.nn.conv2d(x, w, 2, "SAME"))
        self.assertAllClose(flops.filter_gradient_as_conv(x, dy, 5, 2),
                            tape.gradient(loss, w), atol=1e-4)
