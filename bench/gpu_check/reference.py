"""What one training step on several replicas must equal, computed on one
device without the library's step or a strategy, and the tools that compare.
Shared by gpu_check's equality section and tests/test_distribute.py.

The step is SGD with learning rate lr, so the update is −lr·gradient and
nothing hides a difference. Two references (reference_step):

* shards = 1, the plain step on the whole batch: what N replicas must take when
  BatchNorm is synchronized across them (XLA off).
* shards = N, the "ghost batch" step: each shard's update from the same start,
  then averaged (trained weights: start − lr · mean gradient; BatchNorm
  statistics: the mean of the shards' new statistics). What N replicas must
  take when batch moments are per replica and the moving statistics averaged
  (XLA on).

The batch's two halves differ (halves_batch), so the two references differ.
"""

import contextlib

import keras
import numpy as np
import tensorflow as tf


@contextlib.contextmanager
def float64():
    """Builds in float64; floatx and Keras's dtype policy are restored after."""
    saved = (keras.config.floatx(), keras.config.dtype_policy().name)
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(saved[0])
        keras.config.set_dtype_policy(saved[1])


def dense_net(shape_in, units_out, name, squash=False):
    """Dense → BatchNormalization (momentum 0.5, so statistics move) → LeakyReLU
    → Dense, optionally tanh: a net small enough to XLA-compile in seconds."""
    stack = [keras.Input(shape_in), keras.layers.Dense(8),
             keras.layers.BatchNormalization(momentum=0.5), keras.layers.LeakyReLU(0.2),
             keras.layers.Dense(units_out)]
    if squash:
        stack.append(keras.layers.Activation("tanh"))
    return keras.Sequential(stack, name=name)


def halves_batch(n, x_shape, z_shape, seed=1):
    """(x, z) of a global batch of n: x uniform in [−1, 1] with its second half
    moved (0.5·x + 0.3), so that per-replica batch statistics give another step
    than global ones; z standard normal."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n,) + tuple(x_shape))
    x[n // 2:] = 0.5 * x[n // 2:] + 0.3
    z = rng.normal(size=(n,) + tuple(z_shape))
    return x, z


def dataset(x, z, batch=None):
    """(x, z) in global batches of `batch` (default: all of it), each split
    evenly over the replicas in order."""
    data = tf.data.Dataset.from_tensor_slices((x, z)).batch(batch or len(x))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options)


@contextlib.contextmanager
def own_collective_keys():
    """Strategies made inside get collective keys no other strategy uses.

    Every MirroredStrategy numbers its collective ops from the same class-wide
    base, so two strategies of one process that all-reduce tensors of different
    shapes collide in TensorFlow's collective executor ("Shape mismatch in the
    collective instance"). TensorFlow has no public way to give a strategy its
    own keys: passing cross_device_ops avoids the collectives but then checks
    another all-reduce than the scripts run. So the private base is moved on
    before and after (TensorFlow's own tests do the same); this is the one place
    that touches it.
    """
    strategy = tf.distribute.MirroredStrategy
    strategy._collective_key_base += 1000  # pylint: disable=protected-access
    try:
        yield
    finally:
        strategy._collective_key_base += 1000  # pylint: disable=protected-access


def mirrored(devices):
    """A MirroredStrategy over `devices` with collective keys of its own."""
    with own_collective_keys():
        return tf.distribute.MirroredStrategy(devices)


def reference_step(make, x, z, shards, lr):
    """The weights after one SGD step of a fresh `make()` on (x, z), eager, on
    one device: the batch cut into `shards` equal parts, each part's update from
    the same start, the results averaged (the module docstring)."""
    model = make()
    start = model.get_weights()
    trainable = model.trainable_for_step()
    position = {id(v): i for i, v in enumerate(model.weights)}
    total = [np.zeros_like(w) for w in start]
    for x_part, z_part in zip(np.split(x, shards), np.split(z, shards)):
        model.set_weights(start)
        with tf.GradientTape() as tape:
            loss = model.compute_terms(tf.constant(x_part), tf.constant(z_part))["loss/total"]
        after = [w.copy() for w in model.get_weights()]  # BatchNorm statistics moved
        for variable, grad in zip(trainable, tape.gradient(loss, trainable)):
            i = position[id(variable)]
            after[i] = start[i] - lr * (0.0 if grad is None else grad.numpy())
        total = [t + a / shards for t, a in zip(total, after)]
    return total


def mirrored_fit(make, data, devices, lr, xla):
    """(model, history) of fit() for one epoch of `data` on a fresh `make()` built
    under a MirroredStrategy over `devices`, with SGD(lr) and jit_compile=xla."""
    strategy = mirrored(devices)
    with strategy.scope():
        model = make()
        model.compile(optimizer=keras.optimizers.SGD(lr), jit_compile=xla)
    history = model.fit(data, epochs=1, verbose=0, shuffle=False).history
    return model, history


def max_difference(a, b):
    """The largest absolute difference between two lists of arrays."""
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a, b))


def disagreeing(model, replicas):
    """The paths of the variables that do not hold `replicas` copies equal bit for bit."""
    paths = []
    for variable in model.weights:
        copies = [np.asarray(c) for c in getattr(variable.value, "values", [variable.value])]
        if len(copies) != replicas or any(not np.array_equal(copies[0], c) for c in copies[1:]):
            paths.append(variable.path)
    return paths


def replicas_agree(model, replicas):
    """Every variable holds `replicas` copies, equal bit for bit."""
    return not disagreeing(model, replicas)
