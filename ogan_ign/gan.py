"""SingleLossGAN: a GAN trained with one tape, one loss and one optimizer.

The loss is `losses.single_loss` (arXiv 1903.01931's stop-gradient trick):

    D(x) − 2·D(sg(G(z))) + D(G(z))            (objective "wgan")

plus a Lipschitz penalty on the critic (GAN-QP's quadratic penalty, the original
O-GAN code's choice, or WGAN-GP). The critic's score is the mean of its outputs
over the last axis, so a critic with one output is an ordinary critic and an
encoder with nz outputs is O-GAN's avg(E(x)) (see `ogan.OGAN`).
"""

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import losses

PENALTIES = ("qp", "gp", None)


def default_optimizer():
    """RMSprop(1e-4, rho=0.99): the original O-GAN code's single optimizer."""
    return keras.optimizers.RMSprop(learning_rate=1e-4, rho=0.99)


def replica_scale(loss):
    """Divides a per-replica mean loss by the replica count.

    Under tf.distribute the gradients of all replicas are summed, so this makes
    the update equal to that of one device seeing the global batch.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return loss / tf.cast(replicas, loss.dtype) if replicas > 1 else loss


def unpack_batch(data):
    """A batch is `x` or `(x, z)`; returns (x, z or None)."""
    if isinstance(data, (tuple, list)):
        x_real = data[0]
        z = data[1] if len(data) > 1 else None
        return x_real, z
    return data, None


@keras.saving.register_keras_serializable(package="ogan_ign")
class SingleLossGAN(keras.Model):
    """GAN whose critic and generator share one loss and one optimizer.

    Args:
      generator: keras.Model z (batch, z_dim) → x.
      critic: keras.Model x → scores (batch, k); the score is the mean over k.
      z_dim: noise size (default: the generator's input size).
      objective: "wgan", "hinge" or "ns" (see `losses.OBJECTIVES`).
      penalty: "qp" (GAN-QP, the original O-GAN code), "gp" (WGAN-GP) or None.
      penalty_weight: weight of the penalty; default 1 for "qp" (its 0.25 is
        built in, as in the original), 10 for "gp".
      seed: base seed of the training noise. The noise of a step is a pure
        function of (seed, replica, step), so a resumed run draws what an
        uninterrupted run would have drawn.
    """

    def __init__(self, generator, critic, z_dim=None, objective="wgan", penalty="qp",
                 penalty_weight=None, seed=0, **kwargs):
        super().__init__(**kwargs)
        losses.objective_terms(objective)  # fails early on an unknown name
        if penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {penalty!r}; expected one of {list(PENALTIES)}")
        self.generator = generator
        self.critic = critic
        self.z_dim = int(z_dim or generator.input_shape[-1])
        self.objective = objective
        self.penalty = penalty
        if penalty_weight is None:
            penalty_weight = 10.0 if penalty == "gp" else 1.0
        self.penalty_weight = float(penalty_weight)
        self.seed = int(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in self.metric_names()
        }
        self.built = True  # sub-models are built; lets fit() trace under a strategy

    # ----------------------------------------------------------------- helpers
    def metric_names(self):
        return ["loss/total", "loss/critic", "loss/generator", "loss/penalty",
                "score/real", "score/fake"]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def score(self, x, training=True):
        """The critic's per-sample score: mean of its outputs over the last axis."""
        return self.critic_score(self.critic(x, training=training))

    @staticmethod
    def critic_score(outputs):
        # Under a mixed-precision policy the score and every loss are float32.
        if outputs.dtype in (tf.float16, tf.bfloat16):
            outputs = tf.cast(outputs, tf.float32)
        return tf.reduce_mean(tf.reshape(outputs, [tf.shape(outputs)[0], -1]), axis=-1)

    def step_seed(self, salt, step=None):
        """A stateless seed for (seed, replica, step, salt): training randomness is
        a pure function of the step counter, so a resumed run repeats it exactly
        and each replica draws its own."""
        if step is None:
            step = self.optimizer.iterations
        replica = tf.distribute.get_replica_context()
        replica_id = replica.replica_id_in_sync_group if replica is not None else 0
        stream = (tf.cast(self.seed, tf.int64) * 1009 + tf.cast(replica_id, tf.int64)) * 16 + salt
        return tf.stack([stream, tf.cast(step, tf.int64)])

    def sample_noise(self, batch_size, step=None):
        """Training noise z ~ N(0, I) for a step."""
        dtype = self.generator.inputs[0].dtype
        return tf.random.stateless_normal((batch_size, self.z_dim), seed=self.step_seed(0, step),
                                          dtype=dtype)

    # -------------------------------------------------------------- the model
    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, n_or_z, seed=None, training=False):
        """Images from `n` fresh noise vectors (optionally seeded) or from given z."""
        dtype = self.generator.inputs[0].dtype
        if isinstance(n_or_z, (int, np.integer)):
            shape = (int(n_or_z), self.z_dim)
            z = (tf.random.normal(shape, dtype=dtype) if seed is None
                 else tf.random.stateless_normal(shape, seed=[seed, 0], dtype=dtype))
        else:
            z = tf.convert_to_tensor(n_or_z, dtype=dtype)
        x = self.generator(z, training=training)
        return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x

    def compile(self, optimizer=None, **kwargs):
        """One optimizer for all weights (default RMSprop(1e-4, rho=0.99))."""
        super().compile(optimizer=optimizer or default_optimizer(), **kwargs)
        # Built here, inside whatever strategy scope compile() runs in, so that
        # fit() never creates optimizer slots while tracing.
        self.optimizer.build(self.trainable_variables)

    def compute_terms(self, x_real, z):
        """All loss terms of one step, as a dict; "loss/total" is what is minimised."""
        x_fake = self.generator(z, training=True)
        x_fake_sg = tf.stop_gradient(x_fake)
        e_real = self.critic(x_real, training=True)
        e_fake = self.critic(x_fake, training=True)
        e_fake_sg = self.critic(x_fake_sg, training=True)
        d_real = self.critic_score(e_real)
        d_fake = self.critic_score(e_fake)
        d_fake_sg = self.critic_score(e_fake_sg)

        terms = {
            "loss/total": losses.single_loss(d_real, d_fake, d_fake_sg, self.objective),
            "loss/critic": losses.critic_loss(d_real, d_fake_sg, self.objective),
            "loss/generator": tf.reduce_mean(losses.objective_terms(self.objective)[2](d_fake)),
            "score/real": tf.reduce_mean(d_real),
            "score/fake": tf.reduce_mean(d_fake),
        }
        penalty = self.penalty_term(x_real, x_fake_sg, d_real, d_fake_sg)
        terms["loss/penalty"] = penalty
        terms["loss/total"] += self.penalty_weight * penalty
        terms.update(self.extra_terms(z, e_fake, terms))
        return terms

    def penalty_term(self, x_real, x_fake_sg, d_real, d_fake_sg):
        """The critic's Lipschitz penalty (unweighted); it reaches the critic only."""
        x_real = tf.cast(x_real, d_real.dtype)
        x_fake_sg = tf.cast(x_fake_sg, d_real.dtype)
        if self.penalty == "qp":
            return losses.qp_penalty(d_real, d_fake_sg, x_real, x_fake_sg)
        if self.penalty == "gp":
            alpha = tf.random.stateless_uniform([tf.shape(x_real)[0]], seed=self.step_seed(1),
                                                dtype=x_real.dtype)
            return losses.gradient_penalty(self.score, x_real, x_fake_sg, alpha)
        return tf.zeros([], d_real.dtype)

    def extra_terms(self, z, e_fake, terms):
        """Hook for models that add to the loss (O-GAN's correlation); none here."""
        return {}

    def train_step(self, data):
        x_real, z = unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        with tf.GradientTape() as tape:
            terms = self.compute_terms(x_real, z)
            loss = replica_scale(terms["loss/total"])
        variables = self.trainable_variables
        grads = tape.gradient(loss, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    # ------------------------------------------------------------- saving
    def get_compile_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))

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
    and the "plain DCGAN" reference (objective "ns", no penalty).
    """

    def compile(self, optimizer=None, generator_optimizer=None, **kwargs):
        """`optimizer` trains the critic, `generator_optimizer` the generator
        (both default to the original RMSprop(1e-4, rho=0.99))."""
        super().compile(optimizer=optimizer, **kwargs)
        self.generator_optimizer = generator_optimizer or default_optimizer()
        self.generator_optimizer.build(self.generator.trainable_variables)

    def train_step(self, data):
        x_real, z = unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        h = losses.objective_terms(self.objective)[2]
        # Critic step: the fake batch is a constant here.
        x_fake_sg = tf.stop_gradient(self.generator(z, training=True))
        with tf.GradientTape() as tape:
            d_real = self.score(x_real)
            d_fake_sg = self.score(x_fake_sg)
            critic_loss = losses.critic_loss(d_real, d_fake_sg, self.objective)
            penalty = self.penalty_term(x_real, x_fake_sg, d_real, d_fake_sg)
            loss = replica_scale(critic_loss + self.penalty_weight * penalty)
        critic_vars = self.critic.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, critic_vars), critic_vars))
        # Generator step, against the updated critic.
        with tf.GradientTape() as tape:
            d_fake = self.score(self.generator(z, training=True))
            generator_loss = tf.reduce_mean(h(d_fake))
            loss = replica_scale(generator_loss)
        generator_vars = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(
            zip(tape.gradient(loss, generator_vars), generator_vars))
        terms = {"loss/total": critic_loss + self.penalty_weight * penalty + generator_loss,
                 "loss/critic": critic_loss, "loss/generator": generator_loss,
                 "loss/penalty": penalty, "score/real": tf.reduce_mean(d_real),
                 "score/fake": tf.reduce_mean(d_fake)}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
