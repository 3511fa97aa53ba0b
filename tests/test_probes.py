"""The linear probes of ogan_ign.evaluation (O-GAN's encoder is scored by them): they
separate informative features from noise, and the logistic fit reaches its optimum,
checked by the optimum's gradient and by a hand-solved one-dimensional case."""

import numpy as np
import tensorflow as tf

from ogan_ign import evaluation


class LinearProbeTest(tf.test.TestCase):

    def test_probes_separate_informative_features_only(self):
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 3, 600)
        informative = np.eye(3)[labels] * 4 + rng.normal(size=(600, 3))
        noise = rng.normal(size=(600, 3))
        for name, probe in evaluation.PROBES.items():
            with self.subTest(probe=name):
                good = probe(informative[:400], labels[:400], informative[400:], labels[400:])
                chance = probe(noise[:400], labels[:400], noise[400:], labels[400:])
                self.assertGreater(good, 0.95)
                self.assertLess(chance, 0.5)

    def test_logistic_fit_reaches_the_optimum(self):
        """At the minimum of mean cross-entropy + l2/2·|W|², the gradient is zero:
        (1/N)·Xᵀ(softmax(XW + b) − Y) + l2·W = 0 and the mean of softmax − Y = 0."""
        rng = np.random.default_rng(1)
        x = rng.normal(size=(300, 4))
        labels = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
        l2 = 1e-2
        weights, bias = evaluation.logistic_fit(x, labels, l2=l2, iterations=2000)
        logits = x @ weights + bias
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        residual = p - np.eye(3)[labels]
        self.assertAllClose(x.T @ residual / len(x) + l2 * weights, np.zeros_like(weights),
                            atol=1e-10)
        self.assertAllClose(residual.mean(0), np.zeros(3), atol=1e-10)
        # Without the penalty's pull the weights would grow: they are finite and nonzero.
        self.assertGreater(float(np.abs(weights).max()), 0.1)

    def test_one_dimension_two_classes_hand_computed(self):
        """x = +1 labelled 1 and x = −1 labelled 0. By symmetry the biases are equal
        and w₀ = −w₁; with w = w₁ − w₀, the gradient in w₁ is
        (1/2)[(σ(w) − 1) − σ(−w)] + l2·w/2 = −σ(−w) + l2·w/2, zero at the optimum:
        σ(−w) = l2·w/2, solved here by bisection, apart from the fitting loop."""
        l2 = 0.1
        x, labels = np.array([[1.0], [-1.0]]), np.array([1, 0])
        weights, bias = evaluation.logistic_fit(x, labels, l2=l2, iterations=3000)
        w = float(weights[0, 1] - weights[0, 0])
        lo, hi = 0.0, 100.0
        for _ in range(200):
            mid = (lo + hi) / 2
            if 1 / (1 + np.exp(mid)) - l2 * mid / 2 > 0:
                lo = mid
            else:
                hi = mid
        self.assertAllClose(w, lo, atol=1e-8)
        self.assertAllClose(bias[1] - bias[0], 0.0, atol=1e-8)


if __name__ == "__main__":
    tf.test.main()
