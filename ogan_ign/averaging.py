"""An exponential moving average of ALL of a model's weights.

Trainable weights and BatchNorm's moving statistics alike are averaged after
every training step t = 1, 2, ...:

    ā_t = d_t · ā_(t−1) + (1 − d_t) · w_t,    d_t = min(decay, (1 + t) / (10 + t)),

ā_0 the weights the average was made from. The warm-up term keeps a short run's
average from remembering its initial weights (d_1 = 2/11; it reaches 0.999 at
t = 8,991).

Why not Keras's optimizer EMA (`use_ema`): it averages the trainable weights only,
so the averaged weights run with the live weights' BatchNorm statistics, which
belong to other weights (what averaging both does for IGN: docs/ign/RESULTS.md).

Use with `fit`:

    average = WeightAverage(model, decay=0.999)   # after the model is built
    model.fit(data, callbacks=[average])
    with average.swapped():                       # the averaged weights, for a while
        x = model.generate(64, seed=0)
    average.assign()                              # or for good (e.g. to export)

It updates once per `on_train_batch_end`, so the model must be compiled with
steps_per_execution=1. Made inside a strategy's scope, its variables are mirrored
like the model's; the update runs outside the replicas' step, on weights that are
already the same in every replica. `average.state` is the trackable to put into a
tf.train.Checkpoint (the driver checkpoints it as "average"), which makes a
resumed run's average equal to an uninterrupted one's.
"""

import contextlib

import keras
import tensorflow as tf

WARMUP = 10.0  # d_t = min(decay, (1 + t) / (WARMUP + t))


def swapped_in(average):
    """`average.swapped()`, or a block that changes nothing when `average` is None
    (no average kept, e.g. --ema 0)."""
    return average.swapped() if average is not None else contextlib.nullcontext()


def averaged_weights(model):
    """The weights an average covers: every floating-point weight of `model`
    (integer state such as random seeds is not averaged)."""
    return [w for w in model.weights if tf.as_dtype(w.dtype).is_floating]


class WeightAverage(keras.callbacks.Callback):
    """An exponential moving average of every float weight of `model`, BatchNorm's
    moving statistics included (see the module docstring for the math)."""

    def __init__(self, model, decay):
        super().__init__()
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the average's decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.weights = averaged_weights(model)
        if not self.weights:
            raise ValueError(f"{model.name} has no weights yet; build it before averaging them")
        self.state = tf.Module(name="average")
        self.state.count = tf.Variable(0.0, trainable=False, name="count")
        self.state.values = [tf.Variable(tf.cast(w, tf.float32), trainable=False,
                                         name=f"average_{i}")
                             for i, w in enumerate(self.weights)]
        self._update = tf.function(self._update_step)

    @property
    def count(self):
        """How many steps the average has taken in."""
        return int(tf.convert_to_tensor(self.state.count).numpy())

    def _update_step(self):
        t = self.state.count + 1.0
        d = tf.minimum(tf.constant(self.decay, tf.float32), (1.0 + t) / (WARMUP + t))
        for average, w in zip(self.state.values, self.weights):
            average.assign(d * average + (1.0 - d) * tf.cast(w, tf.float32))
        self.state.count.assign(t)

    def update(self):
        """Takes the model's current weights into the average (one step)."""
        self._update()

    def reset(self):
        """Restarts the average from the model's current weights (t = 0)."""
        for average, w in zip(self.state.values, self.weights):
            average.assign(tf.cast(w, tf.float32))
        self.state.count.assign(0.0)

    def on_train_begin(self, logs=None):
        every = getattr(self.model, "steps_per_execution", 1)
        if int(every) != 1:
            raise ValueError(f"WeightAverage updates once per batch end, so it needs "
                             f"steps_per_execution=1 (the model has {int(every)})")

    def on_train_batch_end(self, batch, logs=None):
        self.update()

    def assign(self):
        """Puts the averaged values into the model's weights."""
        for average, w in zip(self.state.values, self.weights):
            w.assign(tf.cast(average, w.dtype))

    @contextlib.contextmanager
    def swapped(self):
        """The averaged weights in the model while the block runs, its own after."""
        own = [tf.convert_to_tensor(w).numpy() for w in self.weights]
        self.assign()
        try:
            yield
        finally:
            for w, value in zip(self.weights, own):
                w.assign(value)
