"""Every builder, every supported size and channel count: shapes and ranges."""

import numpy as np
import tensorflow as tf

from ogan_ign import networks


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


class MlpTest(tf.test.TestCase):

    def test_shapes(self):
        g = networks.mlp_generator(z_dim=5, data_dim=2)
        c = networks.mlp_critic(data_dim=2, out_dim=3)
        x = g(tf.zeros((4, 5)))
        self.assertEqual(x.shape, (4, 2))
        self.assertEqual(c(x).shape, (4, 3))


if __name__ == "__main__":
    tf.test.main()
