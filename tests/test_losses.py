"""Loss values against numbers worked out by hand on tiny tensors."""

import math

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import losses, split_pass


def softplus(t):
    return math.log1p(math.exp(t))


class SingleLossValueTest(tf.test.TestCase):
    # Two samples; D(sg(G)) has the same value as D(G), as it always does.
    d_real = tf.constant([1.0, -2.0])
    d_fake = tf.constant([0.5, 3.0])

    def value(self, objective):
        return float(losses.single_loss(self.d_real, self.d_fake, self.d_fake, objective))

    def test_wgan(self):
        # D(x) − 2·D(sg G) + D(G): (1 − 1 + 0.5, −2 − 6 + 3) → mean(0.5, −5)
        self.assertAllClose(self.value("wgan"), -2.25)

    def test_hinge(self):
        # relu(1 + D(x)) + relu(1 − D(sg G)): (2 + 0.5, 0 + 0) → 1.25
        self.assertAllClose(self.value("hinge"), 1.25)

    def test_ns(self):
        expected = 0.5 * (softplus(1.0) + softplus(-0.5) + softplus(-2.0) + softplus(-3.0))
        self.assertAllClose(self.value("ns"), expected)

    def test_critic_part(self):
        self.assertAllClose(float(losses.critic_loss(self.d_real, self.d_fake, "wgan")),
                            0.5 * ((1 - 0.5) + (-2 - 3)))

    def test_unknown_objective(self):
        with self.assertRaisesRegex(ValueError, "unknown objective 'lsgan'"):
            losses.single_loss(self.d_real, self.d_fake, self.d_fake, "lsgan")


class PenaltyValueTest(tf.test.TestCase):

    def test_qp(self):
        d_real = tf.constant([1.0, -2.0])
        d_fake_sg = tf.constant([0.5, 3.0])
        x_real = tf.zeros([2, 1, 1, 2])
        # mean-square pixel distances: 1 and (4 + 0) / 2 = 2
        x_fake_sg = tf.constant([[[[1.0, 1.0]]], [[[2.0, 0.0]]]])
        # 0.25·0.5²/1 = 0.0625 and 0.25·(−5)²/2 = 3.125
        self.assertAllClose(float(losses.qp_penalty(d_real, d_fake_sg, x_real, x_fake_sg)),
                            (0.0625 + 3.125) / 2)

    def test_gp_linear_critic(self):
        w = tf.constant([3.0, 4.0])  # ∇D = w everywhere, ‖w‖ = 5 → (5 − 1)² = 16

        def score(x):
            return tf.reduce_sum(x * w, axis=-1)

        x = tf.random.normal([4, 2])
        self.assertAllClose(float(losses.gradient_penalty(score, x, -x, tf.fill([4], 0.3))), 16.0)

    def test_gp_interpolates_with_alpha(self):
        def score(x):  # ∇D(x̂) = 2·x̂
            return tf.reduce_sum(tf.square(x), axis=-1)

        x_real = tf.constant([[1.0, 0.0], [1.0, 0.0]])
        x_fake = tf.zeros([2, 2])
        # α = 0.5 → x̂ = (0.5, 0), ‖∇‖ = 1 → 0; α = 0.25 → ‖∇‖ = 0.5 → 0.25
        value = losses.gradient_penalty(score, x_real, x_fake, tf.constant([0.5, 0.25]))
        self.assertAllClose(float(value), (0.0 + 0.25) / 2)


class PearsonTest(tf.test.TestCase):

    def test_hand_values(self):
        a = tf.constant([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
        b = tf.constant([[2.0, 4.0, 6.0], [3.0, 2.0, 1.0], [5.0, 5.5, 6.0]])
        self.assertAllClose(losses.pearson(a, b), [1.0, -1.0, 1.0])
        # centred: (−1.5, −.5, .5, 1.5)·(−1.5, .5, −.5, 1.5) = 4, norms √5 → 0.8
        self.assertAllClose(losses.pearson(tf.constant([1.0, 2.0, 3.0, 4.0]),
                                           tf.constant([1.0, 3.0, 2.0, 4.0])), 0.8)

    def test_matches_numpy_and_ignores_scale_and_shift(self):
        rng = np.random.default_rng(0)
        a, b = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
        expected = [np.corrcoef(a[i], b[i])[0, 1] for i in range(5)]
        self.assertAllClose(losses.pearson(tf.constant(a), tf.constant(b)), expected)
        # ρ leaves avg and std of E(G(z)) free: that is why avg(E) can be the critic.
        self.assertAllClose(losses.pearson(tf.constant(a), tf.constant(3.0 * b - 7.0)), expected)

    def test_standardise(self):
        z = losses.standardise(tf.constant([[1.0, 2.0, 3.0, 6.0]]))
        self.assertAllClose(tf.reduce_mean(z, -1), [0.0], atol=1e-6)
        self.assertAllClose(tf.math.reduce_std(z, -1), [1.0], atol=1e-5)
        self.assertAllClose(z[0, 0], (1.0 - 3.0) / np.std([1.0, 2.0, 3.0, 6.0]))


class WholeLossTest(tf.test.TestCase):
    """The models' whole losses (losses.GANLoss, losses.OGANLoss) by hand, on
    weightless Keras layers: G(z) = 2z and a critic E(x) = x."""

    # The critic's outputs (batch 2, nz 3) are its inputs; the score is their mean.
    x_real = tf.constant([[0.0, 0.0, 3.0], [3.0, 3.0, 3.0]])  # D(x) = (1, 3)
    z = tf.constant([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])       # G(z) = 2z: D(G) = (4, 1)
    # ρ(z, E(G)): 1 for the first sample (E(G) = 2z), 0 for the constant second.

    generator = keras.layers.Rescaling(2.0)
    critic = keras.layers.Identity()

    def test_gan_loss(self):
        loss = losses.GANLoss("wgan", "qp", penalty_weight=2.0)
        total, terms = loss(self.generator, self.critic, self.x_real, self.z)
        # QP per sample: 0.25·(D(x) − D(G))² / mean((x − G)²) = 0.25·9 / (29/3), 0.25·4 / 4.
        qp = (0.25 * 9 / (29 / 3) + 0.25 * 4 / 4) / 2
        # D(x) − 2·D(sg G) + D(G) = (1 − 4, 3 − 1) → −0.5; plus 2·QP.
        self.assertAllClose(total, -0.5 + 2 * qp)
        self.assertAllClose(terms["loss/critic"], -0.5)
        self.assertAllClose(terms["loss/generator"], 2.5)
        self.assertAllClose(terms["loss/penalty"], qp)
        self.assertAllClose(terms["score/real"], 2.0)
        self.assertAllClose(terms["score/fake"], 2.5)

    def test_ogan_loss(self):
        loss = losses.OGANLoss("wgan", None, corr_weight=0.5)
        total, terms = loss(self.generator, self.critic, self.x_real, self.z)
        self.assertAllClose(terms["corr/z"], 0.5)
        self.assertAllClose(terms["loss/penalty"], 0.0)
        # −0.5 (single loss) − 0.5 · 0.5 (λ·ρ)
        self.assertAllClose(total, -0.5 - 0.25)

    def test_ogan_reconstruction_term(self):
        # G(0.9·N(E(x))) = 1.8·N(x): N((0, 0, 3)) = (−1, −1, 2)/√2, and the constant
        # second row standardises to 0, so it reconstructs as 0.
        loss = losses.OGANLoss("wgan", None, corr_weight=0.5, recon_weight=2.0)
        total, terms = loss(self.generator, self.critic, self.x_real, self.z)
        first = 1.8 * np.array([-1.0, -1.0, 2.0]) / np.sqrt(2.0)
        recon = (np.abs(first - [0.0, 0.0, 3.0]).sum() + 9.0) / 6
        self.assertAllClose(terms["recon/l1"], recon)
        self.assertAllClose(total, -0.5 - 0.25 + 2.0 * recon)
        self.assertNotIn("recon/l1", losses.OGANLoss("wgan", None)(
            self.generator, self.critic, self.x_real, self.z)[1])
        # The encoder-only weight adds the same value (its gradient: tests/test_ogan.py).
        both = losses.OGANLoss("wgan", None, corr_weight=0.5, recon_weight=2.0,
                               encoder_recon_weight=1.5)
        total, terms = both(self.generator, self.critic, self.x_real, self.z)
        self.assertAllClose(terms["recon/l1"], recon)
        self.assertAllClose(total, -0.5 - 0.25 + 3.5 * recon)

    def test_ogan_correlation_on_real_codes(self):
        # z_x = 0.9·N(E(x)) and E(G(z_x)) = 1.8·N(x): ρ = 1 for the first row; the
        # constant second row standardises to 0, whose ρ with anything is 0.
        loss = losses.OGANLoss("wgan", None, corr_weight=0.5, real_corr_weight=3.0)
        total, terms = loss(self.generator, self.critic, self.x_real, self.z)
        self.assertAllClose(terms["corr/real"], 0.5)
        self.assertAllClose(total, -0.5 - 0.25 - 3.0 * 0.5)
        self.assertNotIn("recon/l1", terms)

    def test_pool_averages_blocks(self):
        x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
        # Blocks of 2×2: (0 1 4 5), (2 3 6 7), (8 9 12 13), (10 11 14 15).
        self.assertAllClose(losses.pool(x, 2)[0, ..., 0], [[2.5, 4.5], [10.5, 12.5]])
        self.assertAllClose(losses.pool(x, 4)[0, ..., 0], [[7.5]])
        self.assertIs(losses.pool(x, 1), x)

    def test_gp_needs_a_seed_and_names_are_checked(self):
        with self.assertRaisesRegex(ValueError, "give GANLoss a seed"):
            losses.GANLoss("wgan", "gp")(self.generator, self.critic, self.x_real, self.z)
        with self.assertRaisesRegex(ValueError, "unknown penalty 'lp'"):
            losses.GANLoss("wgan", "lp")
        with self.assertRaisesRegex(ValueError, "unknown objective 'lsgan'"):
            losses.OGANLoss("lsgan")


class SplitCallTest(tf.test.TestCase):
    """split_pass.split_call: net(x)'s value twice, the first's gradient for x only,
    the second's for the weights only, BatchNorm statistics moved as by one
    net(x). (That the traced step then skips the gradients nobody asked for is a
    matter of time: bench/bench_scale.py.)"""

    @staticmethod
    def net():
        keras.utils.set_random_seed(0)
        x_in = keras.Input((4, 4, 2))
        h = keras.layers.Conv2D(3, 3, padding="same", name="conv")(x_in)
        h = keras.layers.BatchNormalization(momentum=0.5, name="bn")(h)
        return keras.Model(x_in, keras.layers.Conv2D(2, 3, padding="same", name="out")(h))

    def gradients(self, ours):
        x = tf.constant(np.random.default_rng(0).normal(size=(3, 4, 4, 2)), tf.float32)
        net = self.net()
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            if ours:
                to_inputs, to_weights = split_pass.split_call(net, x)
            else:  # a frozen copy for x's gradient, net on sg x for the weights'
                copy = self.net()
                to_inputs = copy(x, training=True)
                to_weights = net(tf.stop_gradient(x), training=True)
            # Two different functions of the two outputs: their gradients must not mix.
            loss = tf.reduce_sum(tf.sin(to_inputs)) + tf.reduce_sum(tf.square(to_weights))
        return (loss, tape.gradient(loss, x), tape.gradient(loss, net.trainable_variables),
                net.non_trainable_variables, to_inputs)

    def test_value_gradients_and_statistics(self):
        loss, dx, dw, state, value = self.gradients(ours=True)
        loss2, dx2, dw2, state2, value2 = self.gradients(ours=False)
        self.assertAllClose(value, value2, atol=1e-6)
        self.assertAllClose(loss, loss2, atol=1e-5)
        self.assertAllClose(dx, dx2, atol=1e-5)
        for a, b in zip(dw, dw2):
            self.assertAllClose(a, b, atol=1e-5)
        # One momentum-0.5 update from zero / one: what one net(x) leaves.
        for a, b in zip(state, state2):
            self.assertAllClose(a, b, atol=1e-6)
        self.assertNotAllClose(state[0], tf.zeros(3))

    def test_each_output_reaches_one_side(self):
        x = tf.constant(np.random.default_rng(1).normal(size=(2, 4, 4, 2)), tf.float32)
        net = self.net()
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            to_inputs, to_weights = split_pass.split_call(net, x)
            a, b = tf.reduce_sum(to_inputs), tf.reduce_sum(to_weights)
        self.assertIsNotNone(tape.gradient(a, x))
        self.assertTrue(all(g is None or not np.any(g)
                            for g in tape.gradient(a, net.trainable_variables)))
        self.assertTrue(tape.gradient(b, x) is None or not np.any(tape.gradient(b, x)))
        self.assertTrue(all(g is not None and np.any(g)
                            for g in tape.gradient(b, net.trainable_variables)))


if __name__ == "__main__":
    tf.test.main()
