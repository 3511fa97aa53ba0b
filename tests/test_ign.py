"""Tests for IGN (arXiv 2311.01462): its losses, the single-loss form against the
paper's copy-based form, Fourier noise, the model API, saving, and coverage."""

import json
import os
import subprocess
import sys
import tempfile

import pytest
import imageio.v3 as iio
import keras
import numpy as np
import tensorflow as tf

from float64 import float64
from ogan_ign import distances, evaluation, ign, losses, networks


def small_f(image_size=8, channels=1, name="f"):
    """A BN-free conv f, so one gradient test involves no batch statistics."""
    x_in = keras.Input((image_size, image_size, channels))
    h = keras.layers.Conv2D(6, 3, padding="same", activation="tanh")(x_in)
    h = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="tanh")(h)
    h = keras.layers.Conv2DTranspose(channels, 3, strides=2, padding="same")(h)
    out = keras.layers.Activation("tanh", dtype=keras.config.floatx())(h)
    return keras.Model(x_in, out, name=name)


def paper_loss(f, f_copy, x_real, z, model):
    """The paper's own formulation (its Algorithm 1 + sec. 2.3): a frozen copy f′
    carries L_idem, and L_tight runs the trained f on a detached f(z)."""
    kind = model.distance  # the paper's D: l1 or l2
    f_x = f(x_real, training=True)
    f_z = f(z, training=True)
    f_z_detached = tf.stop_gradient(f_z)
    ff_z = f(f_z_detached, training=True)
    f_copy_f_z = f_copy(f_z, training=True)
    l_rec = distances.ign_distance(f_x, x_real, kind)
    l_idem = distances.ign_distance(f_copy_f_z, f_z, kind)
    l_tight = -distances.ign_distance(ff_z, f_z_detached, kind)
    if model.tight_clamp is not None:
        scale = tf.stop_gradient(model.tight_clamp * tf.reduce_mean(l_rec))
        l_tight = tf.tanh(l_tight / scale) * scale
    total = (model.lambda_rec * tf.reduce_mean(l_rec)
             + model.lambda_idem * tf.reduce_mean(l_idem)
             + model.lambda_tight * tf.reduce_mean(l_tight))
    if model.lambda_diversity:  # a generator term: on f(z), f's own weights
        total += model.lambda_diversity / (distances.mode_seeking_ratio(f_z, z) + 1e-5)
    return total


class LossTest(tf.test.TestCase):

    def test_clamp_bounds(self):
        l_rec, a = tf.constant(0.2), 1.5
        l_tight = -tf.constant([0.0, 1e-4, 0.1, 0.3, 1.0, 100.0])
        clamped = losses.tightness_clamp(l_tight, l_rec, a).numpy()
        bound = a * 0.2
        self.assertTrue(np.all(clamped <= 0.0))
        self.assertTrue(np.all(clamped >= -bound))
        self.assertAllClose(clamped[:2], [0.0, -1e-4], atol=1e-8)  # identity near 0
        self.assertAllClose(clamped[-1], -bound, atol=1e-6)  # saturates at −a·L_rec
        self.assertAllClose(clamped[3], np.tanh(-0.3 / bound) * bound)
        self.assertAllClose(losses.tightness_clamp(l_tight, l_rec, None), l_tight)
        # Saturation is what the clamp is for: no push on fakes already far off.
        with tf.GradientTape() as tape:
            tape.watch(l_tight)
            out = losses.tightness_clamp(l_tight, l_rec, a)
        grad = tape.gradient(out, l_tight).numpy()
        self.assertAllClose(grad[0], 1.0)
        self.assertLess(grad[-1], 1e-6)

    def test_ign_loss_value_and_terms(self):
        # f(y) = 2y: δ(y) = |f(y) − y| = |y|, so δ(x) = |x| and δ(f(z)) = 2|z|.
        x_in = keras.Input((1,))
        f = keras.Model(x_in, keras.layers.Rescaling(2.0)(x_in))
        x_real = tf.constant([[0.1], [0.3]])   # δ(x) = (0.1, 0.3)
        z = tf.constant([[0.25], [0.35]])      # δ(f(z)) = (0.5, 0.7)
        loss = losses.IGNLoss(lambda_rec=20.0, lambda_idem=20.0, lambda_tight=2.5,
                              tight_clamp=None, distance="l1")
        total, terms = loss(f, x_real, z)
        # L_idem's two terms have value 0: the total is λ_rec·0.2 − λ_tight·0.6.
        self.assertAllClose(total, 20.0 * 0.2 - 2.5 * 0.6)
        self.assertAllClose(terms["ign/rec"], 0.2)
        self.assertAllClose(terms["ign/idem"], 0.6)
        self.assertAllClose(terms["ign/tight"], -0.6)

    def test_mode_seeking_by_hand(self):
        # Pairs (z_0, z_2), (z_1, z_3) of one pixel each (z_4 unpaired):
        # |f(z) − f(z′)| / |z − z′| = 0.5 / 1 and 0 / 2, mean 0.25.
        z = tf.constant([[0.0], [1.0], [1.0], [3.0], [7.0]])
        f_z = tf.constant([[0.5], [0.2], [0.0], [0.2], [9.0]])
        self.assertAllClose(distances.mode_seeking_ratio(f_z, z), 0.25)
        # f(y) = 2y: r = 2, and the total gains λ_div / (2 + 1e-5).
        x_in = keras.Input((1,))
        f = keras.Model(x_in, keras.layers.Rescaling(2.0)(x_in))
        x_real, z = tf.constant([[0.1], [0.3]]), tf.constant([[0.25], [0.35]])
        plain = losses.IGNLoss(tight_clamp=None)
        seeking = losses.IGNLoss(tight_clamp=None, lambda_diversity=0.5)
        (base, _), (total, terms) = plain(f, x_real, z), seeking(f, x_real, z)
        self.assertAllClose(terms["ign/diversity"], 2.0)
        self.assertAllClose(total - base, 0.5 / (2.0 + 1e-5))

    def test_bad_settings_are_one_line_errors(self):
        with self.assertRaisesRegex(ValueError, "unknown distance 'l3'"):
            losses.IGNLoss(distance="l3")
        with self.assertRaisesRegex(ValueError, "tight_clamp must be positive"):
            losses.IGNLoss(tight_clamp=0.0)
        with self.assertRaisesRegex(ValueError, "lambda_diversity must be ≥ 0"):
            losses.IGNLoss(lambda_diversity=-1.0)


class GradientEquivalenceTest(tf.test.TestCase):
    """The stop-gradient loss gives f exactly the paper's copy-based gradients."""

    def setUp(self):
        super().setUp()
        self._float64 = float64()
        self._float64.__enter__()
        keras.utils.set_random_seed(3)

    def tearDown(self):
        self._float64.__exit__(None, None, None)
        super().tearDown()

    def gradients(self, f, tight_clamp, image_size, channels, distance="l1",
                  lambda_diversity=0.0):
        f_copy = keras.models.clone_model(f)
        f_copy.set_weights(f.get_weights())
        # Frozen by taking gradients for f's variables only. Not `trainable =
        # False`: in Keras that also switches BatchNorm to its moving statistics,
        # while the paper's copy (requires_grad off) still uses batch statistics.
        model = ign.IGN(f, tight_clamp=tight_clamp, distance=distance,
                        lambda_diversity=lambda_diversity)
        rng = np.random.default_rng(0)
        x_real = tf.constant(rng.uniform(-1, 1, (4, image_size, image_size, channels)))
        z = tf.constant(rng.normal(size=(4, image_size, image_size, channels)))
        variables = f.trainable_variables
        with tf.GradientTape(persistent=True) as tape:
            terms = model.compute_terms(x_real, z)
            ours = terms["loss/total"]
            theirs = paper_loss(f, f_copy, x_real, z, model)
            # Without the stop-gradient, L_idem would also train the outer f.
            naive = (ours + model.lambda_idem * tf.reduce_mean(
                distances.ign_distance(f(tf.stop_gradient(f(z, training=True)), training=True),
                                    tf.stop_gradient(f(z, training=True)), model.distance)))
        self.assertEqual(ours.dtype, tf.float64)
        # Values differ by λ_idem·L_idem: in the single loss that term has value 0.
        self.assertAllClose(ours + model.lambda_idem * terms["ign/idem"], theirs,
                            rtol=1e-10, atol=1e-12)
        g_ours = tape.gradient(ours, variables)
        g_theirs = tape.gradient(theirs, variables)
        g_naive = tape.gradient(naive, variables)
        return g_ours, g_theirs, g_naive

    def check(self, f, tight_clamp, image_size, channels, distance="l1", lambda_diversity=0.0):
        g_ours, g_theirs, g_naive = self.gradients(f, tight_clamp, image_size, channels,
                                                   distance, lambda_diversity)
        self.assertEqual(len(g_ours), len(f.trainable_variables))
        for a, b in zip(g_ours, g_theirs):
            self.assertIsNotNone(a)
            self.assertAllClose(a, b, rtol=1e-8, atol=1e-12)
        differs = [not np.allclose(a, b, rtol=1e-6) for a, b in zip(g_ours, g_naive)]
        self.assertTrue(any(differs), "the comparison cannot tell the forms apart")

    def test_small_f_clamp_off(self):
        self.check(small_f(), None, 8, 1)

    def test_small_f_clamp_on(self):
        self.check(small_f(), 1.5, 8, 1)

    def test_small_f_edges_distance(self):
        self.check(small_f(), 1.5, 8, 1, distance="l1_edges")

    def test_dcgan_autoencoder_edges_distance(self):
        f = networks.dcgan_autoencoder(32, 3, latent=8, width=4)
        self.check(f, 1.5, 32, 3, distance="l1_edges")

    def test_small_f_random_features_distance(self):
        self.check(small_f(), 1.5, 8, 1, distance="l1_random_features")

    def test_small_f_mode_seeking(self):
        self.check(small_f(), 1.5, 8, 1, lambda_diversity=0.5)

    def test_dcgan_autoencoder_with_batchnorm_clamp_off(self):
        # BN in training mode: both forms call f on the same inputs in the same mode.
        f = networks.dcgan_autoencoder(28, 1, latent=8, width=4)
        self.check(f, None, 28, 1)

    def test_dcgan_autoencoder_with_batchnorm_clamp_on(self):
        f = networks.dcgan_autoencoder(32, 3, latent=8, width=4)
        self.check(f, 1.5, 32, 3)

    def test_dcgan_autoencoder_with_groupnorm(self):
        f = networks.dcgan_autoencoder(32, 3, latent=8, width=4, norm="group")
        self.check(f, 1.5, 32, 3)

    def test_dcgan_autoencoder_with_spatial_code(self):
        f = networks.dcgan_autoencoder(32, 1, latent=32, width=4, code="spatial")
        self.check(f, 1.5, 32, 1)

    def test_controlled_lambda_tight_keeps_the_paper_gradients(self):
        # With the control on, the step's λ_tight is the weight's value: the
        # gradients are still the paper's form with that λ_tight.
        keras.utils.set_random_seed(3)
        f = small_f()
        f_copy = keras.models.clone_model(f)
        f_copy.set_weights(f.get_weights())
        model = ign.IGN(f, lambda_tight=3.0, tight_target=0.7, tight_gain=0.05)
        rng = np.random.default_rng(0)
        x_real = tf.constant(rng.uniform(-1, 1, (4, 8, 8, 1)))
        z = tf.constant(rng.normal(size=(4, 8, 8, 1)))
        with tf.GradientTape(persistent=True) as tape:
            terms = model.compute_terms(x_real, z)
            theirs = paper_loss(f, f_copy, x_real, z, model)  # model.lambda_tight = 3.0
        self.assertAllClose(terms["ign/lambda_tight"], 3.0)
        for a, b in zip(tape.gradient(terms["loss/total"], f.trainable_variables),
                        tape.gradient(theirs, f.trainable_variables)):
            self.assertAllClose(a, b, rtol=1e-8, atol=1e-12)
        # … and the weight moved by the control, by hand.
        ratio = float(terms["ign/idem"]) / float(terms["ign/rec"])
        self.assertAllClose(model.tight_weight, 3.0 + 0.05 * (0.7 - ratio), rtol=1e-12)
        self.assertNotAllClose(model.tight_weight, 3.0)


class FourierNoiseTest(tf.test.TestCase):

    def data(self, n=400, size=8, channels=2):
        # Structured images: a fixed pattern, a random brightness, smooth noise.
        rng = np.random.default_rng(1)
        grid = np.linspace(-1, 1, size)
        pattern = np.sin(3 * grid)[:, None] * np.cos(2 * grid)[None, :]
        images = (pattern[None, :, :, None] * rng.uniform(0.5, 1.5, (n, 1, 1, channels))
                  + 0.3 * rng.normal(size=(n, size, size, channels)))
        return np.cumsum(images, axis=1) / size  # low-pass along one axis

    def test_spectrum_matches_data(self):
        images = self.data()
        stats = ign.fourier_statistics(images)
        noise = ign.fourier_noise(stats, 6000, seed=[5, 0]).numpy()
        self.assertEqual(noise.shape, (6000,) + images.shape[1:])
        got = ign.fourier_statistics(noise)
        mean_re, mean_im, std_re, std_im = stats
        scale = np.maximum(np.sqrt(std_re**2 + std_im**2), 1e-3)
        self.assertLess(np.max(np.abs(got[0] - mean_re) / scale), 0.1)
        self.assertLess(np.max(np.abs(got[1] - mean_im) / scale), 0.1)
        # Where the data's part varies, the noise's varies as much (within 10 %).
        for k in (2, 3):
            mask = stats[k] > 1e-3 * stats[k].max()
            ratio = got[k][mask] / stats[k][mask]
            self.assertAllInRange(ratio, 0.9, 1.1)
            if np.any(~mask):  # e.g. Im F at the self-conjugate frequencies
                self.assertAllLess(got[k][~mask], 1e-3 * stats[k].max() + 1e-6)
        # Plain Gaussian noise does not match: the test can tell.
        gauss = ign.fourier_statistics(np.random.default_rng(2).normal(size=noise.shape))
        self.assertGreater(np.max(np.abs(gauss[2] / np.maximum(stats[2], 1e-3) - 1)), 0.5)

    def test_temperature_spreads_the_noise_about_its_mean(self):
        stats = ign.fourier_statistics(self.data())
        # The noise's mean by hand: the inverse transform of the mean spectrum.
        spectrum = (stats[0] + 1j * stats[1]).astype(np.complex128)
        mean = np.real(np.fft.ifft2(spectrum, axes=(0, 1)))
        plain = ign.fourier_noise(stats, 5, seed=[3, 1]).numpy()
        for tau in (0.5, 1.5):
            spread = ign.fourier_noise(stats, 5, seed=[3, 1], temperature=tau).numpy()
            self.assertAllClose(spread, mean + tau * (plain - mean), atol=1e-5)
        self.assertGreater(np.abs(plain - mean).max(), 0.1)  # the check can fail
        # A model samples at its temperature; it trains, and standing statistics
        # are measured, on the noise at τ = 1.
        for noise in ("gaussian", "fourier"):
            with self.subTest(noise=noise):
                f = small_f(8, 2)
                hot, plain_model = (ign.IGN(f, noise=noise, temperature=t) for t in (1.5, 1.0))
                if noise == "fourier":
                    for model in (hot, plain_model):
                        model.adapt(self.data())
                m = mean if noise == "fourier" else 0.0
                z = plain_model.make_noise(4, seed=2)
                self.assertAllClose(hot.make_noise(4, seed=2), m + 1.5 * (z - m), atol=1e-5)
                self.assertAllClose(hot.training_noise(4, seed=2), z)
                self.assertAllClose(hot.sample_noise(4, step=3),
                                    plain_model.sample_noise(4, step=3))

    def test_model_saves_statistics(self):
        images = self.data(size=28, channels=1)
        model = ign.IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=4), noise="fourier",
                        temperature=1.25)
        with self.assertRaises(tf.errors.InvalidArgumentError):
            model.generate(2)  # not adapted yet: fail loudly, not zeros
        model.adapt(images)
        model.compile()
        path = os.path.join(tempfile.mkdtemp(), "ign.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded, ign.IGN)
        self.assertEqual((loaded.noise, loaded.temperature), ("fourier", 1.25))
        self.assertAllClose(loaded.spectrum, ign.fourier_statistics(images))
        self.assertAllClose(loaded.generate(3, seed=7), model.generate(3, seed=7))


class ModelTest(tf.test.TestCase):

    def test_one_step_each_shape(self):
        for size, channels, noise in ((28, 1, "gaussian"), (28, 3, "fourier"),
                                      (32, 1, "fourier"), (32, 3, "gaussian")):
            with self.subTest(size=size, channels=channels, noise=noise):
                keras.utils.set_random_seed(0)
                f = networks.dcgan_autoencoder(size, channels, latent=8, width=4)
                model = ign.IGN(f, noise=noise)
                x = np.random.default_rng(0).uniform(-1, 1, (4, size, size, channels))
                x = x.astype("float32")
                if noise == "fourier":
                    model.adapt(x)
                model.compile()
                before = [v.numpy() for v in f.trainable_variables]
                logs = model.train_step(tf.constant(x))
                for name in ("loss/total", "ign/rec", "ign/idem", "ign/tight",
                             "gap/ff_z", "gap/f_z"):
                    self.assertTrue(np.isfinite(float(logs[name])), name)
                self.assertEqual(int(model.optimizer.iterations), 1)
                moved = [not np.allclose(a, b.numpy())
                         for a, b in zip(before, f.trainable_variables)]
                self.assertTrue(all(moved))
                # A (x, z) batch is used as given.
                z = tf.zeros_like(x)
                logs = model.train_step((tf.constant(x), z))
                self.assertTrue(np.isfinite(float(logs["loss/total"])))

    def test_api_shapes_and_k(self):
        keras.utils.set_random_seed(0)
        model = ign.IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=4))
        self.assertEqual(model.generate(5).shape, (5, 28, 28, 1))
        self.assertAllClose(model.generate(3, seed=1), model.generate(3, seed=1))
        z = tf.random.normal((2, 28, 28, 1))
        self.assertAllClose(model.generate(z), model.f(z))
        outs = model.apply(z, 3)
        self.assertLen(outs, 3)
        self.assertAllClose(outs[2], model.f(model.f(model.f(z))))
        self.assertAllClose(model.project(z), outs[0])

    def test_tight_control_by_hand(self):
        # λ ← max(0, λ + gain·(γ − δ(f(z)) / δ(x))).
        self.assertAllClose(ign.tight_control(2.5, 0.04, 0.08, 0.7, 0.01), 2.5 + 0.01 * 0.2)
        self.assertAllClose(ign.tight_control(2.5, 0.12, 0.08, 0.7, 0.01), 2.5 - 0.01 * 0.8)
        self.assertAllClose(ign.tight_control(0.001, 0.12, 0.08, 0.5, 0.01), 0.0)

    def test_the_controlled_lambda_tight_trains_saves_and_reports(self):
        keras.utils.set_random_seed(0)
        model = ign.IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=4),
                        tight_target=0.5, tight_gain=0.1)
        model.compile()
        x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)), tf.float32)
        weights = [float(model.tight_weight)]
        for _ in range(2):
            logs = model.train_step(x)
            weights.append(float(model.tight_weight))
        self.assertEqual(weights[0], model.lambda_tight)
        self.assertNotEqual(weights[1], weights[0])
        # The logs average the λ_tight of each step: the two used ones.
        self.assertAllClose(logs["ign/lambda_tight"], (weights[0] + weights[1]) / 2)
        path = os.path.join(self.get_temp_dir(), "controlled.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        self.assertEqual((loaded.tight_target, loaded.tight_gain), (0.5, 0.1))
        self.assertAllClose(loaded.tight_weight, weights[-1])
        # Off (the paper): no weight, no extra log.
        plain = ign.IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=4))
        self.assertNotIn("ign/lambda_tight", plain.metric_names())
        self.assertFalse(hasattr(plain, "tight_weight"))

    def test_rejects_bad_arguments(self):
        f = networks.dcgan_autoencoder(28, 1, latent=8, width=4)
        with self.assertRaisesRegex(ValueError, "distance"):
            ign.IGN(f, distance="cos")
        with self.assertRaisesRegex(ValueError, "noise"):
            ign.IGN(f, noise="uniform")
        with self.assertRaisesRegex(ValueError, "tight_clamp"):
            ign.IGN(f, tight_clamp=-1.0)
        for target, gain in ((0.0, 0.01), (0.5, 0.0), (-1.0, 0.01)):
            with self.assertRaisesRegex(ValueError, "tight_target > 0 and tight_gain > 0"):
                ign.IGN(f, tight_target=target, tight_gain=gain)
        for temperature in (0.0, -1.0):
            with self.assertRaisesRegex(ValueError, "temperature must be > 0"):
                ign.IGN(f, temperature=temperature)


class CoverageTest(tf.test.TestCase):

    def test_counts_present_classes_and_max_share(self):
        # A "classifier" that reads the class off the first pixel.
        x_in = keras.Input((4, 4, 1))
        flat = keras.layers.Flatten()(x_in)
        logits = keras.layers.Lambda(lambda t: -tf.abs(t[:, :1] - tf.range(10, dtype=t.dtype)))(flat)
        classifier = keras.Model(x_in, logits)
        labels = np.array([0] * 70 + [1] * 25 + [2] * 4 + [3])
        images = np.zeros((100, 4, 4, 1), np.float32)
        images[:, 0, 0, 0] = labels
        result = evaluation.class_coverage(classifier, images, min_share=0.02)
        self.assertEqual(result["counts"], [70, 25, 4, 1, 0, 0, 0, 0, 0, 0])
        self.assertEqual(result["classes_present"], 3)  # class 3 (1 %) is below 2 %
        self.assertAllClose(result["max_share"], 0.7)
        collapsed = evaluation.class_coverage(classifier, np.zeros_like(images))
        self.assertEqual(collapsed["classes_present"], 1)
        self.assertAllClose(collapsed["effective_classes"], 1.0)


@pytest.mark.slow
class ScriptTest(tf.test.TestCase):

    def test_train_ign_writes_its_figures_metrics_and_model(self):
        out = os.path.join(tempfile.mkdtemp(), "run")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        result = subprocess.run(
            [sys.executable, os.path.join(root, "train_ign.py"), f"--out_dir={out}",
             "--image_size=28", "--width=4", "--latent=16", "--steps=4", "--batch_size=8",
             "--sample_every=2", "--num_samples=16", "--fourier_examples=256",
             "--coverage_samples=0"],
            capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
        self.assertEqual(result.returncode, 0, msg=result.stderr[-2000:])
        for kind in ("samples", "idempotence", "projections"):
            for step in (2, 4):
                path = os.path.join(out, kind, f"{step:08d}.png")
                self.assertTrue(os.path.exists(path), path)
        # idempotence rows: z | f(z) | f²(z) | f³(z), 29 px a cell with padding
        picture = iio.imread(os.path.join(out, "idempotence", "00000004.png"))
        self.assertEqual(picture.shape[1], 4 * 29 + 1)
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual(metrics["steps"], 4)
        self.assertTrue(np.isfinite(metrics["gap_ff_z"]) and np.isfinite(metrics["gap_f_z"]))
        # The script's default export: a sampling copy of f with its own statistics.
        exported = keras.saving.load_model(os.path.join(out, "model.keras"))
        self.assertIsNotNone(exported.f_sampling)
        self.assertEqual((exported.lambda_rec, exported.lambda_tight, exported.tight_target,
                          exported.temperature), (40.0, 2.5, 0.8, 1.05))
        with open(os.path.join(out, "config.json")) as f:
            self.assertEqual(json.load(f)["lr_decay"], 0.5)


if __name__ == "__main__":
    tf.test.main()
