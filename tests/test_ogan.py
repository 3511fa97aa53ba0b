"""Tests of O-GAN (arXiv 1903.01931): the loss is the original code's, term by
term and gradient by gradient; the user API; saving; and a short run in which
the encoder learns to invert the generator on Fashion-MNIST."""

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
from ogan_ign import data, losses, networks
from ogan_ign.ogan import OGAN


def tiny_ogan(z_dim=8, width=4, generator="dcgan", corr_weight=0.5, kernel_size=5, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = networks.dcgan_encoder(28, 1, z_dim, width, kernel_size)
    if generator == "selfmod":
        gen = networks.selfmod_generator(28, 1, z_dim, width, kernel_size, hidden=8)
    else:
        gen = networks.dcgan_generator(28, 1, z_dim, width, kernel_size)
    return OGAN(encoder=encoder, generator=gen, corr_weight=corr_weight)


def fashion_images(n):
    """The first n Fashion-MNIST training images in [-1, 1], (n, 28, 28, 1)."""
    return data.load_arrays(data.resolve("fashion_mnist", image_size=28), limit=n)[0]


def original_loss(e_model, g_model, x_in, z_in):
    """The original O-GAN code's loss, transcribed line by line (λ = 0.5)."""
    x_real = x_in
    x_fake = g_model(z_in, training=True)
    x_fake_ng = tf.stop_gradient(x_fake)
    z_real = e_model(x_real, training=True)
    z_fake = e_model(x_fake, training=True)
    z_fake_ng = e_model(x_fake_ng, training=True)
    z_real_mean = tf.reduce_mean(z_real, 1, keepdims=True)
    z_fake_mean = tf.reduce_mean(z_fake, 1, keepdims=True)
    z_fake_ng_mean = tf.reduce_mean(z_fake_ng, 1, keepdims=True)

    def correlation(x, y):
        x = x - tf.reduce_mean(x, 1, keepdims=True)
        y = y - tf.reduce_mean(y, 1, keepdims=True)
        x = tf.math.l2_normalize(x, 1)
        y = tf.math.l2_normalize(y, 1)
        return tf.reduce_sum(x * y, 1, keepdims=True)

    t1_loss = z_real_mean - z_fake_ng_mean
    t2_loss = z_fake_mean - z_fake_ng_mean
    z_corr = correlation(z_in, z_fake)
    qp_loss = 0.25 * t1_loss[:, 0] ** 2 / tf.reduce_mean((x_real - x_fake_ng) ** 2, axis=[1, 2, 3])
    return tf.reduce_mean(t1_loss + t2_loss - 0.5 * z_corr) + tf.reduce_mean(qp_loss)


class Float64Test(tf.test.TestCase):
    """Loss and gradient routing, with every network in float64 so that "equal"
    and "zero" can be checked to ~1e-12."""

    def setUp(self):
        super().setUp()
        self._float64 = float64()
        self._float64.__enter__()
        self.model = tiny_ogan()
        rng = np.random.default_rng(1)
        self.x = tf.constant(rng.uniform(-1, 1, (6, 28, 28, 1)), tf.float64)
        self.z = tf.constant(rng.normal(size=(6, 8)), tf.float64)

    def tearDown(self):
        self._float64.__exit__(None, None, None)
        super().tearDown()

    def gradients(self, fn, variables):
        with tf.GradientTape(persistent=True) as tape:
            value = fn()
        return value, tape.gradient(value, variables)

    def test_loss_and_gradients_equal_the_original_code(self):
        m = self.model
        variables = m.trainable_variables
        self.assertLen(variables, len(m.encoder.trainable_variables)
                       + len(m.generator.trainable_variables))
        ours, our_grads = self.gradients(
            lambda: m.compute_terms(self.x, self.z)["loss/total"], variables)
        theirs, their_grads = self.gradients(
            lambda: original_loss(m.encoder, m.generator, self.x, self.z), variables)
        self.assertEqual(ours.dtype, tf.float64)
        self.assertAllClose(ours, theirs, rtol=1e-12, atol=1e-12)
        for v, a, b in zip(variables, our_grads, their_grads):
            self.assertIsNotNone(a, v.path)
            self.assertAllClose(a, b, rtol=1e-9, atol=1e-12, msg=v.path)

    def test_correlation_term_reaches_encoder_and_generator(self):
        m = self.model
        for net in (m.encoder, m.generator):
            _, grads = self.gradients(
                lambda: m.compute_terms(self.x, self.z)["corr/z"], net.trainable_variables)
            for v, g in zip(net.trainable_variables, grads):
                self.assertIsNotNone(g, v.path)
                self.assertGreater(float(tf.reduce_max(tf.abs(g))), 0.0, v.path)

    def test_critic_terms_reach_only_the_encoder(self):
        m = self.model

        def critic_part():  # f(D(x)) + g(D(sg G)) + penalty: the critic's terms
            terms = m.compute_terms(self.x, self.z)
            return terms["loss/critic"] + m.penalty_weight * terms["loss/penalty"]

        _, grads = self.gradients(critic_part, m.generator.trainable_variables)
        # Nothing reaches G: D(sg G) is the weights-only side of one critic pass
        # (split_pass.split_call), whose input gradient is exactly 0.
        self.assertTrue(all(g is None or not np.any(g) for g in grads))
        _, grads = self.gradients(critic_part, m.encoder.trainable_variables)
        self.assertTrue(all(g is not None for g in grads))

    def test_generator_term_reaches_only_the_generator(self):
        m = self.model

        def generator_part():  # h(D(G)) − h(D(sg G)): value 0, gradient to G only
            terms = m.compute_terms(self.x, self.z)
            return (terms["loss/total"] - terms["loss/critic"]
                    - m.penalty_weight * terms["loss/penalty"] + m.corr_weight * terms["corr/z"])

        value, grads = self.gradients(generator_part, m.encoder.trainable_variables)
        self.assertAllClose(value, 0.0, atol=1e-12)
        for v, g in zip(m.encoder.trainable_variables, grads):
            self.assertAllClose(g, tf.zeros_like(g), atol=1e-12, msg=v.path)
        _, grads = self.gradients(generator_part, m.generator.trainable_variables)
        self.assertGreater(sum(float(tf.reduce_max(tf.abs(g))) for g in grads), 0.0)

    def test_critic_is_the_mean_of_the_encoder(self):
        e = self.model.encoder(self.x, training=False)
        self.assertAllClose(self.model.score(self.x, training=False), tf.reduce_mean(e, -1))

    def test_corr_weight_scales_only_the_correlation(self):
        base = self.model.compute_terms(self.x, self.z)
        self.model.corr_weight = 1.0
        heavier = self.model.compute_terms(self.x, self.z)
        self.assertAllClose(base["corr/z"], heavier["corr/z"])
        self.assertAllClose(heavier["loss/total"] - base["loss/total"], -0.5 * base["corr/z"])


    def test_the_encoder_side_weight_trains_the_encoder_only(self):
        m = self.model
        plain = m.compute_terms(self.x, self.z)
        m.encoder_corr_weight = 2.0
        try:
            both = m.compute_terms(self.x, self.z)
            # Its value: ρ once more, weighted by λ_E.
            self.assertAllClose(both["loss/total"] - plain["loss/total"],
                                -2.0 * plain["corr/z"], atol=1e-10)
            # Its gradient: the encoder's moves, the generator's does not.
            for net, reaches in ((m.generator, False), (m.encoder, True)):
                _, with_e = self.gradients(
                    lambda: m.compute_terms(self.x, self.z)["loss/total"],
                    net.trainable_variables)
                m.encoder_corr_weight = 0.0
                _, without = self.gradients(
                    lambda: m.compute_terms(self.x, self.z)["loss/total"],
                    net.trainable_variables)
                m.encoder_corr_weight = 2.0
                moved = max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(with_e, without))
                if reaches:
                    self.assertGreater(moved, 1e-6)
                else:
                    self.assertLess(moved, 1e-12)
        finally:
            m.encoder_corr_weight = 0.0


    def term_added(self, by_hand, **settings):
        """With `settings` on the model, the loss and every gradient move by exactly
        by_hand()'s (the term written out with the model's own nets). Returns
        by_hand's gradients, zeros where it does not reach: (E's, G's)."""
        m = self.model
        variables = m.encoder.trainable_variables + m.generator.trainable_variables

        def loss():
            return m.compute_terms(self.x, self.z)["loss/total"]

        plain, g_plain = self.gradients(loss, variables)
        hand, g_hand = self.gradients(by_hand, variables)
        g_hand = [tf.zeros_like(v) if g is None else g for v, g in zip(variables, g_hand)]
        before = {name: getattr(m, name) for name in settings}
        for name, value in settings.items():
            setattr(m, name, value)
        try:
            ours, g_ours = self.gradients(loss, variables)
        finally:
            for name, value in before.items():
                setattr(m, name, value)
        self.assertAllClose(ours, plain + hand, rtol=1e-12, atol=1e-12)
        for v, a, b, c in zip(variables, g_ours, g_plain, g_hand):
            self.assertAllClose(a, b + c, rtol=1e-9, atol=1e-12, msg=v.path)
        n = len(m.encoder.trainable_variables)
        return g_hand[:n], g_hand[n:]

    def assert_reaches(self, grads):
        self.assertGreater(max(float(tf.reduce_max(tf.abs(g))) for g in grads), 1e-6)

    def code(self):
        return 0.9 * losses.standardise(self.model.encoder(self.x, training=True))

    def test_reconstruction_weight_adds_the_reconstruction_gradient(self):
        # λ_x·mean|G(0.9·N(E(x))) − x|: reaches E and G.
        m = self.model
        to_e, to_g = self.term_added(
            lambda: 3.0 * tf.reduce_mean(tf.abs(m.generator(self.code(), training=True)
                                                - self.x)), recon_weight=3.0)
        self.assert_reaches(to_e)
        self.assert_reaches(to_g)

    def test_pooled_reconstruction_compares_block_means(self):
        # recon_pool 2: mean|pool(G(0.9·N(E(x)))) − pool(x)|, the pooling written as
        # a reshape and a mean.
        def blocks(x):
            n, h, w, c = x.shape
            return tf.reduce_mean(tf.reshape(x, (n, h // 2, 2, w // 2, 2, c)), axis=(2, 4))

        self.term_added(lambda: 3.0 * tf.reduce_mean(tf.abs(
            blocks(self.model.generator(self.code(), training=True)) - blocks(self.x))),
            recon_weight=3.0, recon_pool=2)

    def test_correlation_on_real_codes_equals_its_plain_form(self):
        # −λ_r·mean ρ(z_x, E(G(z_x))), z_x = sg(0.9·N(E(x))), with plain calls: reaches
        # E and G.
        m = self.model

        def by_hand():
            z_x = tf.stop_gradient(self.code())
            e = m.encoder(m.generator(z_x, training=True), training=True)
            return -3.0 * tf.reduce_mean(losses.pearson(z_x, e))

        to_e, to_g = self.term_added(by_hand, real_corr_weight=3.0)
        self.assert_reaches(to_e)
        self.assert_reaches(to_g)

    def test_encoder_reconstruction_weight_trains_the_encoder_only(self):
        # λ_xE·mean|G′(0.9·N(E(x))) − x| written out with G's weights held constant:
        # E's gradient moves by the term's, G's not at all.
        m = self.model
        g_vars = m.generator.trainable_variables

        def by_hand():
            frozen = [tf.stop_gradient(v) for v in g_vars]
            code = self.code()
            with keras.StatelessScope(state_mapping=list(zip(g_vars, frozen))):
                x_rec = m.generator(code, training=True)
            return 3.0 * tf.reduce_mean(tf.abs(x_rec - self.x))

        to_e, to_g = self.term_added(by_hand, encoder_recon_weight=3.0)
        self.assert_reaches(to_e)
        for g in to_g:
            self.assertAllEqual(g, tf.zeros_like(g))


class ApiTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.model = tiny_ogan()
        self.x = tf.constant(fashion_images(4))

    def test_reconstruct_is_g_of_scaled_standardised_code(self):
        m = self.model
        code = m.encode(self.x)
        self.assertEqual(code.shape, (4, 8))
        for scale in (None, 0.5):
            by_hand = (0.9 if scale is None else scale) * losses.standardise(code)
            self.assertAllClose(m.code(self.x, scale=scale), by_hand, atol=1e-6)
            expected = m.generator(by_hand, training=False)
            self.assertAllClose(m.reconstruct(self.x, scale=scale), expected, atol=1e-6)

    def test_interpolate_runs_between_the_two_reconstructions(self):
        m = self.model
        path = m.interpolate(self.x[:2], self.x[2:], steps=5)
        self.assertEqual(path.shape, (2, 5, 28, 28, 1))
        self.assertAllClose(path[:, 0], m.reconstruct(self.x[:2]), atol=1e-5)
        self.assertAllClose(path[:, -1], m.reconstruct(self.x[2:]), atol=1e-5)
        self.assertGreater(float(tf.reduce_max(tf.abs(path[:, 2] - path[:, 0]))), 1e-4)

    def test_generate_from_count_or_noise(self):
        m = self.model
        self.assertEqual(m.generate(3, seed=1).shape, (3, 28, 28, 1))
        self.assertAllClose(m.generate(3, seed=1), m.generate(3, seed=1))
        z = tf.random.normal((2, 8))
        self.assertAllClose(m.generate(z), m.generator(z, training=False))

    def test_encoder_width_must_match_z_dim(self):
        with self.assertRaisesRegex(ValueError, "z_dim"):
            OGAN(encoder=networks.dcgan_encoder(28, 1, 4, 4),
                 generator=networks.dcgan_generator(28, 1, 8, 4))

    def test_train_step_takes_x_or_x_and_z(self):
        for generator in ("dcgan", "selfmod"):
            m = tiny_ogan(generator=generator, kernel_size=4)
            m.compile()
            z = tf.random.normal((4, 8))
            logs = m.train_on_batch(self.x, z, return_dict=True)  # (x, z)
            self.assertIn("corr/z", logs)
            logs = m.train_on_batch(self.x, return_dict=True)     # x alone
            self.assertTrue(all(np.isfinite(v) for v in logs.values()), logs)
            self.assertEqual(int(m.optimizer.iterations), 2)

    def test_save_and_load_keras(self):
        for generator in ("dcgan", "selfmod"):
            m = tiny_ogan(generator=generator, corr_weight=1.0)
            m.recon_scale = 0.8
            m.compile()
            m.train_on_batch(self.x)
            path = os.path.join(tempfile.mkdtemp(), "ogan.keras")
            m.save(path)
            loaded = keras.saving.load_model(path)
            self.assertIsInstance(loaded, OGAN)
            self.assertEqual((loaded.corr_weight, loaded.recon_scale), (1.0, 0.8))
            self.assertAllClose(loaded.encode(self.x), m.encode(self.x))
            self.assertAllClose(loaded.reconstruct(self.x), m.reconstruct(self.x))
            loaded.train_on_batch(self.x)  # the optimizer came back too
            self.assertEqual(int(loaded.optimizer.iterations), 2)


    def test_extra_terms_train_report_save_and_refuse_negative_weights(self):
        self.assertNotIn("recon/l1", tiny_ogan().metric_names())
        self.assertNotIn("corr/real", tiny_ogan().metric_names())
        for name, metric in (("recon_weight", "recon/l1"), ("encoder_recon_weight", "recon/l1"),
                             ("real_corr_weight", "corr/real")):
            with self.subTest(name):
                keras.utils.set_random_seed(0)
                m = OGAN(encoder=networks.dcgan_encoder(28, 1, 8, 4),
                         generator=networks.dcgan_generator(28, 1, 8, 4), **{name: 2.0})
                m.compile()
                logs = m.train_on_batch(self.x, return_dict=True)
                self.assertNotEqual(logs[metric], 0.0)
                self.assertEqual({"recon/l1", "corr/real"} & set(logs), {metric})
                path = os.path.join(tempfile.mkdtemp(), "ogan.keras")
                m.save(path)
                loaded = keras.saving.load_model(path)
                self.assertEqual(getattr(loaded, name), 2.0)
                self.assertIn(metric, loaded.train_on_batch(self.x, return_dict=True))
                with self.assertRaisesRegex(ValueError, f"{name} must be >= 0"):
                    OGAN(encoder=networks.dcgan_encoder(28, 1, 8, 4),
                         generator=networks.dcgan_generator(28, 1, 8, 4), **{name: -1.0})

    def test_recon_pool_is_saved_and_must_divide_the_image(self):
        m = OGAN(encoder=networks.dcgan_encoder(28, 1, 8, 4),
                 generator=networks.dcgan_generator(28, 1, 8, 4), recon_weight=1.0,
                 recon_pool=7)
        m.compile()
        m.train_on_batch(self.x)
        path = os.path.join(tempfile.mkdtemp(), "ogan.keras")
        m.save(path)
        self.assertEqual(keras.saving.load_model(path).recon_pool, 7)
        for bad in (3, 0):
            with self.subTest(recon_pool=bad), self.assertRaisesRegex(
                    ValueError, f"recon_pool must be >= 1 and divide the image side; got "
                                f"{bad} for 28×28 images"):
                OGAN(encoder=networks.dcgan_encoder(28, 1, 8, 4),
                     generator=networks.dcgan_generator(28, 1, 8, 4), recon_pool=bad)


@pytest.mark.slow
class ScriptTest(tf.test.TestCase):

    def test_train_ogan_writes_the_three_figures_and_metrics(self):
        out = os.path.join(tempfile.mkdtemp(), "run")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(
            [sys.executable, os.path.join(root, "train_ogan.py"), f"--out_dir={out}",
             "--image_size=28", "--width=4", "--z_dim=8", "--steps=4", "--batch_size=8",
             "--sample_every=2", "--num_samples=16", "--probe_examples=200",
             "--generator=selfmod", "--kernel_size=4", "--objective=ns", "--penalty=none"],
            check=True, capture_output=True, env=dict(os.environ, PYTHONPATH=root))
        for kind in ("samples", "reconstructions", "interpolations"):
            self.assertTrue(os.path.exists(os.path.join(out, kind, "00000004.png")), kind)
        # 16 images → 4 rows of 4 (real | reconstructed) pairs, 29 px a cell with padding.
        picture = iio.imread(os.path.join(out, "reconstructions", "00000004.png"))
        self.assertEqual(picture.shape[:2], (4 * 29 + 1, 8 * 29 + 1))
        # 8 rows: x1, 8 interpolation steps, x2.
        picture = iio.imread(os.path.join(out, "interpolations", "00000004.png"))
        self.assertEqual(picture.shape[:2], (8 * 29 + 1, 10 * 29 + 1))
        with open(os.path.join(out, "metrics.json")) as f:
            metrics = json.load(f)
        self.assertEqual(metrics["steps"], 4)
        self.assertEqual(set(metrics), {"steps", "wall_seconds", "corr_z", "probe_encoder",
                                        "probe_untrained", "probe_pixels"})
        with open(os.path.join(out, "config.json")) as f:
            config = json.load(f)
        model_settings = config["model"]
        self.assertEqual(model_settings["generator"], "selfmod")
        # The script's chosen reconstruction term and two sets of G's statistics.
        self.assertEqual((model_settings["recon_weight"], config["standing_stats"]), (12.0, 64))
        exported = keras.saving.load_model(os.path.join(out, "model.keras"))
        self.assertIsNotNone(exported.generator_sampling)
        # The single-loss GAN's loss settings are O-GAN's too.
        self.assertEqual((model_settings["objective"], model_settings["penalty"]), ("ns", None))


@pytest.mark.slow
class LearningTest(tf.test.TestCase):

    def test_encoder_learns_to_invert_the_generator(self):
        """The original recipe (RMSprop 1e-4) on Fashion-MNIST, tiny nets: within
        200 steps ρ(z, E(G(z))) on fresh noise climbs from ~0 to well above 0.5."""
        m = tiny_ogan(z_dim=16, width=8)
        m.compile()
        z = tf.random.stateless_normal((256, 16), seed=[7, 7])
        # training=True: batch statistics, as in the loss; the moving averages of
        # BatchNorm lag this far behind after only 200 steps.
        start = float(m.latent_correlation(z, training=True))
        images = fashion_images(4096)
        data = (tf.data.Dataset.from_tensor_slices(images)
                .shuffle(4096, seed=0).batch(32, drop_remainder=True).repeat())
        m.fit(data, steps_per_epoch=200, epochs=1, verbose=0)
        end = float(m.latent_correlation(z, training=True))
        self.assertLess(abs(start), 0.2)
        self.assertGreater(end, 0.5)


if __name__ == "__main__":
    tf.test.main()
