"""SingleLossGAN: a GAN trained with one tape, one loss and one optimizer.

The loss is `losses.single_loss` (arXiv 1903.01931's stop-gradient trick):

    D(x) − 2·D(sg(G(z))) + D(G(z))            (objective "wgan")

plus a Lipschitz penalty on the critic (GAN-QP's quadratic penalty, the original
O-GAN code's choice, or WGAN-GP). The critic's score is the mean of its outputs
over the last axis, so a critic with one output is an ordinary critic and an
encoder with nz outputs is O-GAN's avg(E(x)) (see `ogan.OGAN`).

`OneLossModel` holds the training step shared with `ign.IGN`: one tape, one
loss, one optimizer, on one device or under a tf.distribute strategy.

Distribution. The batch fit() receives is the global batch; each replica gets an
equal share. Each replica's mean loss is divided by the replica count
(`replica_scale`) because the strategy sums gradients across replicas, so the
update is the one-device update on the global batch. Training noise is a pure
function of (seed, replica, step); batches (x, z) bring their own noise.

BatchNorm under more than one replica (the choice, and why):

* XLA off (the default on CPUs): BatchNorm layers are *synchronized* while the
  step is traced: their batch moments are all-reduced over the replicas, so
  every replica normalises with the global batch's statistics and writes the
  same moving statistics. A 2-replica step then equals a one-device step on
  the global batch (tests/test_distribute.py: float64, atol 1e-9).
* XLA on (`compile(jit_compile=True)`): Keras would compile the whole step,
  cross-replica reductions included, into one XLA cluster, which fails with a
  cross-device resource error (keras-team/keras#19005). Here only the
  per-replica computation is compiled: a pure function (weights, BatchNorm
  statistics, x, z) → (gradients, new BatchNorm statistics, loss terms), made
  pure by a `keras.StatelessScope`. The gradient all-reduce (inside
  `apply_gradients`) and a MEAN all-reduce of the new moving statistics run
  outside XLA. An all-reduce cannot sit inside that compiled function, so the
  batch moments are *per replica* (each replica normalises with its own share
  of the batch) and the moving statistics are averaged over the replicas after
  each step, so all replicas hold identical statistics. The step equals a
  one-device "ghost batch" step — the global batch split into the same shards,
  gradients and moving statistics averaged over the shards — and, for nets
  without BatchNorm, the plain one-device step (float64, atol 1e-9). The moving
  variance is then the mean of the shards' variances, which misses the spread
  between the shards' means.
* Other batch-level statistics follow the same rule; the one in this library
  is IGN's tightness-clamp scale (the batch mean of δ(x)): averaged over the
  replicas with XLA off, per replica with XLA on.
"""

import contextlib

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


def _batchnorm_layers(layer):
    """Every BatchNormalization layer inside `layer`, through nested models."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return [layer]
    found = []
    for sub in getattr(layer, "layers", []):
        found.extend(_batchnorm_layers(sub))
    return found


@contextlib.contextmanager
def synchronized_batchnorm(model, active=True):
    """BatchNorm layers all-reduce their batch moments while the step is traced.

    Trace-time only (the layers read `synchronized` when called), so the saved
    layers keep their own setting.
    """
    layers = [l for l in _batchnorm_layers(model) if not l.synchronized] if active else []
    for layer in layers:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer in layers:
            layer.synchronized = False


def _by_identity(variables, exclude):
    # Keras variables overload ==, so membership is tested by id.
    excluded = {id(v) for v in exclude}
    return [v for v in variables if id(v) not in excluded]


class OneLossModel(keras.Model):
    """The training step shared by SingleLossGAN and IGN.

    A subclass provides `compute_terms(x_real, z)` → dict with "loss/total",
    `sample_noise(batch_size)`, `trainable_for_step()` and a `trackers` dict
    of keras.metrics.Mean named like the terms. See the module docstring for
    what happens under a strategy, with and without XLA.
    """

    split_xla = False  # set by make_train_function

    def trainable_for_step(self):
        return self.trainable_variables

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras reduces a first batch across replicas to build compile()'s losses
        # and metrics; under MultiWorkerMirroredStrategy that eager reduction of
        # a PerReplica batch fails (Keras 3.15). These models take no compiled
        # loss or metric, are built in __init__ and build their optimizer in
        # compile(), so there is nothing left to build.
        if self.built and getattr(self.optimizer, "built", False):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def make_train_function(self, force=False):
        strategy = self.distribute_strategy
        # TPUs compile everything anyway and can all-reduce inside; elsewhere
        # an XLA step over several replicas compiles per replica only.
        self.split_xla = bool(self.jit_compile and strategy.num_replicas_in_sync > 1
                              and not isinstance(strategy, tf.distribute.TPUStrategy))
        if not self.split_xla:
            return super().make_train_function(force)
        self._replica_step = tf.function(self._pure_replica_step, jit_compile=True,
                                         reduce_retracing=True)
        # The function Keras builds around the replicas holds the all-reduces:
        # it must stay out of XLA (keras-team/keras#19005).
        self._jit_compile = False
        try:
            return super().make_train_function(force)
        finally:
            self._jit_compile = True

    def train_step(self, data):
        x_real, z = unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        variables = self.trainable_for_step()
        if self.split_xla:
            terms = self._split_xla_step(x_real, z, variables)
        else:
            replicas = self.distribute_strategy.num_replicas_in_sync
            with synchronized_batchnorm(self, replicas > 1), tf.GradientTape() as tape:
                terms = self.compute_terms(x_real, z)
                # Under fp16 the optimizer is a LossScaleOptimizer: scaled here,
                # unscaled (and skipped when not finite) in apply_gradients.
                loss = self.optimizer.scale_loss(replica_scale(terms["loss/total"]))
            grads = tape.gradient(loss, variables)
            self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return self.step_logs()

    # Saved with the model, so a loaded .keras file is ready to train on.
    def get_compile_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))

    def step_logs(self):
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs along axis 0, which a scalar lacks
            # (tensorflow/tensorflow#72388).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    # ------------------------------------------- XLA per replica, reductions outside
    def _state_variables(self, variables):
        """What the step reads besides `variables`: the other weights, BatchNorm
        statistics, and the step counter (it seeds the gradient penalty's α)."""
        other = _by_identity(self.trainable_weights + self.non_trainable_weights, variables)
        return other + [self.optimizer.iterations]

    def _split_xla_step(self, x_real, z, variables):
        other = self._state_variables(variables)
        scale = self.optimizer.scale_loss(tf.constant(1.0))
        grads, updates, terms = self._replica_step(
            [tf.convert_to_tensor(v) for v in variables],
            [tf.convert_to_tensor(v) for v in other], x_real, z, scale)
        self.optimizer.apply_gradients(zip(grads, variables))  # all-reduce SUM inside
        updated = [(v, value) for v, value in zip(other, updates) if value is not None]
        if updated:
            context = tf.distribute.get_replica_context()
            means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [value for _, value in updated])
            for (variable, _), mean in zip(updated, means):
                variable.assign(mean)
        return terms

    def _pure_replica_step(self, values, other_values, x_real, z, scale):
        """(weights, state, x, z) → (gradients, new state or None each, terms);
        reads and writes no variable, so XLA can compile it on each replica."""
        variables = self.trainable_for_step()
        other = self._state_variables(variables)
        mapping = list(zip(variables, values)) + list(zip(other, other_values))
        with tf.GradientTape() as tape:
            tape.watch(values)
            with keras.StatelessScope(state_mapping=mapping) as scope:
                before = dict(scope.state_mapping)
                terms = self.compute_terms(x_real, z)
                loss = replica_scale(terms["loss/total"]) * tf.cast(scale, terms["loss/total"].dtype)
        grads = tape.gradient(loss, values)
        updates = [scope.state_mapping[id(v)] if scope.state_mapping[id(v)] is not before[id(v)]
                   else None for v in other]
        return grads, updates, terms


@keras.saving.register_keras_serializable(package="ogan_ign")
class SingleLossGAN(OneLossModel):
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
    """

    def compile(self, optimizer=None, generator_optimizer=None, **kwargs):
        """`optimizer` trains the critic, `generator_optimizer` the generator
        (both default to the original RMSprop(1e-4, rho=0.99)). Under fp16,
        compile() wraps the critic's in a LossScaleOptimizer, and so this
        wraps the generator's."""
        super().compile(optimizer=optimizer, **kwargs)
        generator_optimizer = generator_optimizer or default_optimizer()
        if (isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
                and not isinstance(generator_optimizer, keras.optimizers.LossScaleOptimizer)):
            generator_optimizer = keras.optimizers.LossScaleOptimizer(generator_optimizer)
        self.generator_optimizer = generator_optimizer
        self.generator_optimizer.build(self.generator.trainable_variables)

    def train_step(self, data):
        x_real, z = unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        h = losses.objective_terms(self.objective)[2]
        replicas = self.distribute_strategy.num_replicas_in_sync
        with synchronized_batchnorm(self, replicas > 1):
            # Critic step: the fake batch is a constant here.
            x_fake_sg = tf.stop_gradient(self.generator(z, training=True))
            with tf.GradientTape() as tape:
                d_real = self.score(x_real)
                d_fake_sg = self.score(x_fake_sg)
                critic_loss = losses.critic_loss(d_real, d_fake_sg, self.objective)
                penalty = self.penalty_term(x_real, x_fake_sg, d_real, d_fake_sg)
                loss = self.optimizer.scale_loss(
                    replica_scale(critic_loss + self.penalty_weight * penalty))
            critic_vars = self.critic.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, critic_vars), critic_vars))
            # Generator step, against the updated critic.
            with tf.GradientTape() as tape:
                d_fake = self.score(self.generator(z, training=True))
                generator_loss = tf.reduce_mean(h(d_fake))
                loss = self.generator_optimizer.scale_loss(replica_scale(generator_loss))
            generator_vars = self.generator.trainable_variables
            self.generator_optimizer.apply_gradients(
                zip(tape.gradient(loss, generator_vars), generator_vars))
        terms = {"loss/total": critic_loss + self.penalty_weight * penalty + generator_loss,
                 "loss/critic": critic_loss, "loss/generator": generator_loss,
                 "loss/penalty": penalty, "score/real": tf.reduce_mean(d_real),
                 "score/fake": tf.reduce_mean(d_fake)}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        return self.step_logs()
