"""Mixed precision: a bf16 and an fp16 step of each model run, stay finite and
keep the loss math in float32; fp16 applies its loss scale.

Under bf16 / fp16 (Keras's mixed_bfloat16 / mixed_float16) the layers compute
in 16 bits and keep float32 weights; the critic score
(gan.SingleLossGAN.critic_score), ρ, the distances and the penalties are
float32, and the images leave the generator in float32 (networks: the tanh follows floatx). fp16 trains through Keras's
LossScaleOptimizer, which compile() puts around the optimizer.
"""

import pytest
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import gan, ign, networks, ogan, training

LR = 0.01


def build(kind):
    keras.utils.set_random_seed(0)
    if kind == "gan":
        return gan.SingleLossGAN(networks.dcgan_generator(28, 1, z_dim=4, width=2),
                                 networks.dcgan_encoder(28, 1, z_dim=1, width=2, name="critic"))
    if kind == "ogan":
        return ogan.OGAN(networks.dcgan_encoder(28, 1, z_dim=4, width=2),
                         networks.dcgan_generator(28, 1, z_dim=4, width=2))
    return ign.IGN(networks.dcgan_autoencoder(28, 1, latent=4, width=2))


def data():
    rng = np.random.default_rng(0)
    return tf.data.Dataset.from_tensor_slices(
        rng.uniform(-1, 1, (8, 28, 28, 1)).astype("float32")).batch(8)


def one_step(kind, policy, initial_scale=None):
    """(model, logs, weights before, weights after) of one SGD step under a policy.

    initial_scale: fp16's first loss scale. Keras's default, 2^15, overflows in
    these nets' fp16 backward pass, and a LossScaleOptimizer then skips the step
    (as it should) while it halves the scale.
    """
    optimizer = keras.optimizers.SGD(LR)
    if initial_scale is not None:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=initial_scale)
    with training.precision_policy(policy):
        model = build(kind)
        model.compile(optimizer=optimizer, jit_compile=False)
    before = [v.numpy() for v in model.trainable_variables]
    logs = model.fit(data(), verbose=0).history
    after = [v.numpy() for v in model.trainable_variables]
    return model, logs, before, after


class PrecisionTest(tf.test.TestCase):

    def check(self, kind, policy, initial_scale=None):
        model, logs, before, after = one_step(kind, policy, initial_scale)
        for name, value in logs.items():
            self.assertTrue(np.isfinite(value[0]), msg=f"{name} = {value}")
        for w in after:
            self.assertTrue(np.all(np.isfinite(w)))
        self.assertGreater(max(float(np.max(np.abs(a - b))) for a, b in zip(after, before)), 0)
        # The loss math is float32 though the layers are 16-bit.
        self.assertIn(model.generator.layers[1].compute_dtype if kind != "ign"
                      else model.f.layers[1].compute_dtype, ("bfloat16", "float16"))
        x = next(iter(data()))
        z = model.sample_noise(8, step=0)
        terms = model.compute_terms(x, z)
        for name, value in terms.items():
            self.assertEqual(value.dtype, tf.float32, msg=name)
        return model, before, after

    def test_fp16_policy_wraps_the_optimizer(self):
        with training.precision_policy("fp16"):
            model = build("gan")
            model.compile(optimizer=keras.optimizers.SGD(LR))
        self.assertIsInstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    def test_fp16_policy_wraps_both_optimizers_of_the_two_player_baseline(self):
        with training.precision_policy("fp16"):
            model = gan.TwoPlayerGAN(networks.dcgan_generator(28, 1, z_dim=4, width=2),
                                     networks.dcgan_encoder(28, 1, z_dim=1, width=2))
            model.compile(optimizer=keras.optimizers.SGD(LR),
                          generator_optimizer=keras.optimizers.SGD(LR))
        self.assertIsInstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        self.assertIsInstance(model.generator_optimizer, keras.optimizers.LossScaleOptimizer)

    def test_bf16_step(self):
        for kind in ("gan", "ogan", "ign"):
            with self.subTest(kind=kind):
                self.check(kind, "bf16")

    @pytest.mark.slow
    def test_fp16_step_is_loss_scaled(self):
        for kind in ("gan", "ogan", "ign"):
            with self.subTest(kind=kind):
                model, before, after = self.check(kind, "fp16", initial_scale=64.0)
                # The same step in float32: the fp16 update has its size (a loss
                # never scaled would be divided by the scale, 64, in apply).
                _, _, before32, after32 = one_step(kind, "fp32")
                for w0, w1, v0, v1 in zip(before, after, before32, after32):
                    self.assertAllClose(w0, v0)  # same start
                norm16 = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after, before)))
                norm32 = np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(after32, before32)))
                self.assertBetween(norm16 / norm32, 0.8, 1.25)

    def test_two_player_fp16_steps_are_loss_scaled(self):
        # Both of the baseline's optimizers are SGD, so a loss left unscaled
        # would shrink that player's update by the scale (64); RMSprop or Adam
        # would hide it.
        def step(policy):
            with training.precision_policy(policy):
                keras.utils.set_random_seed(0)
                model = gan.TwoPlayerGAN(
                    networks.dcgan_generator(28, 1, z_dim=4, width=2),
                    networks.dcgan_encoder(28, 1, z_dim=1, width=2, name="critic"))
                sgd = [keras.optimizers.SGD(LR) for _ in range(2)]
                if policy == "fp16":
                    sgd = [keras.optimizers.LossScaleOptimizer(o, initial_scale=64.0) for o in sgd]
                model.compile(optimizer=sgd[0], generator_optimizer=sgd[1], jit_compile=False)
            players = (model.critic.trainable_variables, model.generator.trainable_variables)
            before = [[v.numpy() for v in p] for p in players]
            logs = model.fit(data(), verbose=0).history
            moves = [np.sqrt(sum(np.sum((v.numpy() - b) ** 2) for v, b in zip(p, b0)))
                     for p, b0 in zip(players, before)]
            return model, logs, moves

        _, logs, moves16 = step("fp16")
        self.assertTrue(all(np.isfinite(v[0]) for v in logs.values()), logs)
        _, _, moves32 = step("fp32")
        for player, m16, m32 in zip(("critic", "generator"), moves16, moves32):
            self.assertGreater(m32, 0, player)
            self.assertBetween(m16 / m32, 0.8, 1.25, msg=player)


if __name__ == "__main__":
    tf.test.main()
