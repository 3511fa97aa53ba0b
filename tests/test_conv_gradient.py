"""conv_gradient: the filter gradient as a forward convolution equals
TensorFlow's Conv2DBackpropFilter on the networks' geometries (5×5 and 4×4
kernels, stride 2, SAME padding, even and odd map sides); the convolutions that
use it have Keras's values and the tape's gradients (float64); installing it
(ogan_ign.kernels) leaves
the networks plain Keras and their training step unchanged."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import conv_gradient, ign, kernels, networks, ogan
from tests.float64 import float64


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
                self.assertAllClose(conv_gradient.filter_gradient_as_conv(x, dy, k, 2), expected,
                                    atol=1e-4)

    def test_equals_the_tape_gradient_of_a_conv(self):
        """The hand-written sum itself: d/dw of Σ dy·conv(x, w) by the tape."""
        rng = np.random.default_rng(1)
        x = tf.constant(rng.normal(size=(2, 6, 6, 2)), tf.float32)
        dy = tf.constant(rng.normal(size=(2, 3, 3, 3)), tf.float32)
        w = tf.Variable(tf.zeros((5, 5, 2, 3)))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(dy * tf.nn.conv2d(x, w, 2, "SAME"))
        self.assertAllClose(conv_gradient.filter_gradient_as_conv(x, dy, 5, 2),
                            tape.gradient(loss, w), atol=1e-4)


def _maps(rng, *shape):
    return tf.constant(rng.normal(size=shape), tf.float64)


class ConvolutionsTest(tf.test.TestCase):
    """conv2d and conv2d_transpose: TensorFlow's values, the tape's gradients."""

    def check(self, ours, theirs, x, kernel):
        weights = tf.constant(np.random.default_rng(9).normal(size=theirs(x, kernel).shape))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([x, kernel])
            y_ours, y_theirs = ours(x, kernel), theirs(x, kernel)
            # A loss whose gradient dy is not constant, so a wrong index shows.
            l_ours = tf.reduce_sum(weights * y_ours ** 2)
            l_theirs = tf.reduce_sum(weights * y_theirs ** 2)
        self.assertAllClose(y_ours, y_theirs, rtol=1e-12, atol=1e-12)
        for a, b in zip(tape.gradient(l_ours, [x, kernel]), tape.gradient(l_theirs, [x, kernel])):
            self.assertAllClose(a, b, rtol=1e-10, atol=1e-10)

    def test_conv2d(self):
        rng = np.random.default_rng(2)
        for size, k, stride in ((8, 5, 2), (7, 4, 2), (6, 3, 1), (4, 5, 2)):
            with self.subTest(size=size, k=k, stride=stride):
                self.check(lambda x, w: conv_gradient.conv2d(x, w, stride),
                           lambda x, w: tf.nn.conv2d(x, w, stride, "SAME"),
                           _maps(rng, 2, size, size, 3), _maps(rng, k, k, 3, 4))

    def test_conv2d_transpose(self):
        rng = np.random.default_rng(3)
        for size, k, stride in ((4, 5, 2), (7, 4, 2), (3, 3, 1)):
            with self.subTest(size=size, k=k, stride=stride):
                def theirs(x, w):
                    shape = [2, size * stride, size * stride, 4]
                    return tf.nn.conv2d_transpose(x, w, shape, stride, "SAME")
                self.check(lambda x, w: conv_gradient.conv2d_transpose(x, w, stride), theirs,
                           _maps(rng, 2, size, size, 3), _maps(rng, k, k, 4, 3))


class InstallTest(tf.test.TestCase):

    def nets(self):
        return (networks.dcgan_encoder(32, 3, z_dim=8, width=4),
                networks.dcgan_generator(32, 3, z_dim=8, width=4),
                networks.dcgan_autoencoder(32, 3, latent=8, width=4))

    def test_every_conv_of_the_networks_with_a_small_large_map_qualifies(self):
        for net in self.nets():
            convs = [l for l in net.layers if isinstance(l, (layers.Conv2D,
                                                             layers.Conv2DTranspose))]
            # The large map: a Conv2D's input, a Conv2DTranspose's output (32 px nets:
            # 32×32 for the outermost convolutions, 16×16 and less inside).
            sides = [(l.output if isinstance(l, layers.Conv2DTranspose) else l.input).shape[1]
                     for l in convs]
            self.assertIn(32, sides)
            convs = [l for l, side in zip(convs, sides) if side <= conv_gradient.LARGEST_MAP]
            self.assertNotEmpty(convs)
            self.assertEqual(kernels.install(net, conv_gradient.KERNEL), len(convs), net.name)
            self.assertEqual(kernels.install(net, conv_gradient.KERNEL), 0)  # idempotent
            self.assertEqual(kernels.installed(net), len(convs))
            kernels.uninstall(net)
            self.assertEqual(kernels.installed(net), 0)

    def test_valid_padding_is_left_alone(self):
        self.assertFalse(conv_gradient.qualifies(layers.Conv2D(2, 3, padding="valid")))
        self.assertFalse(conv_gradient.qualifies(layers.Conv2D(2, 3, dilation_rate=2,
                                                               padding="same")))
        self.assertTrue(conv_gradient.qualifies(layers.Conv2D(2, 3, strides=2, padding="same")))

    def test_a_large_map_above_the_bound_keeps_tensorflows_kernel(self):
        bound = conv_gradient.LARGEST_MAP
        for side, expected in ((bound, True), (2 * bound, False)):
            x = keras.Input((side, side, 2))
            conv = layers.Conv2D(3, 4, strides=2, padding="same")
            deconv = layers.Conv2DTranspose(2, 4, strides=2, padding="same")
            keras.Model(x, deconv(conv(x)))  # the deconv's large map is its output: side
            self.assertEqual(conv_gradient.large_side(conv), side)
            self.assertEqual(conv_gradient.large_side(deconv), side)
            self.assertEqual(conv_gradient.qualifies(conv), expected, side)
            self.assertEqual(conv_gradient.qualifies(deconv), expected, side)

    def test_same_values_and_gradients_float64(self):
        with float64():
            rng = np.random.default_rng(4)
            for net in self.nets():
                with self.subTest(net=net.name):
                    x = tf.constant(rng.normal(size=(3,) + net.input_shape[1:]))
                    before = self.value_and_gradients(net, x)
                    kernels.install(net, conv_gradient.KERNEL)
                    after = self.value_and_gradients(net, x)
                    kernels.uninstall(net)
                    self.assertAllClose(after[0], before[0], rtol=1e-12, atol=1e-12)
                    for a, b in zip(after[1], before[1]):
                        self.assertAllClose(a, b, rtol=1e-9, atol=1e-12)

    @staticmethod
    def value_and_gradients(net, x):
        @tf.function
        def run(x):
            with tf.GradientTape() as tape:
                y = net(x, training=True)
                loss = tf.reduce_sum(tf.sin(3.0 * tf.cast(y, tf.float64)))
            return y, tape.gradient(loss, net.trainable_variables)
        return run(x)

    def test_saved_network_is_plain_keras(self):
        net = networks.dcgan_generator(32, 3, z_dim=8, width=4)
        config = net.get_config()
        kernels.install(net, conv_gradient.KERNEL)
        self.assertEqual(net.get_config(), config)
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "g.keras")
            net.save(path)
            loaded = keras.saving.load_model(path)  # no custom objects
        self.assertEqual(kernels.installed(loaded), 0)
        self.assertTrue(all(type(l) in (layers.Conv2DTranspose, layers.Dense,
                                        layers.BatchNormalization, layers.ReLU,
                                        layers.Reshape, layers.Activation, layers.InputLayer)
                            for l in loaded.layers))
        z = np.random.default_rng(5).normal(size=(2, 8)).astype(np.float32)
        self.assertAllClose(loaded(z), net(z), atol=1e-6)

    def test_bfloat16_gradients_as_accurate_as_kerass(self):
        # Under mixed bf16 the convolutions compute in bfloat16 and each kernel's
        # gradient reaches its float32 variable. Against the float32 step of the
        # same weights, the filter gradient as a convolution errs no more than
        # Keras's own bf16 kernels do (within 2×, per variable).
        from ogan_ign import training
        rng = np.random.default_rng(6)
        with training.precision_policy("bf16"):
            net = networks.dcgan_autoencoder(32, 3, latent=8, width=4)
        reference = networks.dcgan_autoencoder(32, 3, latent=8, width=4)
        reference.set_weights(net.get_weights())
        x = tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)), tf.float32)
        exact = self.value_and_gradients(reference, x)[1]
        native = self.value_and_gradients(net, x)
        kernels.install(net, conv_gradient.KERNEL)
        ours = self.value_and_gradients(net, x)
        self.assertAllClose(ours[0], native[0], atol=1e-6)  # the forward is Keras's
        for a, b, r, v in zip(ours[1], native[1], exact, net.trainable_variables):
            self.assertEqual(a.dtype, v.dtype)
            error, keras_error = float(tf.norm(a - r)), float(tf.norm(b - r))
            self.assertLessEqual(error, 2 * keras_error + 1e-3 * float(tf.norm(r)), v.path)
