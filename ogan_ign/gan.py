"""SingleLossGAN: a GAN trained with one tape, one loss and one optimizer.

Its loss is `losses.GANLoss`, arXiv 1903.01931's stop-gradient single loss

    D(x) − 2·D(sg(G(z))) + D(G(z))            (objective "wgan")

plus a Lipschitz penalty on the critic (GAN-QP's quadratic penalty, the original
O-GAN code's choice, or WGAN-GP). The critic's score is the mean of its outputs
over the last axis, so a one-output critic is an ordinary critic and an encoder
with nz outputs is O-GAN's avg(E(x)) (`ogan.OGAN`). The training step is
`one_loss.OneLossModel`'s; `TwoPlayerGAN` is the two-optimizer baseline.
"""

import dataclasses
from typing import Optional

import keras
import tensorflow as tf

from ogan_ign import losses, one_loss, standing
from ogan_ign.settings import hparam


@dataclasses.dataclass(frozen=True)
class CriticInputSettings:
    """What the critic sees, for the single-loss GAN and O-GAN alike (GANSettings
    extends this one, and OGANSettings extends GANSettings)."""
    diffaugment: str = hparam("", "DiffAugment policy, comma-separated from color, "
                                  "translation, cutout: the same random transform of real "
                                  "and generated images before the critic, for small "
                                  "datasets (augment.py); '' = off")


@dataclasses.dataclass(frozen=True)
class GANSettings(CriticInputSettings):
    """SingleLossGAN's hyper-parameters: each default and help, once."""
    objective: str = hparam("wgan", "wgan | hinge | ns (losses.OBJECTIVES)",
                            choices=losses.OBJECTIVES)
    penalty: Optional[str] = hparam("qp", "qp (GAN-QP, the original O-GAN code) | gp (WGAN-GP) "
                                          "| none", choices=[p for p in losses.PENALTIES if p])
    penalty_weight: Optional[float] = hparam(None, "weight of the penalty; default 1 for qp "
                                                   "(its 0.25 is built in), 10 for gp")


@keras.saving.register_keras_serializable(package="ogan_ign")
class SingleLossGAN(one_loss.OneLossModel):
    """GAN whose critic and generator share one loss and one optimizer.

    Args:
      generator: keras.Model z (batch, z_dim) → x.
      critic: keras.Model x → scores (batch, k); the score is the mean over k.
      z_dim: noise size (default: the generator's input size).
      objective, penalty, penalty_weight, diffaugment: see `GANSettings`.
      seed: base seed of the training noise, a pure function of (seed, replica, step).
    """

    def __init__(self, generator, critic, z_dim=None, objective=GANSettings.objective,
                 penalty=GANSettings.penalty, penalty_weight=GANSettings.penalty_weight,
                 seed=0, diffaugment=GANSettings.diffaugment, **kwargs):
        super().__init__(**kwargs)
        losses.GANLoss(objective, penalty, diffaugment=diffaugment)  # fails early on a bad name
        self.generator = generator
        self.critic = critic
        self.z_dim = int(z_dim or generator.input_shape[-1])
        self.objective = objective
        self.penalty = penalty
        if penalty_weight is None:
            penalty_weight = 10.0 if penalty == "gp" else 1.0
        self.penalty_weight = float(penalty_weight)
        self.seed = int(seed)
        self.diffaugment = diffaugment
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names()}
        self.built = True  # sub-models are built; lets fit() trace under a strategy

    def metric_names(self):
        return ["loss/total", "loss/critic", "loss/generator", "loss/penalty",
                "score/real", "score/fake"]

    @staticmethod
    def default_optimizer():
        """RMSprop(1e-4, rho=0.99): the original O-GAN code's single optimizer."""
        return keras.optimizers.RMSprop(learning_rate=1e-4, rho=0.99)

    # -------------------------------------------------------------- the step
    @property
    def nets(self):
        """The networks the loss is called on: (generator, critic)."""
        return self.generator, self.critic

    def loss_fn(self):
        """This step's loss: `losses.GANLoss` with the model's hyper-parameters."""
        return losses.GANLoss(self.objective, self.penalty, self.penalty_weight,
                              seed=self.penalty_seed(), diffaugment=self.diffaugment,
                              augment_seed=self.augment_seed())

    def penalty_seed(self):
        """The stateless seed of this step's gradient-penalty α (None without "gp")."""
        if self.penalty != "gp":
            return None
        return one_loss.training_seed(self.seed, self.optimizer.iterations, one_loss.PENALTY)

    def augment_seed(self):
        """The stateless seed of this step's DiffAugment draws (None when off)."""
        if not self.diffaugment:
            return None
        return one_loss.training_seed(self.seed, self.optimizer.iterations, one_loss.AUGMENT)

    def sample_noise(self, batch_size, step=None):
        """Training noise z ~ N(0, I) for a step (default: the optimizer's)."""
        step = self.optimizer.iterations if step is None else step
        return tf.random.stateless_normal((batch_size, self.z_dim),
                                          seed=one_loss.training_seed(self.seed, step),
                                          dtype=self.noise_dtype)

    # ------------------------------------------------------------ for users
    def score(self, x, training=True):
        """The critic's per-sample score D(x): the mean of its outputs."""
        return losses.critic_score(self.critic(x, training=training))

    def call(self, z, training=False):
        return self.generator(z, training=training)

    @property
    def sampler(self):
        """The network that maps noise to samples."""
        return self.generator

    @property
    def noise_dtype(self):
        """The dtype of the generator's input z."""
        return self.generator.inputs[0].dtype

    def make_noise(self, n, seed=None, stream=one_loss.SAMPLES):
        """n noise vectors: fresh ones, or a fixed draw for a seed (and stream)."""
        shape, dtype = (n, self.z_dim), self.noise_dtype
        if seed is None:
            return tf.random.normal(shape, dtype=dtype)
        return tf.random.stateless_normal(shape, seed=one_loss.fixed_seed(seed, stream),
                                          dtype=dtype)

    def generate(self, n_or_z, seed=None, training=False, standing_stats=0,
                 standing_batch=standing.BATCH_SIZE):
        """float32 images G(z) from n noise vectors (fresh, or fixed by `seed`) or
        from given z; standing_stats = N > 0: with BatchNorm's standing statistics
        over N batches of `standing_batch` noise vectors (`standing.sample`)."""
        return standing.sample(self, n_or_z, seed, training, standing_stats, standing_batch)

    def serving_endpoints(self):
        """`export`'s signatures: generate, z (batch, z_dim) → images; then sample."""
        dtype = self.noise_dtype
        return {
            "generate": (lambda z: one_loss.float32(self.generator(tf.cast(z, dtype),
                                                                   training=False)),
                         [one_loss.float_spec((self.z_dim,))]),
            **super().serving_endpoints(),
        }

    # ------------------------------------------------------------- saving
    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "critic": keras.saving.serialize_keras_object(self.critic),
            "z_dim": self.z_dim,
            "objective": self.objective,
            "penalty": self.penalty,
            "penalty_weight": self.penalty_weight,
            "seed": self.seed,
            "diffaugment": self.diffaugment,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "critic"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="ogan_ign")
class TwoPlayerGAN(SingleLossGAN):
    """The conventional alternative: two losses, two optimizers, alternating
    updates (one critic step, then one generator step on the same batch and z).

    It is the baseline the single loss is measured against (bench/bench_step.py)
    and the "plain DCGAN" reference (objective "ns", no penalty). Under a
    strategy its BatchNorm is synchronized as in the single-loss step, and
    under fp16 both optimizers scale their losses. With XLA over several
    replicas it runs uncompiled: the per-replica XLA step is the single loss's.
    It has no DiffAugment.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.diffaugment:
            raise ValueError("TwoPlayerGAN is the baseline without DiffAugment")

    def compile(self, optimizer=None, generator_optimizer=None, **kwargs):
        """`optimizer` trains the critic, `generator_optimizer` the generator
        (both default to the original RMSprop(1e-4, rho=0.99)). Under fp16,
        compile() wraps the critic's in a LossScaleOptimizer, and so this
        wraps the generator's."""
        super().compile(optimizer=optimizer, **kwargs)
        generator_optimizer = generator_optimizer or self.default_optimizer()
        if (isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
                and not isinstance(generator_optimizer, keras.optimizers.LossScaleOptimizer)):
            generator_optimizer = keras.optimizers.LossScaleOptimizer(generator_optimizer)
        self.generator_optimizer = generator_optimizer
        self.generator_optimizer.build(self.generator.trainable_variables)

    def train_step(self, data):
        x_real, z = one_loss.unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        n_replicas = one_loss.num_replicas()
        with one_loss.synchronized_batchnorm(self, n_replicas > 1):
            # Critic step: the fake batch is a constant here.
            x_fake_sg = tf.stop_gradient(self.generator(z, training=True))
            with tf.GradientTape() as tape:
                e_real = self.critic(x_real, training=True)
                e_fake_sg = self.critic(x_fake_sg, training=True)
                d_real, d_fake_sg = losses.critic_score(e_real), losses.critic_score(e_fake_sg)
                critic_loss = losses.critic_loss(d_real, d_fake_sg, self.objective)
                lipschitz = self.loss_fn().lipschitz_penalty(self.critic, x_real, x_fake_sg,
                                                             d_real, d_fake_sg)
                loss = self.optimizer.scale_loss(
                    (critic_loss + self.penalty_weight * lipschitz) / n_replicas)
            critic_vars = self.critic.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, critic_vars), critic_vars))
            # Generator step, against the updated critic.
            with tf.GradientTape() as tape:
                d_fake = self.score(self.generator(z, training=True))
                _, _, on_generated = losses.objective_terms(self.objective)
                generator_loss = tf.reduce_mean(on_generated(d_fake))
                loss = self.generator_optimizer.scale_loss(generator_loss / n_replicas)
            generator_vars = self.generator.trainable_variables
            self.generator_optimizer.apply_gradients(
                zip(tape.gradient(loss, generator_vars), generator_vars))
        terms = {"loss/total": critic_loss + self.penalty_weight * lipschitz + generator_loss,
                 "loss/critic": critic_loss, "loss/generator": generator_loss,
                 "loss/penalty": lipschitz, "score/real": tf.reduce_mean(d_real),
                 "score/fake": tf.reduce_mean(d_fake)}
        return self.update_trackers(terms)
