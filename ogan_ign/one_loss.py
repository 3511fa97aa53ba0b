"""The one-loss training step shared by SingleLossGAN, OGAN and IGN.

One tape, one loss, one optimizer over every trained weight:

    grads, terms = replica_gradients(x_real, z)     # one replica's share of the batch
    optimizer.apply_gradients(grads)                # all-reduce (SUM) over replicas inside

A model supplies `loss_fn()` (its loss, a callable of `losses`) and `nets` (the
networks that loss is called on), `sample_noise`, `trainable_for_step` and `trackers`.

Distribution is behind one seam, the `Replicas` object the step is built with:

* `Replicas` (one device, or several with XLA off): BatchNorm layers all-reduce
  their batch moments while the step is traced, and `batch_statistic` averages
  any other batch-level statistic (IGN's clamp scale) over the replicas, so the
  step computes exactly the one-device step on the global batch.
* `XlaShards` (several replicas with `jit_compile=True`): Keras cannot compile
  a step whose all-reduces sit inside one XLA cluster (keras-team/keras#19005),
  so only the per-replica computation is compiled, as a pure function (weights,
  state, x, z) → (gradients, new state, terms). No all-reduce can run inside it:
  batch statistics are each replica's own ("ghost batches" of size B/R) and the
  new BatchNorm moving statistics are averaged over the replicas afterwards.
  That is a different computation from the one-device step; the driver records
  it (`batch_statistics`) and refuses to resume a run across the two.

Each replica's mean loss is divided by the replica count, because the
strategy sums the replicas' gradients. Every use of a private Keras attribute in
this package is in this module (see `KERAS_PRIVATE`); tests/test_one_loss.py fails
if Keras changes under them.

Training randomness is a pure function of (seed, replica, step, stream)
(`training_seed`), so a resumed run draws what an uninterrupted one would have.
Fixed noise for figures and scores comes from `fixed_seed(seed, stream)`, whose
negative stream ids no training step reaches.
"""

import contextlib

import keras
import tensorflow as tf

from ogan_ign import kernels

# The private Keras names this module relies on, each with why (tested in test_one_loss.py).
KERAS_PRIVATE = {
    # fit() reduces a first batch across replicas to build compiled losses and
    # metrics; under MultiWorkerMirroredStrategy that eager reduction fails. These
    # models have no compiled loss or metric and are built in __init__.
    "_maybe_symbolic_build": keras.Model,
    # make_train_function compiles the whole step when this is True; the
    # per-replica XLA step needs the outer function left uncompiled
    # (keras-team/keras#19005).
    "_jit_compile": keras.Model,
}

# Noise streams. Training: [key(seed, replica, stream), step], step ≥ 0.
NOISE, PENALTY, AUGMENT = 0, 1, 2   # AUGMENT: DiffAugment's T
# Fixed noise: [seed, stream], stream < 0, never a training step.
SAMPLES, FIGURES, METRICS, EVALUATION = -1, -2, -3, -5
# Standing statistics' batch k draws stream STANDING − k (standing.py).
STANDING = -1000


def training_seed(seed, step, stream=NOISE):
    """The stateless seed pair of a training draw: distinct per replica and stream,
    a function of the step."""
    replica = tf.distribute.get_replica_context()
    replica_id = replica.replica_id_in_sync_group if replica is not None else 0
    key = (tf.cast(seed, tf.int64) * 1009 + tf.cast(replica_id, tf.int64)) * 16 + stream
    return tf.stack([key, tf.cast(step, tf.int64)])


def fixed_seed(seed, stream):
    """The stateless seed pair of a fixed draw (samples, figures, metrics); `seed`
    a Python int or a tensor (an exported endpoint's input)."""
    return tf.stack([tf.cast(seed, tf.int64), tf.constant(stream, tf.int64)])


def num_replicas():
    return tf.distribute.get_strategy().num_replicas_in_sync


def unpack_batch(data):
    """A batch is `x` or `(x, z)`; returns (x, z or None)."""
    if isinstance(data, (tuple, list)):
        return data[0], (data[1] if len(data) > 1 else None)
    return data, None


def float32(x):
    """A model output as float32 whatever the dtype policy computed it in."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x


def float_spec(shape):
    """The input signature of one float32 tensor of `shape` (batch axis first, None)."""
    return keras.InputSpec(shape=(None,) + tuple(shape), dtype="float32")


COUNT_SPEC = keras.InputSpec(shape=(), dtype="int32")   # how many samples
SEED_SPEC = keras.InputSpec(shape=(), dtype="int64")    # a fixed draw's seed


def batchnorm_layers(layer):
    """Every keras BatchNormalization layer in `layer` and its sub-models."""
    return [bn for bn in kernels.walk(layer) if isinstance(bn, keras.layers.BatchNormalization)]


@contextlib.contextmanager
def synchronized_batchnorm(model, active=True):
    """BatchNorm layers all-reduce their batch moments while the step is traced
    (they read `synchronized` when called; the saved layers keep their setting)."""
    layers = [l for l in batchnorm_layers(model) if not l.synchronized] if active else []
    for layer in layers:
        layer.synchronized = True
    try:
        yield
    finally:
        for layer in layers:
            layer.synchronized = False


def _by_identity(variables, exclude):
    excluded = {id(v) for v in exclude}  # Keras variables overload ==
    return [v for v in variables if id(v) not in excluded]


class Replicas:
    """One device, or replicas whose batch statistics are global (all-reduced)."""

    batch_statistics = "global"

    def __init__(self, model):
        self.model = model

    def batch_statistic(self, value):
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return value
        return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)

    def gradients(self, variables, x_real, z):
        model = self.model
        with synchronized_batchnorm(model, num_replicas() > 1), tf.GradientTape() as tape:
            terms = model.compute_terms(x_real, z)
            # Under fp16 the optimizer is a LossScaleOptimizer: scaled here,
            # unscaled (and skipped when not finite) in apply_gradients.
            loss = model.optimizer.scale_loss(terms["loss/total"] / num_replicas())
        return tape.gradient(loss, variables), terms


class XlaShards(Replicas):
    """Several replicas, each running an XLA-compiled pure step on its own shard."""

    batch_statistics = "per replica"

    def __init__(self, model):
        super().__init__(model)
        self.compiled = tf.function(self._pure_step, jit_compile=True, reduce_retracing=True)

    def batch_statistic(self, value):
        return value  # no all-reduce inside the compiled function

    def _state(self, variables):
        """What the step reads besides `variables`: the other weights, BatchNorm
        statistics, and the step counter (it seeds the gradient penalty's α)."""
        model = self.model
        other = _by_identity(model.trainable_weights + model.non_trainable_weights, variables)
        return other + [model.optimizer.iterations]

    def gradients(self, variables, x_real, z):
        state = self._state(variables)
        scale = self.model.optimizer.scale_loss(tf.constant(1.0))
        grads, updates, terms = self.compiled(
            [tf.convert_to_tensor(v) for v in variables],
            [tf.convert_to_tensor(v) for v in state], x_real, z, scale)
        updated = [(v, value) for v, value in zip(state, updates) if value is not None]
        if updated:
            context = tf.distribute.get_replica_context()
            means = context.all_reduce(tf.distribute.ReduceOp.MEAN, [u for _, u in updated])
            for (variable, _), mean in zip(updated, means):
                variable.assign(mean)
        return grads, terms

    def _pure_step(self, values, state_values, x_real, z, scale):
        """(weights, state, x, z) → (gradients, new state or None each, terms);
        reads and writes no variable."""
        model = self.model
        variables = model.trainable_for_step()
        state = self._state(variables)
        mapping = list(zip(variables, values)) + list(zip(state, state_values))
        with tf.GradientTape() as tape:
            tape.watch(values)
            with keras.StatelessScope(state_mapping=mapping) as scope:
                before = dict(scope.state_mapping)
                terms = model.compute_terms(x_real, z)
                total = terms["loss/total"]
                loss = total / num_replicas() * tf.cast(scale, total.dtype)
        grads = tape.gradient(loss, values)
        updates = [scope.state_mapping[id(v)] if scope.state_mapping[id(v)] is not before[id(v)]
                   else None for v in state]
        return grads, updates, terms


def uses_xla_shards(jit_compile, strategy):
    """Whether an XLA step under `strategy` runs as per-replica shards (TPUs
    compile the all-reduces too; one replica needs no split)."""
    return bool(jit_compile is True and strategy.num_replicas_in_sync > 1
                and not isinstance(strategy, tf.distribute.TPUStrategy))


class OneLossModel(keras.Model):
    """A model trained by one loss: `compute_terms(x_real, z)["loss/total"]`.

    Subclasses set `self.trackers` (keras.metrics.Mean named like the terms) and
    provide `loss_fn()` and `nets` (see `compute_terms`), `sample_noise(batch_size)`,
    `serving_endpoints()` (the signatures `export` writes) and, when not every
    weight trains, `trainable_for_step()`.
    """

    replicas = None  # the distribution seam, chosen by make_train_function

    def trainable_for_step(self):
        return self.trainable_variables

    @property
    def metrics(self):
        return list(self.trackers.values())

    def distribution(self):
        """The seam: `Replicas` unless make_train_function chose `XlaShards`."""
        if self.replicas is None:
            self.replicas = Replicas(self)
        return self.replicas

    def batch_statistic(self, value):
        """A per-replica batch statistic, averaged over the global batch where the
        step computes global statistics (see the module docstring)."""
        return self.distribution().batch_statistic(value)

    def compute_terms(self, x_real, z):
        """All loss terms of one step; "loss/total" is what is minimised. The
        loss callable `loss_fn()` runs the networks `nets` on the batch."""
        total, terms = self.loss_fn()(*self.nets, x_real, z)
        return {"loss/total": total, **terms}

    def train_step(self, data):
        x_real, z = unpack_batch(data)
        if z is None:
            z = self.sample_noise(tf.shape(x_real)[0])
        variables = self.trainable_for_step()
        grads, terms = self.distribution().gradients(variables, x_real, z)
        self.optimizer.apply_gradients(zip(grads, variables))
        return self.update_trackers(terms)

    def update_trackers(self, terms):
        """Adds a step's terms to the trackers; returns fit()'s logs."""
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(self.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
            # Keras reduces multi-worker logs along axis 0, which a scalar lacks
            # (tensorflow/tensorflow#72388).
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def make_train_function(self, force=False):
        if not uses_xla_shards(self.jit_compile, self.distribute_strategy):
            self.replicas = Replicas(self)
            return super().make_train_function(force)
        self.replicas = XlaShards(self)
        self._jit_compile = False  # the outer function holds the all-reduces
        try:
            return super().make_train_function(force)
        finally:
            self._jit_compile = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.built and getattr(self.optimizer, "built", False):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def compile(self, optimizer=None, **kwargs):
        """One optimizer for every trained weight (default: `default_optimizer()`)."""
        super().compile(optimizer=optimizer or self.default_optimizer(), **kwargs)
        # Built inside whatever strategy scope compile() runs in, so that fit()
        # never creates optimizer slots while tracing.
        self.optimizer.build(self.trainable_for_step())

    # ------------------------------------------------------------ export
    def training_noise(self, n, seed=None, stream=SAMPLES):
        """n draws of the noise the networks trained on, which standing statistics
        are measured on: `make_noise`'s, unless the model samples from another
        (IGN's temperature)."""
        return self.make_noise(n, seed, stream)

    def standing_targets(self):
        """The networks an export's standing statistics are set on, each with the
        input it normalises at inference, "noise" or "data" (images):
        ((sampler, "noise"),) — a generator only samples. A model whose network
        also takes images (IGN) overrides this."""
        return ((self.sampler, "noise"),)

    def serving_endpoints(self):
        """{name: (fn, input signature)} of `export`, float32 in and out. Each model
        puts its own generation first (it is also "serving_default"), then this
        one: sample, (n, seed) → n samples, equal to `generate(n, seed=seed)`."""
        def sample(n, seed):
            return float32(self.sampler(self.make_noise(n, seed), training=False))

        return {"sample": (sample, [COUNT_SPEC, SEED_SPEC])}

    def export(self, filepath, format="tf_saved_model", verbose=None,  # pylint: disable=redefined-builtin
               input_signature=None, **kwargs):
        """Writes a TensorFlow SavedModel for inference: one serving signature per
        `serving_endpoints()` entry, loadable with `tf.saved_model.load(filepath)`
        in any process (no ogan_ign needed there), e.g. `loaded.generate(z)`.

        Only format "tf_saved_model"; the signatures are the model's own, so
        `input_signature` is not taken. Returns `filepath`.
        """
        if format != "tf_saved_model" or input_signature is not None or kwargs:
            raise ValueError(f"{type(self).__name__}.export writes a tf_saved_model with the "
                             "model's own signatures; got format={format!r}"
                             + (", an input_signature" if input_signature is not None else "")
                             + (f", {sorted(kwargs)}" if kwargs else ""))
        archive = keras.export.ExportArchive()
        archive.track(self)
        for name, (fn, signature) in self.serving_endpoints().items():
            archive.add_endpoint(name, fn, input_signature=signature)
        archive.write_out(filepath, verbose=bool(verbose))
        return filepath

    # Saved with the model, so a loaded .keras file is ready to train on.
    def get_compile_config(self):
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        self.compile(optimizer=keras.saving.deserialize_keras_object(config["optimizer"]))
