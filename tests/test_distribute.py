"""One training step under tf.distribute equals one step on one device.

Two replicas on the two logical CPU devices of conftest.py, float64, SGD (so the
update is −lr·gradient and nothing hides a difference), batches (x, z) so both
runs see the same noise, nets small enough to XLA-compile in seconds, each with
BatchNorm. Tolerance on every weight and BatchNorm statistic after the step:
atol 1e-9 with XLA off; 1e-7 with XLA on, because XLA's CPU kernels differ from
TensorFlow's in the last digits of float64 (docs/GPU.md). The update itself
moves weights by more than 1e-3 and the two BatchNorm semantics below differ by
more than 1e-4 (checked in each test, so each test can fail).

What "the same" means (one_loss.py's docstring has the why):
* XLA off: BatchNorm is synchronized across replicas, so the 2-replica step is
  the one-device step on the global batch: fit() without a strategy.
* XLA on: batch moments are per replica and moving statistics are averaged over
  the replicas, so the 2-replica step is the one-device "ghost batch" step:
  gradients and new statistics of each half of the batch, averaged.
IGN's tightness clamp divides by the batch mean of δ(x): averaged over the
replicas with XLA off (so the one-device step again), per replica with XLA on.

The ghost-batch reference, the two-replica fit() and the comparisons are
bench/gpu_check/reference.py's, the ones the GPU check runs on GPUs.
The multi-worker test runs two processes on 127.0.0.1 (tests/multi_worker_child.py).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from unittest import mock

import pytest
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from float64 import float64
from ogan_ign import gan, ign, ogan, one_loss

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))
from gpu_check import reference  # noqa: E402  (bench/ is not a package)
from gpu_check.reference import dense_net, max_difference  # noqa: E402

LR = 0.1
BATCH = 8          # global batch: 4 per replica
X_DIM, Z_DIM = 6, 4
ATOL = 1e-9
ATOL_XLA = 1e-7
MODELS = ("gan", "ogan", "ign")


# ------------------------------------------------------------ tiny float64 models
def _mlp(in_dim, out_dim, name, tanh=False):
    return dense_net((in_dim,), out_dim, name, squash=tanh)


def build(kind, tight_clamp=1.5, seed=0):
    """A tiny model of each kind, built in float64 (floatx is restored)."""
    with float64():
        keras.utils.set_random_seed(seed)
        if kind == "gan":
            return gan.SingleLossGAN(_mlp(Z_DIM, X_DIM, "generator"), _mlp(X_DIM, 1, "critic"))
        if kind == "ogan":
            return ogan.OGAN(_mlp(X_DIM, Z_DIM, "encoder"), _mlp(Z_DIM, X_DIM, "generator"))
        # "ign_control": λ_tight controlled, a weight the step assigns.
        control = dict(tight_target=0.5, tight_gain=0.1) if kind == "ign_control" else {}
        return ign.IGN(_mlp(X_DIM, X_DIM, "f", tanh=True), tight_clamp=tight_clamp, **control)


def batch(kind, n=BATCH, seed=1):
    """(x, z) whose two halves differ: per-replica statistics matter."""
    return reference.halves_batch(n, (X_DIM,), (X_DIM if kind.startswith("ign") else Z_DIM,),
                                  seed)


def dataset(x, z, global_batch=BATCH):
    return reference.dataset(x, z, global_batch)


def values(model):
    """Every weight (BatchNorm statistics included), as numpy, replica 0's copy."""
    return [np.asarray(w) for w in model.get_weights()]


# ----------------------------------------------------------------- references
def one_device_step(kind, x, z, tight_clamp=1.5):
    """fit() without a strategy on the global batch."""
    model = build(kind, tight_clamp)
    model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=False)
    model.fit(dataset(x, z), epochs=1, verbose=0, shuffle=False)
    return values(model)


def ghost_batch_step(kind, x, z, shards=2):
    """One device, written without the library's step: each shard's gradient
    and new BatchNorm statistics from the same start, then averaged."""
    return reference.reference_step(lambda: build(kind), x, z, shards, LR)


def two_cpus():
    """conftest's two logical CPUs."""
    return [d.name for d in tf.config.list_logical_devices("CPU")][:2]


def two_replicas():
    """A MirroredStrategy over the two CPUs, with collective keys of its own."""
    return reference.mirrored(two_cpus())


def mirrored_step(kind, x, z, jit_compile, tight_clamp=1.5):
    return reference.mirrored_fit(lambda: build(kind, tight_clamp), dataset(x, z), two_cpus(),
                                  LR, jit_compile)


@pytest.mark.slow
class MirroredStepTest(tf.test.TestCase):

    def assertReplicasAgree(self, model):
        """Every variable holds two copies, equal bit for bit."""
        self.assertEqual(reference.disagreeing(model, 2), [])

    def check_xla_off(self, kind):
        clamp = 1.5
        x, z = batch(kind)
        model, logs = mirrored_step(kind, x, z, jit_compile=False, tight_clamp=clamp)
        self.assertNotIsInstance(model.replicas, one_loss.XlaShards)
        self.assertTrue(np.isfinite(logs["loss/total"][0]))
        want = one_device_step(kind, x, z, tight_clamp=clamp)
        self.assertLess(max_difference(values(model), want), ATOL)
        self.assertReplicasAgree(model)
        # Not vacuous: the step moved the weights, and per-replica statistics
        # would have given another result.
        start = values(build(kind, clamp))
        self.assertGreater(max_difference(want, start), 1e-3)
        self.assertGreater(max_difference(want, ghost_batch_step(kind, x, z)), 1e-4)
        if kind == "ign":
            # … and so would IGN's clamp scale taken per replica.
            own_mean = lambda model, delta: tf.reduce_mean(delta)
            with mock.patch.object(ign.IGN, "clamp_scale", own_mean):
                per_replica, _ = mirrored_step(kind, x, z, jit_compile=False, tight_clamp=clamp)
            self.assertGreater(max_difference(values(per_replica), want), 1e-4)

    def check_xla_on(self, kind):
        x, z = batch(kind)
        model, logs = mirrored_step(kind, x, z, jit_compile=True)
        # The per-replica step was XLA-compiled.
        self.assertIsInstance(model.replicas, one_loss.XlaShards)
        self.assertGreaterEqual(model.replicas.compiled.experimental_get_tracing_count(), 1)
        self.assertTrue(np.isfinite(logs["loss/total"][0]))
        want = ghost_batch_step(kind, x, z)
        self.assertLess(max_difference(values(model), want), ATOL_XLA)
        self.assertReplicasAgree(model)
        self.assertGreater(max_difference(want, one_device_step(kind, x, z)), 1e-4)

    def test_gan_xla_off(self):
        self.check_xla_off("gan")

    def test_gan_xla_on(self):
        self.check_xla_on("gan")

    def test_ogan_xla_off(self):
        self.check_xla_off("ogan")

    def test_ogan_xla_on(self):
        self.check_xla_on("ogan")

    def test_ign_xla_off(self):
        self.check_xla_off("ign")

    def test_ign_xla_on(self):
        self.check_xla_on("ign")

    def test_ign_with_the_lambda_tight_control(self):
        # The controlled λ_tight is assigned inside the step: from global batch
        # means with XLA off, per replica and averaged with XLA on (the ghost
        # batch), like BatchNorm's statistics.
        self.check_xla_off("ign_control")
        self.check_xla_on("ign_control")
        model, _ = mirrored_step("ign_control", *batch("ign_control"), jit_compile=False)
        self.assertNotAllClose(model.tight_weight, model.lambda_tight)

    def test_two_player_baseline_xla_off(self):
        """The alternating baseline synchronizes BatchNorm too: two replicas take
        the one-device step on the global batch (both players, both SGD)."""
        x, z = batch("gan")

        def step(strategy=None):
            scope = strategy.scope() if strategy else contextlib.nullcontext()
            with scope:
                with float64():
                    keras.utils.set_random_seed(0)
                    model = gan.TwoPlayerGAN(_mlp(Z_DIM, X_DIM, "generator"),
                                             _mlp(X_DIM, 1, "critic"))
                model.compile(optimizer=keras.optimizers.SGD(LR),
                              generator_optimizer=keras.optimizers.SGD(LR), jit_compile=False)
            start = values(model)
            model.fit(dataset(x, z), epochs=1, verbose=0, shuffle=False)
            return model, start

        model, start = step(two_replicas())
        want, _ = step()
        self.assertLess(max_difference(values(model), values(want)), ATOL)
        self.assertReplicasAgree(model)
        self.assertGreater(max_difference(values(want), start), 1e-3)
        # Per-replica BatchNorm statistics would give another step.
        with mock.patch.object(one_loss, "synchronized_batchnorm",
                               lambda model, active=True: contextlib.nullcontext()):
            per_replica, _ = step(two_replicas())
        self.assertGreater(max_difference(values(per_replica), values(want)), 1e-4)

    def test_xla_on_without_batchnorm_is_the_one_device_step(self):
        """With no batch statistic the XLA step is the plain global-batch step."""
        with float64():
            def make():
                keras.utils.set_random_seed(0)
                g = keras.Sequential([keras.Input((Z_DIM,)), layers.Dense(8, activation="relu"),
                                      layers.Dense(X_DIM)])
                c = keras.Sequential([keras.Input((X_DIM,)), layers.Dense(8, activation="relu"),
                                      layers.Dense(1)])
                return gan.SingleLossGAN(g, c)
            x, z = batch("gan")
            with two_replicas().scope():
                model = make()
                model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=True)
            reference = make()
            reference.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=False)
        model.fit(dataset(x, z), verbose=0, shuffle=False)
        reference.fit(dataset(x, z), verbose=0, shuffle=False)
        self.assertIsInstance(model.replicas, one_loss.XlaShards)
        self.assertLess(max_difference(values(model), values(reference)), ATOL_XLA)


# ------------------------------------------------------------- multi-worker
def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


MULTI_WORKER_STEPS = 3
CHILD = os.path.join(os.path.dirname(__file__), "multi_worker_child.py")


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase):
    """Two worker processes (one CPU replica each) train three steps with
    MultiWorkerMirroredStrategy, XLA off and on; the chief's weights agree with
    one process: the one-device fit (XLA off, synchronized BatchNorm) and
    MirroredStrategy over two local replicas (XLA on)."""

    def test_two_workers_on_localhost(self):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
        with tempfile.TemporaryDirectory() as tmp:
            procs = []
            for index in range(2):
                env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                           TF_CONFIG=json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": index}}))
                env["PYTHONPATH"] = os.pathsep.join(
                    [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
                    + [p for p in [env.get("PYTHONPATH")] if p])
                procs.append(subprocess.Popen(
                    [sys.executable, CHILD, os.path.join(tmp, f"worker{index}.npz")], env=env,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            outputs = []
            try:
                for proc in procs:
                    outputs.append(proc.communicate(timeout=300)[0])
            except subprocess.TimeoutExpired:
                for proc in procs:
                    proc.kill()
                self.fail("the two workers did not finish within 300 s")
            for proc, out in zip(procs, outputs):
                self.assertEqual(proc.returncode, 0, msg=out[-3000:])
            self.assertTrue(os.path.exists(os.path.join(tmp, "worker0.npz")))
            self.assertFalse(os.path.exists(os.path.join(tmp, "worker1.npz")))  # chief only
            got = np.load(os.path.join(tmp, "worker0.npz"))
            x, z = batch("gan", n=BATCH * MULTI_WORKER_STEPS)
            want_off = one_device_step("gan", x, z)
            want_on = values(mirrored_step("gan", x, z, jit_compile=True)[0])
        got_off = [got[f"off_{i}"] for i in range(len(want_off))]
        got_on = [got[f"on_{i}"] for i in range(len(want_on))]
        self.assertLess(max_difference(got_off, want_off), ATOL)
        self.assertLess(max_difference(got_on, want_on), ATOL_XLA)
        self.assertTrue(got["logs_finite"])


if __name__ == "__main__":
    tf.test.main()
