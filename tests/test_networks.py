"""Every builder, every supported size and channel count: shapes and ranges."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import fused_batchnorm, kernels, networks
from tests.float64 import float64


class DcganTest(tf.test.TestCase):

    def test_every_size_and_channel_count(self):
        rng = np.random.default_rng(0)
        for size in networks.SUPPORTED_SIZES:
            for channels in (1, 3):
                with self.subTest(size=size, channels=channels):
                    # width 4 keeps 256 px cheap; the layout is the same at any width
                    g = networks.dcgan_generator(size, channels, z_dim=16, width=4)
                    e = networks.dcgan_encoder(size, channels, z_dim=16, width=4)
                    x = g(rng.normal(size=(2, 16)).astype("float32") * 10.0, training=False)
                    self.assertEqual(x.shape, (2, size, size, channels))
                    self.assertAllInRange(x, -1.0, 1.0)
                    self.assertEqual(e(x, training=False).shape, (2, 16))

    def test_original_channel_plan(self):
        # The original O-GAN code has image_size·8 channels at the 4×4 map.
        for size in (32, 64, 128, 256):
            base, stages, widths = networks.dcgan_plan(size)
            self.assertEqual(base, 4)
            self.assertEqual(size // 2**stages, 4)
            self.assertEqual(widths[-1], size * 8)
            self.assertEqual(widths[0], 64)
        self.assertEqual(networks.dcgan_plan(28), (7, 2, [64, 128]))

    def test_layers_follow_the_original(self):
        e = networks.dcgan_encoder(32, 3, z_dim=8, width=4, kernel_size=5)
        convs = [l for l in e.layers if l.name.startswith("conv")]
        self.assertLen(convs, 3)
        self.assertEqual(convs[0].kernel_size, (5, 5))
        self.assertEqual(convs[0].strides, (2, 2))
        self.assertFalse(convs[0].use_bias)
        names = [l.name for l in e.layers]
        self.assertNotIn("bn0", names)  # no BatchNorm on the first encoder layer
        self.assertIn("bn1", names)
        self.assertEqual(e.get_layer("lrelu0").negative_slope, 0.2)
        g = networks.dcgan_generator(32, 3, z_dim=8, width=4, kernel_size=4)
        self.assertEqual(g.get_layer("deconv0").kernel_size, (4, 4))
        self.assertAllClose(np.std(g.get_layer("deconv0").kernel.numpy()), 0.02, atol=0.004)

    def test_unsupported_size(self):
        with self.assertRaisesRegex(ValueError, "unsupported image size 48"):
            networks.dcgan_encoder(48, 3)

    def test_chosen_generator(self):
        # The scripts' --generator / --kernel_size pick the builder and every kernel.
        for name, kernel_size in (("dcgan", 5), ("selfmod", 4), ("selfmod", 5)):
            with self.subTest(generator=name, kernel_size=kernel_size):
                choice = networks.DCGANChoice(kernel_size=kernel_size, generator=name)
                g = networks.chosen_generator(choice, 32, 1, z_dim=8, width=4)
                modulated = [l for l in g.layers if isinstance(l, networks.ScaleShift)]
                self.assertLen(modulated, 3 if name == "selfmod" else 0)
                self.assertEqual(g.get_layer("deconv0").kernel_size, (kernel_size,) * 2)
                self.assertEqual(g(np.zeros((2, 8), "float32")).shape, (2, 32, 32, 1))
        with self.assertRaisesRegex(ValueError, "^--kernel_size must be one of 4, 5, got 3$"):
            networks.chosen_generator(networks.DCGANChoice(kernel_size=3), 32, 1, 8, 4)


class AutoencoderTest(tf.test.TestCase):

    def test_dense_code_layers_equal_the_papers_valid_convolutions(self):
        # IGN's f writes the paper's whole-map valid convolution (smallest map →
        # 1×1×latent) and its transpose (1×1 → map) as Dense layers. Carry the
        # Dense weights into the convolution form and compare, float64.
        for size, channels in ((28, 1), (32, 3)):
            with self.subTest(size=size), float64():
                f = networks.dcgan_autoencoder(size, channels, latent=6, width=4)
                base, _, widths = networks.dcgan_plan(size, 4)
                c = widths[-1]
                h = keras.Input((base, base, c))
                code = layers.Conv2D(6, base, padding="valid")(h)
                out = layers.Conv2DTranspose(c, base, padding="valid", use_bias=False)(code)
                conv_form = keras.Model(h, out)
                latent, project = f.get_layer("latent"), f.get_layer("dec_project")
                kernel, bias = latent.get_weights()
                conv_form.layers[1].set_weights([kernel.reshape(base, base, c, 6), bias])
                # Conv2DTranspose kernels are (kh, kw, out, in).
                transposed = project.get_weights()[0].reshape(6, base, base, c)
                conv_form.layers[2].set_weights([transposed.transpose(1, 2, 3, 0)])
                dense_form = keras.Model(f.get_layer("enc_lrelu" + str(len(widths) - 1)).output,
                                         f.get_layer("dec_reshape").output)
                maps = np.random.default_rng(size).normal(size=(3, base, base, c))
                self.assertAllClose(dense_form(maps), conv_form(maps), rtol=1e-12, atol=1e-12)
                # Bad weight plumbing would not pass: a transposed kernel in the
                # wrong axis order gives another map.
                conv_form.layers[2].set_weights([transposed.transpose(2, 1, 3, 0)])
                self.assertNotAllClose(dense_form(maps), conv_form(maps), atol=1e-6)


def _op_types(fn, *args):
    return {op.type for op in tf.function(fn).get_concrete_function(*args).graph.get_operations()}


class BatchNormTest(tf.test.TestCase):
    """networks.BatchNorm runs TF's fused kernel; it must be Keras's BatchNorm."""

    @staticmethod
    def fused(**kwargs):
        return networks.BatchNorm(**kwargs)

    def pair(self, channels=3, **kwargs):
        """The library's layer and Keras's, with the same random weights and
        moving statistics (so the moving updates start from non-trivial values)."""
        rng = np.random.default_rng(channels)
        weights = [rng.uniform(0.5, 1.5, channels), rng.normal(size=channels),
                   rng.normal(size=channels), rng.uniform(0.5, 2.0, channels)]
        ours = self.fused(momentum=0.9, **kwargs)
        theirs = layers.BatchNormalization(momentum=0.9, **kwargs)
        for layer in (ours, theirs):
            layer.build((None, 2, 2, channels))
            affine = weights[:2] if kwargs.get("scale", True) else []
            layer.set_weights([w.astype(layer.variable_dtype) for w in affine + weights[2:]])
        return ours, theirs

    def step(self, layer, x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
        grads = tape.gradient(y, [x] + layer.trainable_variables, output_gradients=dy)
        return [y] + grads + [v.numpy() for v in layer.non_trainable_variables]

    def test_fused_step_equals_keras_batchnorm(self):
        # n = 4·2·2 = 16 values per channel: the fused kernel's unbiased batch
        # variance is 16/15 of Keras's, so forgetting to scale it back moves the
        # moving variance by ~1e-2, far outside the tolerance.
        rng = np.random.default_rng(0)
        x = tf.constant(rng.normal(1.0, 2.0, (4, 2, 2, 3)), tf.float32)
        dy = tf.constant(rng.normal(size=(4, 2, 2, 3)), tf.float32)
        ours, theirs = self.pair()
        self.assertIn("FusedBatchNormV3", _op_types(lambda t: ours(t, training=True), x))
        self.assertNotIn("FusedBatchNormV3", _op_types(lambda t: theirs(t, training=True), x))
        for a, b in zip(self.step(ours, x, dy), self.step(theirs, x, dy)):
            self.assertAllClose(a, b, rtol=1e-5, atol=1e-5)
        # Inference normalises with the (updated) moving statistics.
        self.assertAllClose(ours(x, training=False), theirs(x, training=False), atol=1e-5)
        # Without affine weights (the self-modulated generator's BatchNorm).
        ours, theirs = self.pair(center=False, scale=False)
        for a, b in zip(self.step(ours, x, dy), self.step(theirs, x, dy)):
            self.assertAllClose(a, b, rtol=1e-5, atol=1e-5)

    def test_unbiased_moving_variance_would_fail(self):
        # The check above can see the (n − 1)/n correction: without it, the
        # moving variance after one step differs by momentum-weighted var/15.
        rng = np.random.default_rng(1)
        x = tf.constant(rng.normal(0.0, 3.0, (4, 2, 2, 3)), tf.float32)
        ours, theirs = self.pair()
        ours(x, training=True)
        theirs(x, training=True)
        _, unbiased, _ = tf.compat.v1.nn.fused_batch_norm(
            x, tf.ones(3), tf.zeros(3), epsilon=1e-3, is_training=True)
        _, variance = tf.nn.moments(x, [0, 1, 2])
        self.assertNotAllClose(unbiased, variance, atol=1e-2)
        self.assertAllClose(ours.moving_variance, theirs.moving_variance, atol=1e-5)

    def test_falls_back_where_the_kernel_cannot_run(self):
        rng = np.random.default_rng(2)
        x = tf.constant(rng.normal(size=(4, 2, 2, 3)), tf.float32)
        dy = tf.constant(rng.normal(size=(4, 2, 2, 3)), tf.float32)
        ours, theirs = self.pair()
        ours.synchronized = True  # what one_loss.synchronized_batchnorm sets under a strategy
        self.assertNotIn("FusedBatchNormV3", _op_types(lambda t: ours(t, training=True), x))
        for a, b in zip(self.step(ours, x, dy), self.step(theirs, x, dy)):
            self.assertAllClose(a, b, rtol=1e-6, atol=1e-6)
        with float64():  # the gradient tests' dtype: no fused kernel for it
            ours, theirs = self.pair()
            x64, dy64 = tf.cast(x, tf.float64), tf.cast(dy, tf.float64)
            for a, b in zip(self.step(ours, x64, dy64), self.step(theirs, x64, dy64)):
                self.assertAllClose(a, b, rtol=1e-12, atol=1e-12)
        flat = self.fused()  # rank 2
        self.assertAllClose(flat(tf.ones((2, 5)), training=True), tf.zeros((2, 5)))

    def test_xla_and_stateless_call(self):
        # The XLA-compiled per-replica step (one_loss.py) runs layers statelessly
        # inside jit_compile: the moving statistics must come back as outputs.
        rng = np.random.default_rng(3)
        x = tf.constant(rng.normal(2.0, 1.5, (4, 2, 2, 3)), tf.float32)
        ours, theirs = self.pair()

        @tf.function(jit_compile=True)
        def pure(trainable, non_trainable, x):
            return ours.stateless_call(trainable, non_trainable, x, training=True)

        y, stats = pure([v.value for v in ours.trainable_variables],
                        [v.value for v in ours.non_trainable_variables], x)
        self.assertAllClose(y, theirs(x, training=True), atol=1e-5)
        self.assertAllClose(stats, [v.numpy() for v in theirs.non_trainable_variables],
                            atol=1e-5)
        # The layer's own variables were not touched.
        self.assertNotAllClose(stats[1], ours.moving_variance.numpy(), atol=1e-3)

    def test_bfloat16(self):
        rng = np.random.default_rng(4)
        x = tf.constant(rng.normal(size=(8, 4, 4, 3)), tf.float32)
        ours, theirs = self.pair(dtype="mixed_bfloat16")
        y = ours(x, training=True)
        self.assertEqual(y.dtype, tf.bfloat16)
        self.assertAllClose(tf.cast(y, tf.float32), tf.cast(theirs(x, training=True), tf.float32),
                            atol=3e-2)
        self.assertEqual(ours.moving_variance.dtype, "float32")
        self.assertAllClose(ours.moving_variance, theirs.moving_variance, atol=1e-3)

    def test_builders_use_keras_own_layer(self):
        # A saved sub-network must load without ogan_ign (tests/test_export.py).
        for model in (networks.dcgan_encoder(32, 3, width=4),
                      networks.dcgan_generator(32, 3, width=4),
                      networks.selfmod_generator(32, 3, width=4),
                      networks.dcgan_autoencoder(32, 3, latent=8, width=4)):
            norms = [l for l in model.layers if isinstance(l, layers.BatchNormalization)]
            self.assertNotEmpty(norms)
            self.assertTrue(all(type(l) is layers.BatchNormalization for l in norms), model.name)


    def test_groupnorm_f_is_the_same_in_training_and_inference(self):
        # What norm="group" is for: f's output on a batch does not depend on the
        # mode or on the other images of the batch; BatchNorm's does (the control).
        rng = np.random.default_rng(3)
        x = tf.constant(rng.uniform(-1, 1, (6, 32, 32, 3)), tf.float32)
        group = networks.dcgan_autoencoder(32, 3, latent=8, width=8, norm="group")
        norms = [l for l in group.layers if isinstance(l, layers.GroupNormalization)]
        self.assertLen(norms, 5)  # two encoder, three decoder (GroupNorm's "gn" names)
        self.assertTrue(all("gn" in l.name and type(l) is layers.GroupNormalization
                            for l in norms))
        self.assertEmpty([l for l in group.layers if isinstance(l, layers.BatchNormalization)])
        self.assertEqual([l.groups for l in norms], [16, 32, 32, 16, 8])  # gcd(32, channels)
        self.assertAllClose(group(x, training=True), group(x, training=False), atol=1e-6)
        self.assertAllClose(group(x[:2], training=True), group(x, training=True)[:2], atol=1e-6)
        batch = networks.dcgan_autoencoder(32, 3, latent=8, width=8)
        self.assertNotAllClose(batch(x, training=True), batch(x, training=False), atol=1e-3)

    def test_spatial_code_keeps_the_map_layout(self):
        # 32 px: the smallest map is 4×4, so latent 64 → a 4×4×4 code; each code
        # entry depends only on its own position of the encoder's last map.
        f = networks.dcgan_autoencoder(32, 1, latent=64, width=4, code="spatial")
        code = f.get_layer("latent")
        self.assertEqual(tuple(code.output.shape[1:]), (4, 4, 4))
        self.assertEqual(f.output_shape, (None, 32, 32, 1))
        encoder = keras.Model(f.input, code.input)
        coder = keras.Model(code.input, code.output)
        maps = np.random.default_rng(5).normal(size=(2, 4, 4, 16)).astype(np.float32)
        changed = maps.copy()
        changed[:, 0, 0] += 1.0
        moved = np.abs(coder(changed).numpy() - coder(maps).numpy()).max(axis=(0, 3))
        self.assertGreater(moved[0, 0], 0)
        self.assertAllEqual(moved.ravel()[1:], np.zeros(15))
        self.assertEqual(encoder.output_shape, (None, 4, 4, 16))

    def test_residual_blocks_extend_the_paper_f(self):
        # blocks=1 at 32 px: one block after each upsampling but the last, at 8×8
        # and 16×16; with a block's second convolution zeroed its branch is 0 after
        # BatchNorm (β = 0), so f is the blocks=0 f with the same weights.
        rng = np.random.default_rng(4)
        x = tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)), tf.float32)
        plain = networks.dcgan_autoencoder(32, 3, latent=8, width=4)
        f = networks.dcgan_autoencoder(32, 3, latent=8, width=4, blocks=1)
        adds = [l for l in f.layers if isinstance(l, layers.Add)]
        self.assertEqual([tuple(l.output.shape[1:]) for l in adds], [(8, 8, 8), (16, 16, 4)])
        names = {l.name for l in plain.layers}
        self.assertTrue(names <= {l.name for l in f.layers})
        control = networks.dcgan_autoencoder(32, 3, latent=8, width=4, blocks=1)
        for layer in plain.layers:
            f.get_layer(layer.name).set_weights(layer.get_weights())
            control.get_layer(layer.name).set_weights(layer.get_weights())
        expected = plain(x, training=True)  # one training call each: equal statistics
        self.assertNotAllClose(control(x, training=True), expected, atol=1e-4)
        for add in adds:
            conv = f.get_layer(add.name.replace("_add", "_conv1"))
            conv.kernel.assign(tf.zeros_like(conv.kernel))
        self.assertAllClose(f(x, training=True), expected, atol=1e-6)
        self.assertAllClose(f(x), plain(x), atol=1e-7)
        blocks2 = networks.dcgan_autoencoder(32, 3, latent=8, width=4, blocks=2)
        self.assertLen([l for l in blocks2.layers if isinstance(l, layers.Add)], 4)
        self.assertEqual(blocks2.count_params() - f.count_params(),
                         f.count_params() - plain.count_params())

    def test_unknown_norm_is_refused(self):
        with self.assertRaisesRegex(ValueError, "unknown norm 'instance'; expected one of"):
            networks.dcgan_autoencoder(32, 3, latent=8, width=4, norm="instance")
        with self.assertRaisesRegex(ValueError, "unknown code 'conv'; expected one of"):
            networks.dcgan_autoencoder(32, 3, latent=8, width=4, code="conv")
        with self.assertRaisesRegex(ValueError, "blocks must be 0 or more, got -1"):
            networks.dcgan_autoencoder(32, 3, latent=8, width=4, blocks=-1)


class FusedKernelTest(BatchNormTest):
    """The same checks for what training runs (--batchnorm fused): Keras's own
    layer with fused_batchnorm.KERNEL installed on the object."""

    @staticmethod
    def fused(**kwargs):
        layer = layers.BatchNormalization(**kwargs)
        if kernels.install(layer, fused_batchnorm.KERNEL) != 1:
            raise AssertionError("the kernel was not installed")
        return layer

    def test_only_kerass_own_layer_qualifies_and_uninstall_restores_it(self):
        self.assertFalse(fused_batchnorm.qualifies(networks.BatchNorm()))
        self.assertFalse(fused_batchnorm.qualifies(layers.LayerNormalization()))
        x = tf.ones((4, 2, 2, 3))
        layer = self.fused()
        self.assertIn("FusedBatchNormV3", _op_types(lambda t: layer(t, training=True), x))
        kernels.uninstall(layer)
        self.assertEqual(kernels.installed(layer), 0)
        self.assertNotIn("FusedBatchNormV3", _op_types(lambda t: layer(t, training=True), x))

    def test_saved_network_is_plain_keras(self):
        net = networks.dcgan_encoder(32, 3, z_dim=8, width=4)
        config = net.get_config()
        norms = [l for l in net.layers if isinstance(l, layers.BatchNormalization)]
        self.assertEqual(kernels.install(net, fused_batchnorm.KERNEL), len(norms))
        self.assertEqual(net.get_config(), config)
        x = np.random.default_rng(5).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
        net(x, training=True)  # moves the statistics through the kernel
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "e.keras")
            net.save(path)
            loaded = keras.saving.load_model(path)  # no custom objects
        self.assertEqual(kernels.installed(loaded), 0)
        self.assertTrue(all(type(l) is layers.BatchNormalization for l in loaded.layers
                            if isinstance(l, layers.BatchNormalization)))
        self.assertAllClose(loaded(x), net(x), atol=1e-5)


class MlpTest(tf.test.TestCase):

    def test_shapes(self):
        g = networks.mlp_generator(z_dim=5, data_dim=2)
        c = networks.mlp_critic(data_dim=2, out_dim=3)
        x = g(tf.zeros((4, 5)))
        self.assertEqual(x.shape, (4, 2))
        self.assertEqual(c(x).shape, (4, 3))


class SelfModulationTest(tf.test.TestCase):

    def test_scale_shift_is_h_times_gamma_plus_one_plus_beta(self):
        h = tf.random.normal((2, 3, 3, 4))
        beta, gamma = tf.random.normal((2, 4)), tf.random.normal((2, 4))
        out = networks.ScaleShift()([h, beta, gamma])
        self.assertAllClose(out, h * (gamma[:, None, None] + 1) + beta[:, None, None])

    def test_generator_is_modulated_by_z(self):
        keras.utils.set_random_seed(0)
        g = networks.selfmod_generator(32, 3, z_dim=8, width=4)
        self.assertEqual(g.output_shape, (None, 32, 32, 3))
        bn = [layer for layer in g.layers if isinstance(layer, keras.layers.BatchNormalization)]
        self.assertNotEmpty(bn)
        self.assertTrue(all(not layer.center and not layer.scale for layer in bn))
        # With the γ/β nets zeroed the generator must ignore how z modulates it,
        # so the difference below is the modulation's own effect.
        z = tf.random.normal((4, 8))
        before = g(z, training=True)
        for layer in g.layers:
            if layer.name.endswith(("_beta", "_gamma")):
                for w in layer.weights:
                    w.assign(tf.zeros_like(w))
        after = g(z, training=True)
        self.assertGreater(float(tf.reduce_max(tf.abs(before - after))), 1e-6)


if __name__ == "__main__":
    tf.test.main()
