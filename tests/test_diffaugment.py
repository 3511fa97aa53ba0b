"""DiffAugment (augment.py): each op against hand-computed values, the draws'
ranges and repeatability, and the single loss kept exact with augmentation: in
float64 its gradients equal the two-player form's with the same draw of T, for
the single-loss GAN and O-GAN, and that check fails when the two fakes
(G(z), sg G(z)) get different draws."""

from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from float64 import float64
from ogan_ign import augment, gan, losses, networks, one_loss
from ogan_ign.ogan import OGAN
from test_gan import max_difference, single_loss_gradients

POLICY = "color,translation,cutout"


def pixels(values):
    """A (1, H, W, 1) image from a nested list."""
    return tf.constant(values, tf.float32)[None, :, :, None]


class OpsTest(tf.test.TestCase):
    """Each op on tiny tensors, against values worked out by hand."""

    def test_brightness_adds_a_shift_per_sample(self):
        x = tf.constant([[[[0.5, -1.0]]], [[[0.0, 0.25]]]])  # (2, 1, 1, 2)
        got = augment.brightness(x, tf.constant([0.25, -0.5]))
        self.assertAllClose(got, [[[[0.75, -0.75]]], [[[-0.5, -0.25]]]])

    def test_saturation_scales_around_the_pixels_channel_mean(self):
        x = tf.constant([[[[0.2, -0.4, 0.5]]]])  # channel mean 0.1
        self.assertAllClose(augment.saturation(x, tf.constant([2.0])), [[[[0.3, -0.9, 0.9]]]])
        self.assertAllClose(augment.saturation(x, tf.constant([0.0])), [[[[0.1, 0.1, 0.1]]]])

    def test_contrast_scales_around_the_image_mean(self):
        x = pixels([[0.0, 1.0], [2.0, 3.0]])  # mean 1.5
        self.assertAllClose(augment.contrast(x, tf.constant([0.5]))[0, :, :, 0],
                            [[0.75, 1.25], [1.75, 2.25]])

    def test_translation_shifts_and_fills_with_zero(self):
        x = pixels(np.arange(1, 17).reshape(4, 4).tolist())
        down_left = augment.translate(x, tf.constant([1]), tf.constant([-1]))
        self.assertAllEqual(down_left[0, :, :, 0], [[0, 0, 0, 0],
                                                    [2, 3, 4, 0],
                                                    [6, 7, 8, 0],
                                                    [10, 11, 12, 0]])
        up_right = augment.translate(x, tf.constant([-2]), tf.constant([2]))
        self.assertAllEqual(up_right[0, :, :, 0], [[0, 0, 9, 10],
                                                   [0, 0, 13, 14],
                                                   [0, 0, 0, 0],
                                                   [0, 0, 0, 0]])

    def test_cutout_zeroes_the_square_clipped_to_the_image(self):
        x = pixels(np.arange(1, 17).reshape(4, 4).tolist())
        got = augment.cut_out(x, tf.constant([-1]), tf.constant([2]), (2, 2))
        self.assertAllEqual(got[0, :, :, 0], [[1, 2, 0, 0],
                                              [5, 6, 7, 8],
                                              [9, 10, 11, 12],
                                              [13, 14, 15, 16]])
        got = augment.cut_out(x, tf.constant([1]), tf.constant([1]), (2, 2))
        self.assertAllEqual(got[0, :, :, 0], [[1, 2, 3, 4],
                                              [5, 0, 0, 8],
                                              [9, 0, 0, 12],
                                              [13, 14, 15, 16]])

    def test_sizes(self):
        self.assertEqual(augment.cutout_size(32, 28), (16, 14))
        p = augment.draws(("translation",), tf.constant([0, 0]), 4000, 28, 32)
        self.assertAllEqual(sorted(set(p["dy"].numpy())), range(-4, 5))   # round(3.5)
        self.assertAllEqual(sorted(set(p["dx"].numpy())), range(-4, 5))

    def test_draws_cover_their_ranges(self):
        p = augment.draws(augment.POLICIES, tf.constant([7, 1]), 4000, 32, 32)
        for name, low, high in (("brightness", -0.5, 0.5), ("saturation", 0.0, 2.0),
                                ("contrast", 0.5, 1.5)):
            values = p[name].numpy()
            self.assertGreaterEqual(values.min(), low, name)
            self.assertLess(values.max(), high, name)
            self.assertLess(values.min(), low + 0.01, name)
            self.assertGreater(values.max(), high - 0.01, name)
        # The square's centre (top + 8) ranges over 0 … 32: the whole image.
        self.assertAllEqual(sorted(set(p["top"].numpy() + 8)), range(0, 33))
        self.assertAllEqual(sorted(set(p["left"].numpy() + 8)), range(0, 33))

    def test_policy_is_the_ops_in_order_with_the_draws(self):
        x = tf.random.stateless_uniform([3, 8, 8, 3], [1, 2], -1, 1)
        seed = tf.constant([5, 6])
        p = augment.draws(augment.POLICIES, seed, 3, 8, 8)
        want = augment.contrast(augment.saturation(augment.brightness(
            x, p["brightness"]), p["saturation"]), p["contrast"])
        want = augment.cut_out(augment.translate(want, p["dy"], p["dx"]),
                               p["top"], p["left"], (4, 4))
        self.assertAllEqual(augment.diff_augment(x, POLICY, seed), want)

    def test_a_pure_function_of_x_and_seed(self):
        x = tf.random.stateless_uniform([4, 8, 8, 3], [1, 2], -1, 1)
        a = augment.diff_augment(x, POLICY, tf.constant([1, 2]))
        self.assertAllEqual(a, augment.diff_augment(x, POLICY, tf.constant([1, 2])))
        self.assertNotAllClose(a, augment.diff_augment(x, POLICY, tf.constant([1, 3])))
        # each op draws from its own stream: adding one leaves another's draws alone
        alone = augment.draws(("color",), tf.constant([1, 2]), 4, 8, 8)["contrast"]
        self.assertAllEqual(alone, augment.draws(augment.POLICIES, tf.constant([1, 2]),
                                                 4, 8, 8)["contrast"])
        self.assertIs(augment.diff_augment(x, "", tf.constant([1, 2])), x)

    def test_differentiable_and_zero_inside_the_square(self):
        x = tf.random.stateless_uniform([2, 8, 8, 1], [1, 2], -1, 1)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(augment.cut_out(x, tf.constant([0, 4]), tf.constant([0, 4]),
                                              (4, 4)))
        grad = tape.gradient(y, x)[..., 0]
        self.assertAllEqual(grad[0, :4, :4], tf.zeros([4, 4]))
        self.assertAllEqual(grad[0, 4:, 4:], tf.ones([4, 4]))

    def test_policy_names(self):
        self.assertEqual(augment.parse_policy(""), ())
        self.assertEqual(augment.parse_policy(" cutout,color "), ("cutout", "color"))
        for bad in ("colour", "color,color", "none"):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "^diffaugment .*off"):
                augment.parse_policy(bad)


# ----------------------------------------------------------- the single loss
def augmented_pair(model, x_real, x_fake):
    """(T(x_real), T(x_fake)) with the step's draws, as losses.GANLoss documents them:
    seed pair training_seed(seed, step, AUGMENT), folded with 0 (real) and 1 (fakes)."""
    seed = one_loss.training_seed(model.seed, model.optimizer.iterations, one_loss.AUGMENT)
    seed_real, seed_fake = (tf.random.experimental.stateless_fold_in(seed, i) for i in (0, 1))
    return (augment.diff_augment(x_real, model.diffaugment, seed_real),
            augment.diff_augment(x_fake, model.diffaugment, seed_fake))


def two_player_gradients(model, x_real, z, corr_weight=0.0):
    """The two losses, without stop-gradient, on augmented images:
    critic ← ∇ f(D(T x)) + g(D(T G(z))) + w·R(T x, T G(z)) − λ·ρ(z, E(G(z))),
    generator ← ∇ h(D(T G(z))) − λ·ρ(z, E(G(z)))   (λ = 0: the plain GAN)."""
    f, g, h = losses.objective_terms(model.objective)
    with tf.GradientTape(persistent=True) as tape:
        x_fake = model.generator(z, training=True)
        t_real, t_fake = augmented_pair(model, x_real, x_fake)
        d_real, d_fake = model.score(t_real), model.score(t_fake)
        critic_objective = tf.reduce_mean(f(d_real)) + tf.reduce_mean(g(d_fake))
        if model.penalty == "qp":
            critic_objective += model.penalty_weight * losses.qp_penalty(
                d_real, d_fake, t_real, t_fake)
        elif model.penalty == "gp":
            alpha = tf.random.stateless_uniform(
                [x_real.shape[0]], dtype=x_real.dtype, seed=one_loss.training_seed(
                    model.seed, model.optimizer.iterations, one_loss.PENALTY))
            critic_objective += model.penalty_weight * losses.gradient_penalty(
                model.score, t_real, t_fake, alpha)
        generator_objective = tf.reduce_mean(h(d_fake))
        if corr_weight:
            rho = tf.reduce_mean(losses.pearson(z, model.critic(x_fake, training=True)))
            critic_objective -= corr_weight * rho
            generator_objective -= corr_weight * rho
    return (tape.gradient(critic_objective, model.critic.trainable_variables),
            tape.gradient(generator_objective, model.generator.trainable_variables))


def independent_fakes(self, x_real, x_fake, x_fake_sg):
    """A broken `GANLoss.augmented`: sg G(z) gets a draw of its own."""
    seeds = [tf.random.experimental.stateless_fold_in(self.augment_seed, i) for i in (0, 1, 2)]
    return tuple(augment.diff_augment(x, self.diffaugment, s)
                 for x, s in zip((x_real, x_fake, x_fake_sg), seeds))


class SingleLossStaysExactTest(tf.test.TestCase):
    """float64, DCGAN nets with BatchNorm on 3-channel 32 px images."""

    def setUp(self):
        super().setUp()
        rng = np.random.default_rng(4)
        self.x_real = tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)), tf.float64)
        self.z = tf.constant(rng.normal(size=(4, 4)), tf.float64)

    def build(self, ogan=False, diffaugment=POLICY, **kwargs):
        with float64():
            keras.utils.set_random_seed(3)
            generator = networks.dcgan_generator(32, 3, z_dim=4, width=2)
            if ogan:
                model = OGAN(networks.dcgan_encoder(32, 3, z_dim=4, width=2), generator,
                             diffaugment=diffaugment, seed=5, **kwargs)
            else:
                critic = networks.dcgan_encoder(32, 3, z_dim=1, width=2, name="critic")
                model = gan.SingleLossGAN(generator, critic, diffaugment=diffaugment, seed=5,
                                          **kwargs)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
            model.optimizer.iterations.assign(7)
        return model

    def assert_equal_gradients(self, model, corr_weight=0.0):
        got = single_loss_gradients(model, self.x_real, self.z)
        want = two_player_gradients(model, self.x_real, self.z, corr_weight)
        self.assertLess(max_difference(got[0], want[0]), 1e-10)  # critic
        self.assertLess(max_difference(got[1], want[1]), 1e-10)  # generator
        self.assertGreater(max(float(tf.reduce_max(tf.abs(g))) for g in got[1]), 1e-6)

    def test_gan(self):
        for objective, penalty in (("wgan", "qp"), ("ns", "gp"), ("hinge", None)):
            with self.subTest(objective=objective, penalty=penalty):
                self.assert_equal_gradients(self.build(objective=objective, penalty=penalty))

    def test_ogan(self):
        self.assert_equal_gradients(self.build(ogan=True), corr_weight=0.5)

    def test_fails_when_the_two_fakes_get_different_draws(self):
        for ogan in (False, True):
            with self.subTest(ogan=ogan):
                model = self.build(ogan=ogan)
                want = two_player_gradients(model, self.x_real, self.z, 0.5 if ogan else 0.0)
                with mock.patch.object(losses.GANLoss, "augmented", independent_fakes):
                    got = single_loss_gradients(model, self.x_real, self.z)
                self.assertGreater(max_difference(got[0], want[0]), 1e-4)

    def test_the_critic_sees_augmented_images(self):
        """Not vacuous: the gradients move when T is turned on."""
        on = single_loss_gradients(self.build(), self.x_real, self.z)
        off = single_loss_gradients(self.build(diffaugment=""), self.x_real, self.z)
        self.assertGreater(max_difference(on[0], off[0]), 1e-4)

    def test_ogan_correlation_reads_the_unaugmented_fakes(self):
        model = self.build(ogan=True)
        rho = model.compute_terms(self.x_real, self.z)["corr/z"]
        x_fake = model.generator(self.z, training=True)
        want = tf.reduce_mean(losses.pearson(self.z, model.encoder(x_fake, training=True)))
        self.assertAllClose(rho, want, atol=1e-12, rtol=0)


class ModelTest(tf.test.TestCase):

    def test_the_setting_travels_and_is_checked(self):
        self.assertEqual(gan.GANSettings().diffaugment, "")
        generator = networks.dcgan_generator(28, 1, z_dim=4, width=2)
        critic = networks.dcgan_encoder(28, 1, z_dim=1, width=2, name="critic")
        model = gan.SingleLossGAN(generator, critic, diffaugment="translation")
        self.assertEqual(model.get_config()["diffaugment"], "translation")
        self.assertIsNone(gan.SingleLossGAN(generator, critic).augment_seed())
        with self.assertRaisesRegex(ValueError, "diffaugment 'colour'"):
            gan.SingleLossGAN(generator, critic, diffaugment="colour")
        with self.assertRaisesRegex(ValueError, "without DiffAugment"):
            gan.TwoPlayerGAN(generator, critic, diffaugment="cutout")

    def test_a_step_trains(self):
        model = OGAN(networks.dcgan_encoder(28, 1, z_dim=4, width=2),
                     networks.dcgan_generator(28, 1, z_dim=4, width=2), diffaugment=POLICY)
        model.compile()
        x = tf.random.stateless_uniform([4, 28, 28, 1], [1, 2], -1, 1)
        logs = model.train_step(x)
        self.assertTrue(np.isfinite(float(logs["loss/total"])))


if __name__ == "__main__":
    tf.test.main()
