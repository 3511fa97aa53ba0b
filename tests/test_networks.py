"""Every builder, every supported size and channel count: shapes and ranges."""

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import networks
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


class MlpTest(tf.test.TestCase):

    def test_shapes(self):
        g = networks.mlp_generator(z_dim=5, data_dim=2)
        c = networks.mlp_critic(data_dim=2, out_dim=3)
        x = g(tf.zeros((4, 5)))
        self.assertEqual(x.shape, (4, 2))
        self.assertEqual(c(x).shape, (4, 3))


if __name__ == "__main__":
    tf.test.main()
