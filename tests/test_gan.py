"""SingleLossGAN: gradient routing in float64, the SGD update, strategies, saving,
and one honest "it learns" run on the 2-D ring of Gaussians."""

import os
import tempfile
from unittest import mock

import pytest
import keras
import numpy as np
import tensorflow as tf

from float64 import float64
from ogan_ign import gan, losses, networks, one_loss
from replicas import mirrored
import toy


def mlp_gan(objective, penalty, seed=0):
    keras.utils.set_random_seed(seed)
    return gan.SingleLossGAN(networks.mlp_generator(3, 2, hidden=16, depth=2),
                             networks.mlp_critic(2, 1, hidden=16, depth=2),
                             objective=objective, penalty=penalty, seed=seed)


def reference_gradients(model, x_real, z):
    """The two-player gradients written without stop-gradient:
    critic ← ∇ f(D(x)) + g(D(G(z))) (+ penalty), generator ← ∇ h(D(G(z)))."""
    f, g, h = losses.objective_terms(model.objective)  # (on_real, on_fake, on_generated)
    with tf.GradientTape(persistent=True) as tape:
        x_fake = model.generator(z, training=True)
        d_real = model.score(x_real)
        d_fake = model.score(x_fake)
        critic_objective = tf.reduce_mean(f(d_real)) + tf.reduce_mean(g(d_fake))
        if model.penalty == "qp":
            critic_objective += model.penalty_weight * losses.qp_penalty(d_real, d_fake, x_real, x_fake)
        elif model.penalty == "gp":
            alpha = tf.random.stateless_uniform([x_real.shape[0]], seed=one_loss.training_seed(model.seed, model.optimizer.iterations, one_loss.PENALTY),
                                                dtype=x_real.dtype)
            critic_objective += model.penalty_weight * losses.gradient_penalty(
                model.score, x_real, x_fake, alpha)
        generator_objective = tf.reduce_mean(h(d_fake))
    return (tape.gradient(critic_objective, model.critic.trainable_variables),
            tape.gradient(generator_objective, model.generator.trainable_variables))


def single_loss_gradients(model, x_real, z):
    with tf.GradientTape(persistent=True) as tape:
        loss = model.compute_terms(x_real, z)["loss/total"]
    return (tape.gradient(loss, model.critic.trainable_variables),
            tape.gradient(loss, model.generator.trainable_variables))


def max_difference(grads_a, grads_b):
    return max(float(tf.reduce_max(tf.abs(a - b))) for a, b in zip(grads_a, grads_b))


class GradientRoutingTest(tf.test.TestCase):
    """The single loss gives each player exactly its own gradient (float64)."""

    def setUp(self):
        rng = np.random.default_rng(1)
        self.x_real = tf.constant(rng.normal(size=(6, 2)), tf.float64)
        self.z = tf.constant(rng.normal(size=(6, 3)), tf.float64)

    def build(self, objective, penalty):
        with float64():
            model = mlp_gan(objective, penalty)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        return model

    def test_every_objective_and_penalty(self):
        for objective in losses.OBJECTIVES:
            for penalty in losses.PENALTIES:
                with self.subTest(objective=objective, penalty=penalty):
                    model = self.build(objective, penalty)
                    got = single_loss_gradients(model, self.x_real, self.z)
                    want = reference_gradients(model, self.x_real, self.z)
                    self.assertLess(max_difference(got[0], want[0]), 1e-12)  # critic
                    self.assertLess(max_difference(got[1], want[1]), 1e-12)  # generator
                    # not vacuous: both players do receive a gradient
                    self.assertGreater(max(float(tf.reduce_max(tf.abs(g))) for g in got[1]), 1e-6)

    def test_routing_fails_without_stop_gradient(self):
        """With tf.stop_gradient made the identity, the same check must fail."""
        for objective in losses.OBJECTIVES:
            with self.subTest(objective=objective):
                model = self.build(objective, "qp")
                want = reference_gradients(model, self.x_real, self.z)
                with mock.patch.object(tf, "stop_gradient", side_effect=lambda t: t):
                    got = single_loss_gradients(model, self.x_real, self.z)
                self.assertGreater(max_difference(got[1], want[1]), 1e-3)

    def test_sgd_step_moves_weights_by_minus_lr_times_gradients(self):
        lr = 0.1
        for objective in losses.OBJECTIVES:
            with self.subTest(objective=objective):
                model = self.build(objective, "qp")
                critic_grads, generator_grads = reference_gradients(model, self.x_real, self.z)
                before = [v.numpy() for v in model.critic.trainable_variables
                          + model.generator.trainable_variables]
                model.train_step((self.x_real, self.z))
                after = [v.numpy() for v in model.critic.trainable_variables
                         + model.generator.trainable_variables]
                for w0, w1, grad in zip(before, after, critic_grads + generator_grads):
                    self.assertAllClose(w1, w0 - lr * grad.numpy(), atol=1e-12, rtol=0)

    def test_dcgan_with_batchnorm(self):
        """BatchNorm in both nets (three critic calls per step) keeps the routing."""
        with float64():
            keras.utils.set_random_seed(3)
            model = gan.SingleLossGAN(
                networks.dcgan_generator(28, 1, z_dim=4, width=2),
                networks.dcgan_encoder(28, 1, z_dim=1, width=2, name="critic"))
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        rng = np.random.default_rng(2)
        x_real = tf.constant(rng.uniform(-1, 1, (3, 28, 28, 1)), tf.float64)
        z = tf.constant(rng.normal(size=(3, 4)), tf.float64)
        got = single_loss_gradients(model, x_real, z)
        want = reference_gradients(model, x_real, z)
        self.assertLess(max_difference(got[0], want[0]), 1e-10)
        self.assertLess(max_difference(got[1], want[1]), 1e-10)


class TwoPlayerGANTest(tf.test.TestCase):
    """The alternating baseline: a critic step, then a generator step against
    the updated critic, each by its own optimizer."""

    def test_alternating_sgd_updates(self):
        lr = 0.05
        rng = np.random.default_rng(5)
        x_real = tf.constant(rng.normal(size=(6, 2)), tf.float64)
        z = tf.constant(rng.normal(size=(6, 3)), tf.float64)
        with float64():
            keras.utils.set_random_seed(0)
            model = gan.TwoPlayerGAN(networks.mlp_generator(3, 2, hidden=16, depth=2),
                                     networks.mlp_critic(2, 1, hidden=16, depth=2),
                                     objective="ns", penalty="qp")
            model.compile(optimizer=keras.optimizers.SGD(lr),
                          generator_optimizer=keras.optimizers.SGD(2 * lr))
        critic_grads, _ = reference_gradients(model, x_real, z)
        critic_want = [v.numpy() - lr * g.numpy()
                       for v, g in zip(model.critic.trainable_variables, critic_grads)]
        generator_before = [v.numpy() for v in model.generator.trainable_variables]
        model.train_step((x_real, z))
        for v, want in zip(model.critic.trainable_variables, critic_want):
            self.assertAllClose(v.numpy(), want, atol=1e-12, rtol=0)
        generator_after = [v.numpy() for v in model.generator.trainable_variables]
        # The generator's gradient is the one against the already-updated critic.
        for v, w in zip(model.generator.trainable_variables, generator_before):
            v.assign(w)
        _, generator_grads = reference_gradients(model, x_real, z)
        for w0, w1, g in zip(generator_before, generator_after, generator_grads):
            self.assertAllClose(w1, w0 - 2 * lr * g.numpy(), atol=1e-12, rtol=0)


class ModelTest(tf.test.TestCase):

    def small_image_gan(self):
        return gan.SingleLossGAN(networks.dcgan_generator(28, 1, z_dim=8, width=4),
                                 networks.dcgan_encoder(28, 1, z_dim=1, width=4, name="critic"))

    def test_fit_accepts_x_and_x_z_and_reports_namespaced_metrics(self):
        model = self.small_image_gan()
        model.compile()
        x = np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype("float32")
        z = np.random.default_rng(1).normal(size=(8, 8)).astype("float32")
        logs = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), verbose=0).history
        self.assertIn("loss/total", logs)
        self.assertIn("loss/penalty", logs)
        logs = model.fit(tf.data.Dataset.from_tensor_slices((x, z)).batch(4), verbose=0).history
        self.assertTrue(np.isfinite(logs["loss/total"][0]))
        self.assertEqual(int(model.optimizer.iterations), 4)

    def test_default_optimizer_is_original_rmsprop(self):
        model = self.small_image_gan()
        model.compile()
        self.assertIsInstance(model.optimizer, keras.optimizers.RMSprop)
        self.assertAllClose(float(model.optimizer.learning_rate), 1e-4)
        self.assertAllClose(model.optimizer.rho, 0.99)
        # built in compile(): one slot per weight already exists
        self.assertNotEmpty(model.optimizer.variables)

    def test_noise_is_a_function_of_seed_and_step(self):
        model = self.small_image_gan()
        model.compile()
        self.assertAllEqual(model.sample_noise(4, step=7), model.sample_noise(4, step=7))
        self.assertNotAllClose(model.sample_noise(4, step=7), model.sample_noise(4, step=8))

    def test_generate_from_n_or_z(self):
        model = self.small_image_gan()
        self.assertEqual(model.generate(5).shape, (5, 28, 28, 1))
        self.assertAllClose(model.generate(3, seed=4), model.generate(3, seed=4))
        z = tf.random.normal((2, 8))
        self.assertAllClose(model.generate(z), model.generator(z, training=False))

    def test_bad_arguments(self):
        g = networks.mlp_generator(2, 2)
        c = networks.mlp_critic(2, 1)
        with self.assertRaisesRegex(ValueError, "unknown objective"):
            gan.SingleLossGAN(g, c, objective="bogus")
        with self.assertRaisesRegex(ValueError, "unknown penalty"):
            gan.SingleLossGAN(g, c, penalty="sn")

    def test_save_and_load_keras_file(self):
        model = self.small_image_gan()
        model.compile()
        x = np.random.default_rng(0).uniform(-1, 1, (4, 28, 28, 1)).astype("float32")
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(4), verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "gan.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded, gan.SingleLossGAN)
        z = tf.random.normal((2, 8))
        self.assertAllClose(loaded.generate(z), model.generate(z), atol=1e-6)
        self.assertEqual(loaded.penalty, "qp")

    @pytest.mark.slow
    def test_builds_compiles_and_fits_under_mirrored_strategy(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
        self.assertLen(devices, 2)  # conftest splits the CPU in two
        strategy = mirrored(devices)
        with strategy.scope():
            model = self.small_image_gan()
            model.compile()
        x = np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32")
        before = model.generator.trainable_variables[0].numpy().copy()
        logs = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(8), verbose=0).history
        self.assertTrue(np.isfinite(logs["loss/total"][-1]))
        self.assertNotAllClose(before, model.generator.trainable_variables[0].numpy())


@pytest.mark.slow
class ItLearnsTest(tf.test.TestCase):
    """The ring of 8 Gaussians (radius 2, σ = 0.02): ≥ 7 modes with ≥ 2 % of the
    samples each, ≥ 50 % of all samples within 3σ of a mode.

    Settings: WGAN objective + GAN-QP, Adam(1e-3, β = 0.5, 0.9) with cosine decay
    over 4,000 steps of batch 256 (`toy.train_ring_gan`); `bench/toy_ring.py`
    runs them over many seeds."""

    def test_ring_of_gaussians(self):
        model = toy.train_ring_gan(seed=0)
        shares, near = toy.mode_stats(model.generate(5000, seed=1).numpy())
        self.assertGreaterEqual(int((shares >= 0.02).sum()), 7, msg=f"mode shares {shares}")
        self.assertGreaterEqual(near, 0.5)


if __name__ == "__main__":
    tf.test.main()
