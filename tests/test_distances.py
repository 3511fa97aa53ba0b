"""Tests for IGN's distances (ogan_ign/distances.py, ogan_ign/random_features.py):
each kind against a hand computation."""

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import distances, random_features


class DistanceTest(tf.test.TestCase):

    def test_distance_by_hand(self):
        a = tf.constant([[[1.0, -1.0], [0.0, 2.0]], [[0.0, 0.0], [0.0, 0.0]]])
        b = tf.zeros_like(a)
        self.assertAllClose(distances.ign_distance(a, b, "l1"), [1.0, 0.0])
        self.assertAllClose(distances.ign_distance(a, b, "l2"), [1.5, 0.0])
        with self.assertRaisesRegex(ValueError, "unknown distance"):
            distances.ign_distance(a, b, "l3")

    def test_edges_distance_by_hand(self):
        # One 2×3 image, d = a − b = [[1, −1, 0], [0, 2, 2]]: mean|d| = 1; down
        # differences (−1, 3, 2): mean 2; across (−2, 1), (2, 0): mean 5/4.
        a = tf.constant([[[1.0, -1.0, 0.0], [0.0, 2.0, 2.0]]])[..., None]
        b = tf.zeros_like(a)
        self.assertAllClose(distances.ign_distance(a, b, "l1_edges"), [1.0 + 2.0 + 1.25])
        self.assertAllClose(distances.ign_distance(a, b, "l1"), [1.0])
        # A constant offset has no edges: l1_edges reads it as l1 does.
        self.assertAllClose(distances.ign_distance(a + 0.5, a, "l1_edges"), [0.5])
        # An edge blurred over two pixels: d = (0, 0.5, −0.5, 0) on every row, so
        # l1 0.25, down 0, across (0.5 + 1 + 0.5) / 3: edges weigh 8/3 of the pixels.
        step = tf.constant([[0.0, 0.0, 1.0, 1.0]] * 4)[None, ..., None]
        blurred = tf.constant([[0.0, 0.5, 0.5, 1.0]] * 4)[None, ..., None]
        self.assertAllClose(distances.ign_distance(blurred, step, "l1"), [0.25])
        self.assertAllClose(distances.ign_distance(blurred, step, "l1_edges"),
                            [0.25 + 0.0 + 2.0 / 3])

    def test_random_features_by_hand(self):
        # The net written out with loops: a "same" convolution of stride 2 pads
        # max((out − 1)·2 + 3 − in, 0) zeros, the smaller half before.
        def conv_same_stride2(h, w):
            size, out = h.shape[0], -(-h.shape[0] // 2)
            before = max((out - 1) * 2 + 3 - size, 0) // 2
            padded = np.zeros((size + 4, size + 4, h.shape[2]))
            padded[before:before + size, before:before + size] = h
            y = np.zeros((out, out, w.shape[3]))
            for i in range(out):
                for j in range(out):
                    patch = padded[2 * i:2 * i + 3, 2 * j:2 * j + 3]
                    y[i, j] = np.einsum("uvc,uvcd->d", patch, w)
            return np.where(y > 0, y, 0.2 * y)

        rng = np.random.default_rng(1)
        a, b = rng.uniform(-1, 1, (2, 1, 5, 5, 2))
        expected = np.abs(a - b).mean()
        maps = []
        ha, hb = a[0], b[0]
        for w in random_features.filters(2):
            ha, hb = conv_same_stride2(ha, w), conv_same_stride2(hb, w)
            maps.append(ha)
            expected += np.abs(ha - hb).mean()
        self.assertEqual([m.shape for m in maps], [(3, 3, 32), (2, 2, 64), (1, 1, 128)])
        got = random_features.features(tf.constant(a))
        for m, g in zip(maps, got):
            self.assertAllClose(g[0], m, rtol=1e-10, atol=1e-12)
        self.assertAllClose(distances.ign_distance(tf.constant(a), tf.constant(b),
                                                "l1_random_features"), [expected], rtol=1e-10)
        self.assertAllClose(distances.ign_distance(tf.constant(a), tf.constant(a),
                                                "l1_random_features"), [0.0])

    def test_random_features_are_fixed(self):
        # Constants of the distance, not of a run: the global seed does not move them.
        first = random_features.filters(1)[0].copy()
        keras.utils.set_random_seed(123)
        random_features.filters.cache_clear()
        self.assertAllEqual(random_features.filters(1)[0], first)
        # Scale: each layer keeps its input's mean square within a factor of ~2.
        x = tf.random.stateless_normal((8, 32, 32, 1), seed=(0, 1))
        squares = [float(tf.reduce_mean(tf.square(h))) for h in random_features.features(x)]
        for s in squares:
            self.assertBetween(s, 0.3, 3.0)


if __name__ == "__main__":
    tf.test.main()
