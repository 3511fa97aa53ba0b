"""One command that checks and measures ogan_ign's GPU path, and one report (issue 17).

    PYTHONPATH=. python bench/gpu_check.py --out gpu_report          # about 10 min on one GPU
    PYTHONPATH=. python bench/gpu_check.py --out /tmp/gc --quick     # the same paths, tiny (CPU)

It writes `<out>/gpu_check.md` and `<out>/gpu_check.json` (rewritten after every
section, so a run cut short keeps what it finished) and exits with status 1 when
any check failed or any section did not finish, 0 otherwise. docs/GPU.md says
how to read the report.

Sections, each timed; an exception in one is recorded as "failed: <one line>"
(its traceback in the JSON) and the others still run:

  environment   versions (TF, Keras, CUDA, cuDNN), devices, and what the scripts'
                `--strategy auto`, `--mixed_precision auto` and `--jit_compile auto`
                resolve to here (the last read from a model compiled by Keras).
  equality      one training step on two replicas equals the one-device step, for
                SingleLossGAN, O-GAN and IGN, XLA off and on; float64 and SGD, so
                the update is −lr·gradient and nothing hides a difference.
                XLA off: the reference is the plain step on the global batch
                (BatchNorm synchronized across replicas); XLA on: the "ghost
                batch" step (each replica's half of the batch: gradients and new
                BatchNorm statistics averaged). Both references are computed here
                eagerly, without fit() and without a strategy. Tolerances: 1e-9
                (XLA off), 1e-7 (XLA on: XLA's kernels differ slightly from
                TensorFlow's, tests/test_distribute.py). A check also fails when it could not have
                failed: the step must move a weight by > 1e-3 and the two
                references must differ by > 1e-4.
  precision     a few bf16 and fp16 steps of each model (default optimizers, so
                fp16 runs with Keras's dynamic loss scale): losses and weights finite.
  determinism   tf.config.experimental.enable_op_determinism(): img/s without and
                with it (same process, measured just before and after), then a
                resume check through the library's own driver (training.train on
                Fashion-MNIST): N steps in one go against a copy of that run cut
                after its checkpoint at N/2 and resumed by a new model to N; every
                weight must be equal bit for bit. Runs after `speed`, in the same
                process: op determinism cannot be undone.
  speed         img/s of each model (bench_scale.py's networks and FLOP count,
                width 64) at 64 and 128 px, batch 64 per replica; on one device XLA
                off at fp32, bf16 and fp16 and XLA on at fp32 and at the device's
                native 16-bit type, on all devices XLA off and on at the auto
                precision (scaling
                efficiency = img/s on N devices / (N × img/s on one)); the share of
                the matmul peak of the same precision, measured in this process.
                One device is a MirroredStrategy with one replica, as the scripts
                run on a one-GPU machine. Settings of a (model, size) are timed in
                turn over several rounds; the median is kept. Groups not started
                within --speed_seconds are listed as skipped.
  train_ign     train_ign.py on Fashion-MNIST with its defaults (fewer steps); its
                first line states the replicas and the precision it chose.

Processes. This process only orchestrates and writes the report; it never
touches a device. Three children do the work: train_ign.py, a "checks" child
(equality) and a "speed" child (environment, precision, speed, determinism), so
that a crash in one (a CUDA error, say) loses only its own sections, and each
child sets up its devices before TensorFlow initialises them. With a GPU they
run one after the other, train_ign first (each would take the GPU's memory, and
the timings want the GPU alone); on a CPU they run side by side.

Devices. The equality check needs two replicas: the first two GPUs when there
are two or more; with one GPU, two logical GPUs of 2 GB carved out of it by
the checks child; with no GPU, two logical CPUs (as tests/conftest.py does), so
the same code runs on a CPU. The speed child uses the GPUs as they are (on a
CPU, two logical CPUs for the "all devices" rows).

`--quick` runs every section with tiny settings (dense nets for the equality
and precision checks; SingleLossGAN's speed rows only, 32 px, batch 2, XLA off;
a 5-step train_ign run at width 2), for the tests; docs/GPU.md gives its cost
on a CPU. XLA on one device is left out there because an XLA compile of a DCGAN
step is slow on a CPU; XLA over two replicas is in its equality checks.
"""

import contextlib
import dataclasses
import datetime
import gc
import glob
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from flops import build as speed_model, load_average, matmul_peak
from ogan_ign import gan, ign, networks, ogan, training

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "folder for gpu_check.md, gpu_check.json and the runs")
flags.DEFINE_boolean("quick", False, "tiny settings, every code path (what the tests run)")
flags.DEFINE_integer("train_steps", None, "steps of the train_ign run (default 300, quick 5)")
flags.DEFINE_float("speed_seconds", None, "time budget of the speed section; (model, size) "
                   "groups not started by then are listed as skipped (default 300, quick 120)")
# Not for users (left out of --help): the tests' switch, and the children's.
flags.DEFINE_boolean("inject_mismatch", False, "add 1e-3 to every equality reference, so "
                     "that the check must fail", module_name="gpu_check_internal")
flags.DEFINE_enum("worker", None, ["checks", "speed"], "run this child's sections",
                  module_name="gpu_check_internal")
flags.DEFINE_string("results", None, "the child's results file", module_name="gpu_check_internal")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("gan", "ogan", "ign")
NAMES = {"gan": "SingleLossGAN", "ogan": "O-GAN", "ign": "IGN"}
POLICY = {"fp32": "off", "bf16": "bf16", "fp16": "fp16"}  # → training.precision_policy
LR = 2.0 ** -5       # SGD step of the equality check; exact in float32, as Keras keeps it
ATOL = 1e-9          # equality, XLA off
ATOL_XLA = 1e-7      # equality, XLA on
MIN_STEP = 1e-3      # the step must move a weight by more than this …
MIN_GAP = 1e-4       # … and the two BatchNorm semantics must differ by more than this
CARVED_MB = 2048     # each of the two logical GPUs carved from one for the checks


@dataclasses.dataclass(frozen=True)
class Preset:
    """Sizes and steps of one mode; `full` is sized for ~10 minutes on one GPU."""

    check_net: str              # "conv" (the library's DCGAN builders) or "dense"
    check_size: int             # image side of the conv check nets
    check_width: int
    check_batch: int            # global batch of the equality step (half per replica)
    precision_steps: int
    speed_sizes: tuple
    speed_batch: int            # per replica
    speed_steps: int            # timed steps per round
    speed_rounds: int
    speed_seconds: float
    speed_grid: tuple           # (model, "one" | "all", xla, precision | "auto" | "half")
    matmul_n: int
    determinism_models: tuple
    determinism_size: int
    resume_steps: int
    resume_width: int
    resume_batch: int
    train_steps: int
    train_args: tuple


def full_grid():
    """One device: XLA off at fp32, bf16 and fp16, XLA on at fp32 and at the
    16-bit type the device has natively ("half": bf16 where --mixed_precision
    auto picks it, else fp16); all devices: XLA off and on at the auto precision."""
    one = [(m, "one", x, p) for m in MODELS
           for x, p in (("off", "fp32"), ("off", "bf16"), ("off", "fp16"), ("on", "fp32"),
                        ("on", "half"))]
    return tuple(one + [(m, "all", x, "auto") for m in MODELS for x in ("off", "on")])


PRESETS = {
    "full": Preset(check_net="conv", check_size=32, check_width=4, check_batch=8,
                   precision_steps=5, speed_sizes=(64, 128), speed_batch=64, speed_steps=10,
                   speed_rounds=3, speed_seconds=300.0, speed_grid=full_grid(), matmul_n=4096,
                   determinism_models=MODELS, determinism_size=64, resume_steps=20,
                   resume_width=64, resume_batch=64, train_steps=300, train_args=()),
    # Every code path once, in about a minute on 2 CPU cores (module docstring).
    "quick": Preset(check_net="dense", check_size=28, check_width=2, check_batch=8,
                    precision_steps=2, speed_sizes=(32,), speed_batch=2, speed_steps=1,
                    speed_rounds=2, speed_seconds=120.0,
                    speed_grid=(("gan", "one", "off", "fp32"), ("gan", "one", "off", "fp16"),
                                ("gan", "all", "off", "auto")),
                    matmul_n=256, determinism_models=("gan",), determinism_size=32,
                    resume_steps=4, resume_width=2, resume_batch=8, train_steps=5,
                    train_args=("--width=2", "--latent=8", "--coverage_samples=0",
                                "--fourier_examples=256", "--num_samples=8", "--log_every=5")),
}


# ------------------------------------------------------------------ the report
def one_line(error):
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return f"{type(error).__name__}: {line}"[:300]


class Run:
    """What the sections of one process share: the preset, the devices, the
    checks, and where the results go (after every section, so a crash keeps
    what was finished): a worker's results file, or the report."""

    def __init__(self, out, preset, mode, results=None):
        self.out, self.preset, self.results = out, preset, results
        self.devices = {}
        self.report = {"mode": mode, "started": datetime.datetime.now(datetime.timezone.utc)
                       .isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                       "sections": {}, "checks": []}
        self.start = time.perf_counter()
        self.report["load_average"] = load_average()

    def check(self, section, name, passed, value=None, limit=None, **detail):
        self.report["checks"].append({"section": section, "name": name, "passed": bool(passed),
                                      "value": value, "limit": limit, **detail})
        return bool(passed)

    def section(self, name, function):
        """Runs one section; its result or its failure is recorded at once."""
        print(f"--- {name}", flush=True)
        start, cpu = time.perf_counter(), time.process_time()
        entry = {}
        try:
            entry.update(function(self) or {})
            entry["status"] = "ok"
        except Exception as error:  # noqa: BLE001 -- recorded, the other sections go on
            entry["status"] = f"failed: {one_line(error)}"
            entry["traceback"] = traceback.format_exc()
            print(traceback.format_exc(), file=sys.stderr, flush=True)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        entry["cpu_seconds"] = round(time.process_time() - cpu, 1)  # this process's threads
        self.report["sections"][name] = entry
        print(f"--- {name}: {entry['status']} ({entry['seconds']} s)", flush=True)
        self.write()

    def merge(self, worker, names):
        """Takes a finished worker's sections and checks; a section it did not
        record failed with the worker's exit status and last error line."""
        self.process(worker)
        results = {"sections": {}, "checks": []}
        if os.path.exists(worker.results):
            with open(worker.results) as f:
                results = json.load(f)
        self.report["checks"] += results["checks"]
        for name in names:
            self.report["sections"][name] = results["sections"].get(name) or {
                "status": f"failed: {worker.failure()}", "seconds": 0.0}
        self.write()

    def process(self, child):
        self.report.setdefault("processes", {})[child.name] = {
            "wall_seconds": child.wall_seconds, "cpu_seconds": child.cpu_seconds,
            "exit_status": child.code}

    def passed(self):
        return exit_status(self.report) == 0

    def write(self):
        if self.results:
            training.write_json(self.results, self.report)
            return
        self.report["seconds_total"] = round(time.perf_counter() - self.start, 1)
        self.report["passed"] = self.passed()
        training.write_json(os.path.join(self.out, "gpu_check.json"), self.report)
        tmp = os.path.join(self.out, "gpu_check.md.tmp")
        with open(tmp, "w") as f:
            f.write(markdown(self.report))
        os.replace(tmp, os.path.join(self.out, "gpu_check.md"))


def exit_status(report):
    """1 when a check failed or a section did not finish, else 0."""
    ok = (all(s["status"] == "ok" for s in report["sections"].values())
          and all(c["passed"] for c in report["checks"]))
    return 0 if ok else 1


class Child:
    """A subprocess of this project's Python with the repository importable. Its
    stderr, and its stdout when `capture` (else it shares ours), go to files in
    --out, so that nothing waits on a full pipe."""

    def __init__(self, out, name, command, results=None, capture=True):
        self.name, self.command, self.results = name, command, results
        self.logs = [os.path.join(out, f"{name}.{n}.txt") for n in ("stdout", "stderr")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        self.start = time.perf_counter()
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(open(self.logs[0], "w")) if capture else None
            stderr = files.enter_context(open(self.logs[1], "w"))
            self.process = subprocess.Popen([sys.executable] + command, cwd=ROOT, env=env,
                                            stdout=stdout, stderr=stderr)
        self.code = None

    def wait(self, timeout):
        """Waits for the child; its CPU seconds are what the children this process
        has waited for used meanwhile (one child is waited for at a time)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self.code = self.process.wait(timeout=max(timeout - self.seconds(), 1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.code = self.process.wait()
            raise RuntimeError(f"{self.name} did not finish within {timeout} s") from None
        finally:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu_seconds = round(after.ru_utime + after.ru_stime
                                     - before.ru_utime - before.ru_stime, 1)
            self.wall_seconds = round(self.seconds(), 1)
        return self.code

    def seconds(self):
        return time.perf_counter() - self.start

    def output(self):
        return [open(path).read() if os.path.exists(path) else "" for path in self.logs]

    def failure(self):
        errors = [line for line in self.output()[1].splitlines() if line.strip()]
        return f"{self.name} exited with {self.code}: {errors[-1] if errors else 'no output'}"[:300]


# ----------------------------------------------------------------- devices
def configure_devices(carve_gpu):
    """The devices of one child; must run before TensorFlow initialises them
    (logical devices cannot be changed afterwards).

    pair: two devices for the equality check: the first two GPUs; one GPU
    carved in two (carve_gpu, the checks child, whose nets are tiny); with no
    GPU, the CPU split in two. one: the first device. all: every GPU (the
    scaling rows), or the two logical CPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) == 1 and carve_gpu:
        tf.config.set_logical_device_configuration(
            gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=CARVED_MB)] * 2)
        setup = f"one GPU carved into two logical GPUs of {CARVED_MB} MB for the equality check"
    elif not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        setup = ("no GPU: the CPU split into two logical CPUs (they share the same cores, so "
                 "the 'all devices' speed rows measure overhead, not scaling)")
    else:
        setup = f"{len(gpus)} GPU(s), as they are"
    kind = "GPU" if gpus else "CPU"
    logical = [d.name for d in tf.config.list_logical_devices(kind)]
    return {"kind": kind, "pair": logical[:2], "one": logical[:1],
            "all": logical[:1] if len(gpus) == 1 else logical, "setup": setup}


def mirrored(devices):
    """A MirroredStrategy over `devices` with collective keys of its own.

    Strategies made in one process number their collective ops from the same
    base and collide in TensorFlow's collective executor; moving the (private)
    base on before and after keeps every strategy here apart."""
    tf.distribute.MirroredStrategy._collective_key_base += 1000
    strategy = tf.distribute.MirroredStrategy(devices)
    tf.distribute.MirroredStrategy._collective_key_base += 1000
    return strategy


# ------------------------------------------------------------- environment
def jit_under(strategy):
    """What Keras makes of compile(jit_compile="auto") for a model built in `strategy`."""
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = gan.SingleLossGAN(networks.mlp_generator(2, 2, hidden=4, depth=1),
                                  networks.mlp_critic(2, 1, hidden=4, depth=1))
        model.compile(jit_compile="auto")
    return bool(model.jit_compile)


def environment(run):
    build = tf.sysconfig.get_build_info()
    devices = []
    for device in tf.config.list_physical_devices():
        details = tf.config.experimental.get_device_details(device) \
            if device.device_type == "GPU" else {}
        devices.append({"name": device.name, "type": device.device_type,
                        **{k: list(v) if isinstance(v, tuple) else v
                           for k, v in details.items()}})
    tf.distribute.MirroredStrategy._collective_key_base += 1000
    strategy = training.make_strategy("auto")
    tf.distribute.MirroredStrategy._collective_key_base += 1000
    replicas = strategy.num_replicas_in_sync
    precision, why = training.resolve_precision("auto", strategy)
    gpus = [d for d in devices if d["type"] == "GPU"]
    jit_alone = jit_under(None)
    jit_scripts = jit_under(strategy) if strategy is not tf.distribute.get_strategy() else jit_alone
    if not gpus:
        jit_why = "Keras turns XLA off on a machine without GPU or TPU"
    elif jit_scripts != jit_alone:
        jit_why = ("Keras turns XLA off under any tf.distribute strategy, and --strategy auto "
                   "is a MirroredStrategy whenever a GPU is visible, even one")
    else:
        jit_why = "Keras's choice for this model on these devices"
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CUDA "
          f"{build.get('cuda_version', '-')}, cuDNN {build.get('cudnn_version', '-')}; "
          + "; ".join(f"{d['name']} {d.get('device_name', '')}".strip() for d in devices)
          + f"\n--strategy auto: {type(strategy).__name__.strip('_')} ({replicas} replica(s)); "
          f"--mixed_precision auto: {precision} ({why}); --jit_compile auto: "
          f"{'on' if jit_scripts else 'off'} ({jit_why})", flush=True)
    return {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__,
        "cuda": build.get("cuda_version", "none (not a CUDA build)"),
        "cudnn": build.get("cudnn_version", "none (not a CUDA build)"),
        "cuda_build": bool(build.get("is_cuda_build", False)),
        "physical_devices": devices,
        "logical_devices": [d.name for d in tf.config.list_logical_devices()],
        "device_setup": run.devices["setup"],
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "cpu_bf16": sorted({"avx512_bf16", "amx_bf16"} & training.cpu_flags()),
        "load_average": load_average(),
        "auto": {
            "strategy": f"{type(strategy).__name__.strip('_')}, {replicas} replica(s)",
            "mixed_precision": f"{precision} ({why})",
            "jit_compile": {"one device, no strategy": jit_alone,
                            "as the scripts build (--strategy auto)": jit_scripts,
                            "why": jit_why},
        },
    }


# -------------------------------------------------------------- equality
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
    """Dense → the library's BatchNorm (momentum 0.5, so statistics move) →
    LeakyReLU → Dense, optionally tanh: the quick mode's stand-in for a conv net."""
    stack = [keras.Input(shape_in), keras.layers.Dense(8), networks.BatchNorm(momentum=0.5),
             keras.layers.LeakyReLU(0.2), keras.layers.Dense(units_out)]
    if squash:
        stack.append(keras.layers.Activation("tanh"))
    return keras.Sequential(stack, name=name)


def small_model(kind, preset):
    """A small model of each kind: the library's DCGAN nets at the preset's size
    and width, or (quick) dense nets on 6-d data with 4-d noise."""
    keras.utils.set_random_seed(0)
    if preset.check_net == "dense":
        g, e = dense_net((4,), 6, "generator", True), dense_net((6,), 4, "encoder")
        if kind == "gan":
            return gan.SingleLossGAN(g, dense_net((6,), 1, "critic"))
        if kind == "ogan":
            return ogan.OGAN(e, g)
        return ign.IGN(dense_net((6,), 6, "f", True))
    s, w = preset.check_size, preset.check_width
    if kind == "gan":
        return gan.SingleLossGAN(networks.dcgan_generator(s, 1, z_dim=4, width=w),
                                 networks.dcgan_encoder(s, 1, z_dim=1, width=w, name="critic"))
    if kind == "ogan":
        return ogan.OGAN(networks.dcgan_encoder(s, 1, z_dim=4, width=w),
                         networks.dcgan_generator(s, 1, z_dim=4, width=w))
    return ign.IGN(networks.dcgan_autoencoder(s, 1, latent=4, width=w))


def check_batch(kind, preset):
    """(x, z) of the global batch; its two halves differ, so that per-replica
    batch statistics give another step than global ones."""
    rng = np.random.default_rng(1)
    n = preset.check_batch
    shape = (6,) if preset.check_net == "dense" else (preset.check_size, preset.check_size, 1)
    x = rng.uniform(-1, 1, (n,) + shape)
    x[n // 2:] = 0.5 * x[n // 2:] + 0.3
    z = rng.normal(size=(n,) + (shape if kind == "ign" else (4,)))
    return x, z


def reference_step(make, x, z, shards):
    """One SGD step on one device, eager, without fit() or a strategy: the batch
    cut into `shards` equal parts, each part's update from the same start, the
    results averaged. Trained weights: start − LR · mean gradient; BatchNorm
    statistics: the mean of the parts' new statistics; the rest unchanged.
    shards = 1 is the plain step on the whole batch."""
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
            after[i] = start[i] - LR * (0.0 if grad is None else grad.numpy())
        total = [t + a / shards for t, a in zip(total, after)]
    return total


def mirrored_step(make, x, z, devices, xla):
    """fit() for one step of the global batch (x, z) on two replicas."""
    strategy = mirrored(devices)
    with strategy.scope():
        model = make()
        model.compile(optimizer=keras.optimizers.SGD(LR), jit_compile=xla)
    data = tf.data.Dataset.from_tensor_slices((x, z)).batch(len(x))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    logs = model.fit(data.with_options(options), epochs=1, verbose=0, shuffle=False).history
    return model, logs


def max_difference(a, b):
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in zip(a, b))


def replicas_agree(model):
    """Every variable holds the same value on every replica, bit for bit."""
    for variable in model.weights:
        copies = [np.asarray(c) for c in getattr(variable.value, "values", [variable.value])]
        if any(not np.array_equal(copies[0], c) for c in copies[1:]):
            return False
    return True


def equality_check(run, name, got, want, tolerance, step, gap, agree=True, finite=True):
    """Records one equality check: `got` within `tolerance` of `want`, every
    replica equal, finite logs, and a check that could have failed (the step
    moved a weight by > MIN_STEP and the two references differ by > MIN_GAP)."""
    difference = max_difference(got, want)
    passed = (difference < tolerance and agree and finite and step > MIN_STEP and gap > MIN_GAP)
    return run.check("equality", name, passed, value=difference, limit=tolerance,
                     step=step, reference_gap=gap, replicas_agree=agree, finite=finite)


def equality(run):
    preset, devices = run.preset, run.devices["pair"]
    if len(devices) < 2:
        raise RuntimeError(f"two devices needed, found {devices}")
    for kind in MODELS:
        def make():
            with float64():
                return small_model(kind, preset)

        x, z = check_batch(kind, preset)
        start = make().get_weights()
        plain, ghost = reference_step(make, x, z, 1), reference_step(make, x, z, 2)
        step, gap = max_difference(plain, start), max_difference(plain, ghost)
        for xla in (False, True):
            model, logs = mirrored_step(make, x, z, devices, xla)
            want = ghost if xla else plain
            if FLAGS.inject_mismatch:
                want = [w + 1e-3 for w in want]
            equality_check(run, f"{kind} XLA {'on' if xla else 'off'}", model.get_weights(),
                           want, ATOL_XLA if xla else ATOL, step, gap, replicas_agree(model),
                           all(np.isfinite(v).all() for v in logs.values()))
            del model
    return {"devices": devices, "net": preset.check_net, "dtype": "float64",
            "batch": preset.check_batch}


# ------------------------------------------------------------- precision
def precision(run):
    preset = run.preset
    shape = (6,) if preset.check_net == "dense" else (preset.check_size, preset.check_size, 1)
    x = np.random.default_rng(0).uniform(-1, 1, (8 * preset.precision_steps,) + shape)
    rows = []
    for policy in ("bf16", "fp16"):
        for kind in MODELS:
            with training.precision_policy(policy):
                model = small_model(kind, preset)
                model.compile(jit_compile=False)  # the models' default optimizers
            before = [np.array(w) for w in model.trainable_weights]
            logs = model.fit(tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(8),
                             verbose=0).history
            after = [np.array(w) for w in model.trainable_weights]
            finite = (all(np.isfinite(v).all() for v in logs.values())
                      and all(np.isfinite(w).all() for w in after))
            scale = getattr(model.optimizer, "dynamic_scale", None)
            rows.append({"model": kind, "precision": policy, "finite": finite,
                         "moved": max_difference(after, before) > 0,
                         "loss": float(logs["loss/total"][-1]),
                         "loss_scale": None if scale is None else float(np.asarray(scale))})
            run.check("precision", f"{kind} {policy} steps finite", finite,
                      loss=rows[-1]["loss"])
    return {"rows": rows, "steps": preset.precision_steps}


# ------------------------------------------------------------------ speed
@dataclasses.dataclass
class Prepared:
    model: keras.Model
    step: object
    iterator: object
    flops_per_image: float
    batch: int          # global batch
    devices: int


def prepare(kind, size, xla, precision, devices, batch_per_replica):
    """bench_scale's model on `devices` (a MirroredStrategy, as the scripts run
    on GPUs), compiled, its train function traced and warmed up on a constant
    batch. The step is Keras's own train function, the one fit() calls."""
    strategy = mirrored(devices)
    with training.precision_policy(POLICY[precision]), strategy.scope():
        model, flops_per_image = speed_model(kind, size)
        model.compile(jit_compile=xla == "on")
    batch = batch_per_replica * len(devices)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors(x).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    iterator = iter(strategy.experimental_distribute_dataset(data.with_options(options)))
    model.make_train_function()
    prepared = Prepared(model, model.train_function, iterator, flops_per_image, batch,
                        len(devices))
    for _ in range(2):  # the first traces (and with XLA compiles)
        last_loss(prepared.step(iterator))
    return prepared


def last_loss(logs):
    return float(np.mean(np.asarray(logs["loss/total"])))


def seconds_per_step(prepared, steps):
    start = time.perf_counter()
    for _ in range(steps):
        logs = prepared.step(prepared.iterator)
    loss = last_loss(logs)  # waits for the last step
    return (time.perf_counter() - start) / steps, loss


def time_settings(prepared, steps, rounds):
    """{setting: (median img/s, spread, last loss)}, settings timed in turn."""
    times = {s: [] for s in prepared}
    losses = {}
    for _ in range(rounds):
        for setting, p in prepared.items():
            seconds, losses[setting] = seconds_per_step(p, steps)
            times[setting].append(seconds)
    result = {}
    for setting, seconds in times.items():
        median = float(np.median(seconds))
        result[setting] = (prepared[setting].batch / median,
                           (max(seconds) - min(seconds)) / median, losses[setting])
    return result


def release():
    gc.collect()
    keras.backend.clear_session()


def auto_precision(cpu=None):
    """What --mixed_precision auto resolves to here, in the grid's names (fp32 / bf16)."""
    auto = training.resolve_precision("auto", cpu=cpu)[0]
    return "fp32" if auto == "off" else auto


def grid_settings(grid, kind, auto, many_devices):
    """The (where, xla, precision) settings of `kind` in a speed grid, with the
    names "auto" and "half" resolved for a device whose auto precision is `auto`.

    Every all-devices row gets its one-device partner at the same XLA setting and
    precision (added when the grid lacks it), so the scaling ratio is formed on
    every CPU and GPU, whatever `auto` picks there. Order kept, duplicates dropped.
    """
    named = {"auto": auto, "half": "bf16" if auto == "bf16" else "fp16"}
    settings = []
    for model, where, xla, prec in grid:
        if model != kind or (where == "all" and not many_devices):
            continue
        setting = (where, xla, named.get(prec, prec))
        partner = ("one",) + setting[1:]
        for wanted in ([partner] if where == "all" else []) + [setting]:
            if wanted not in settings:
                settings.append(wanted)
    return settings


def speed(run):
    preset, devices = run.preset, run.devices
    auto = auto_precision()
    peak = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16), ("fp16", tf.float16)):
        with tf.device(devices["one"][0]):
            peak[name] = matmul_peak(dtype, preset.matmul_n)
    rows, skipped, failed = [], [], []

    def result():
        return {"peak_tflop_per_s": {k: v / 1e12 for k, v in peak.items()},
                "matmul_n": preset.matmul_n, "batch_per_replica": preset.speed_batch,
                "steps": preset.speed_steps, "rounds": preset.speed_rounds,
                "auto_precision": auto, "rows": rows, "skipped": skipped, "failed": failed,
                "summary": speed_summary(rows, auto)}

    budget_end = time.perf_counter() + (FLAGS.speed_seconds or preset.speed_seconds)
    n_all = len(devices["all"])
    for size in preset.speed_sizes:
        for kind in MODELS:
            settings = grid_settings(preset.speed_grid, kind, auto, n_all >= 2)
            if not settings:
                continue
            if time.perf_counter() > budget_end:
                skipped.append(f"{kind} {size} px")
                continue
            prepared = {}
            for where, xla, prec in settings:
                try:
                    prepared[(where, xla, prec)] = prepare(
                        kind, size, xla, prec, devices[where], preset.speed_batch)
                except Exception as error:  # noqa: BLE001 -- e.g. out of memory: the row says so
                    failed.append(f"{kind} {size} px {xla}/{prec} on {len(devices[where])} "
                                  f"device(s): {one_line(error)}")
            timed = time_settings(prepared, preset.speed_steps, preset.speed_rounds)
            for (where, xla, prec), (rate, spread, loss) in timed.items():
                flops = prepared[(where, xla, prec)].flops_per_image
                rows.append({"model": kind, "size": size, "devices": len(devices[where]),
                             "xla": xla, "precision": prec, "img_per_s": rate, "spread": spread,
                             "gflop_per_image": flops / 1e9, "tflop_per_s": rate * flops / 1e12,
                             "of_peak": rate * flops / peak[prec], "loss": loss,
                             "finite": math.isfinite(loss)})
                run.check("speed", f"{kind} {size} px {xla}/{prec} on "
                          f"{len(devices[where])} device(s): loss finite",
                          math.isfinite(loss), loss=loss)
            del prepared
            release()
            # What is done so far survives a crash of this process.
            run.report["sections"]["speed"] = dict(
                result(), status="failed: the process ended during this section", seconds=0.0)
            run.write()
    for line in failed:
        run.check("speed", line, False)
    return result()


def speed_summary(rows, auto):
    """Per model and size: XLA on/off at the auto precision on one device, the
    precisions against fp32 (XLA off), and the scaling efficiency."""
    def rate(kind, size, devices, xla, prec):
        for r in rows:
            if (r["model"], r["size"], r["xla"], r["precision"]) == (kind, size, xla, prec) \
                    and (r["devices"] == 1) == (devices == 1):
                return r["img_per_s"], r["devices"]
        return None, None

    summary = []
    for kind, size in sorted({(r["model"], r["size"]) for r in rows}, key=lambda k: (k[1], k[0])):
        entry = {"model": kind, "size": size}
        off, _ = rate(kind, size, 1, "off", auto)
        on, _ = rate(kind, size, 1, "on", auto)
        if off and on:
            entry["xla_on_over_off"] = on / off
            entry["faster"] = "on" if on > off else "off"
        fp32, _ = rate(kind, size, 1, "off", "fp32")
        for prec in ("bf16", "fp16"):
            other, _ = rate(kind, size, 1, "off", prec)
            if fp32 and other:
                entry[f"{prec}_over_fp32"] = other / fp32
        for xla in ("off", "on"):
            one, _ = rate(kind, size, 1, xla, auto)
            many, n = rate(kind, size, 2, xla, auto)
            if one and many:
                entry[f"scaling_xla_{xla}"] = many / (n * one)
        summary.append(entry)
    return summary


def recommendation(summary):
    """--jit_compile per model from the one-device rows (None: not measured)."""
    votes = {}
    for entry in summary:
        if "faster" in entry:
            votes.setdefault(entry["model"], []).append(entry["faster"])
    return {kind: ("on" if all(v == "on" for v in faster) else
                   "off" if all(v == "off" for v in faster) else "mixed")
            for kind, faster in votes.items()}


# ------------------------------------------------------------ determinism
def resume_model(width):
    def build(config, spec):
        # training.train compiles it with IGN.default_optimizer(), the paper's Adam.
        return ign.IGN(networks.dcgan_autoencoder(spec.image_size, spec.channels, latent=64,
                                                  width=width), noise="gaussian")
    return build


def resume_config(folder, steps, preset):
    return training.Config(dataset="fashion_mnist", out_dir=folder, steps=steps,
                           batch_size=preset.resume_batch, ckpt_every=preset.resume_steps // 2,
                           log_every=preset.resume_steps // 2, sample_every=0, num_samples=8,
                           strategy="default")


def determinism(run):
    preset, devices = run.preset, run.devices
    size, n = preset.determinism_size, preset.resume_steps

    def rates():
        prepared = {kind: prepare(kind, size, "off", "fp32", devices["one"], preset.speed_batch)
                    for kind in preset.determinism_models}
        timed = time_settings(prepared, preset.speed_steps, preset.speed_rounds)
        del prepared
        release()
        return {kind: value[0] for kind, value in timed.items()}

    without = rates()
    tf.config.experimental.enable_op_determinism()
    base = os.path.join(run.out, "resume")
    shutil.rmtree(base, ignore_errors=True)
    build = resume_model(preset.resume_width)
    whole_dir, resumed_dir = os.path.join(base, "whole"), os.path.join(base, "resumed")
    whole = training.train(resume_config(whole_dir, n, preset), build)
    cut_after_checkpoint(whole_dir, resumed_dir, n // 2)
    restored = Restored()
    resumed = training.train(resume_config(resumed_dir, n, preset), build, callbacks=[restored])
    difference = max_difference(resumed.get_weights(), whole.get_weights())
    moved = max_difference(whole.get_weights(), restored.weights)
    steps = [restored.step, training.global_step(whole), training.global_step(resumed)]
    run.check("determinism", f"resume exact: {n} steps vs {n // 2} + restore + {n - n // 2}",
              difference == 0 and moved > 0 and steps == [n // 2, n, n], value=difference,
              limit=0.0, second_half_moved=moved, steps=steps)
    with_ = rates()  # after the resume check: a GPU op without a deterministic kernel fails here
    cost = [{"model": k, "img_per_s_without": without[k], "img_per_s_with": with_[k],
             "with_over_without": with_[k] / without[k]} for k in without]
    return {"cost": cost, "size": size, "batch": preset.speed_batch,
            "setting": "one device, XLA off, fp32",
            "jit_compile_auto_with_determinism": jit_under(None),
            "resume": {"steps": n, "model": f"IGN, DCGAN autoencoder width {preset.resume_width}",
                       "data": "fashion_mnist 32 px", "batch": preset.resume_batch,
                       "precision": training.resolve_precision("auto")[0],
                       "max_difference": difference, "second_half_moved": moved,
                       "restored_step": restored.step}}


class Restored(keras.callbacks.Callback):
    """The step and weights a run starts fit() from (after its restore)."""

    def on_train_begin(self, logs=None):
        self.step = training.global_step(self.model)
        self.weights = self.model.get_weights()


def cut_after_checkpoint(source, target, step):
    """A copy of run folder `source` as a run killed right after its checkpoint
    at `step`: its config and that checkpoint only."""
    checkpoints = os.path.join(target, "checkpoints")
    os.makedirs(checkpoints)
    shutil.copy(os.path.join(source, "config.json"), target)
    for path in glob.glob(os.path.join(source, "checkpoints", f"ckpt-{step}.*")):
        shutil.copy(path, checkpoints)
    tf.compat.v1.train.update_checkpoint_state(checkpoints, os.path.join(checkpoints,
                                                                         f"ckpt-{step}"))


# -------------------------------------------------------------- train_ign
def start_train_ign(run):
    folder = os.path.join(run.out, "train_ign")
    shutil.rmtree(folder, ignore_errors=True)
    steps = FLAGS.train_steps or run.preset.train_steps
    return Child(run.out, "train_ign", ["train_ign.py", f"--out_dir={folder}", f"--steps={steps}",
                                        *run.preset.train_args])


def train_ign_result(run, child, timeout=900):
    """The section of the train_ign.py run: its command, first line (replicas and
    precision), last progress line and last line."""
    code = child.wait(timeout)
    run.process(child)
    if code:
        raise RuntimeError(child.failure())
    lines = [line for line in child.output()[0].splitlines() if line.strip()]
    progress = [line for line in lines if line.startswith("step ")]
    # The driver's start line (data, replicas, precision); lines before it announce
    # the script's own preparations.
    start = [line for line in lines if "replica(s)" in line]
    return {"command": "python " + " ".join(child.command),
            "run_seconds": round(child.seconds(), 1),
            "first_line": (start or lines or [""])[0],
            "last_progress": progress[-1] if progress else "",
            "last_line": lines[-1] if lines else "",
            "output": [os.path.basename(path) for path in child.logs]}


# --------------------------------------------------------------- markdown
def fmt(value, digits=3):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def percent(value):
    return None if value is None else f"{value:.0%}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown(report):
    sections = report["sections"]
    failed = [c for c in report["checks"] if not c["passed"]]
    unfinished = [n for n, s in sections.items() if s["status"] != "ok"]
    verdict = ("**PASSED**: every section ran and every check passed" if report["passed"] else
               f"**FAILED**: {len(failed)} check(s) failed, {len(unfinished)} section(s) "
               "did not finish")
    out = [f"# ogan_ign GPU check ({report['mode']})\n\n",
           f"`{report['command']}` — started {report['started']}, "
           f"{report['seconds_total']} s in all. {verdict}.\n\n",
           table(["section", "status", "seconds", "CPU seconds"],
                 [[n, s["status"], s.get("run_seconds", s["seconds"]),
                   s.get("cpu_seconds") if n != "train_ign" else None]
                  for n, s in sections.items()])]
    processes = report.get("processes", {})
    if processes:
        out.append("\nProcesses (wall / CPU seconds, imports included): " + ", ".join(
            f"{name} {p['wall_seconds']} / {p['cpu_seconds']}" for name, p in processes.items())
            + f"; load average at the start {' '.join(report['load_average'])}.\n")
    env = sections.get("environment", {})
    if env.get("status") == "ok":
        out.append("\n## Environment\n\n")
        out.append(table(["what", "value"], [
            ["TensorFlow / Keras / Python", f"{env['tensorflow']} / {env['keras']} / "
                                            f"{env['python']}"],
            ["CUDA / cuDNN (build)", f"{env['cuda']} / {env['cudnn']}"],
            ["devices", "; ".join(f"{d['name']} {d.get('device_name', '')} "
                                  f"{d.get('compute_capability', '')}".strip()
                                  for d in env["physical_devices"])],
            ["device setup here", env["device_setup"]],
            ["TF32 for float32 matmuls/convs", env["tensor_float_32"]],
            ["CPU bf16 instructions", ", ".join(env["cpu_bf16"]) or "none"],
            ["load average", " ".join(env["load_average"])],
            ["--strategy auto", env["auto"]["strategy"]],
            ["--mixed_precision auto", env["auto"]["mixed_precision"]],
            ["--jit_compile auto (one device, no strategy)",
             "on" if env["auto"]["jit_compile"]["one device, no strategy"] else "off"],
            ["--jit_compile auto (as the scripts build)",
             ("on" if env["auto"]["jit_compile"]["as the scripts build (--strategy auto)"]
              else "off") + f": {env['auto']['jit_compile']['why']}"]]))
    checks = report["checks"]
    for name, title in (("equality", "Equality: two replicas against one device"),
                        ("precision", "bf16 and fp16 steps"),
                        ("determinism", "Op determinism: resume and cost")):
        section = sections.get(name)
        if not section:
            continue
        out.append(f"\n## {title}\n\n")
        mine = [c for c in checks if c["section"] == name]
        if name == "equality" and section.get("devices"):
            out.append(f"Devices {', '.join(section['devices'])}; {section['net']} nets in "
                       f"{section['dtype']}, global batch {section['batch']}, SGD lr {LR}. "
                       f"'step' is the largest weight change of the step, 'gap' the largest "
                       f"difference between the two references (synchronized vs per-replica "
                       f"BatchNorm); both must exceed {MIN_STEP} / {MIN_GAP}.\n\n")
            out.append(table(["check", "max difference", "tolerance", "step", "gap",
                              "replicas agree", "passed"],
                             [[c["name"], c["value"], c["limit"], c["step"], c["reference_gap"],
                               c["replicas_agree"], c["passed"]] for c in mine]))
        elif name == "precision" and section.get("rows"):
            out.append(table(["model", "precision", "finite", "weights moved", "last loss",
                              "loss scale"],
                             [[r["model"], r["precision"], r["finite"], r["moved"], r["loss"],
                               r["loss_scale"]] for r in section["rows"]]))
        elif name == "determinism" and section.get("cost"):
            resume = section["resume"]
            out.append(table(["check", "max difference", "passed"],
                             [[c["name"], c["value"], c["passed"]] for c in mine]))
            out.append(f"\nResume: {resume['model']}, {resume['data']}, batch {resume['batch']}, "
                       f"precision {resume['precision']}, strategy default; the second half "
                       f"moved weights by up to {fmt(resume['second_half_moved'])}. With op "
                       f"determinism on, Keras's jit_compile auto gives "
                       f"{'on' if section['jit_compile_auto_with_determinism'] else 'off'}.\n\n"
                       f"Cost ({section['setting']}, {section['size']} px, batch "
                       f"{section['batch']}):\n\n")
            out.append(table(["model", "img/s without", "img/s with", "with / without"],
                             [[c["model"], c["img_per_s_without"], c["img_per_s_with"],
                               c["with_over_without"]] for c in section["cost"]]))
        if section["status"] != "ok":
            out.append(f"\n{section['status']}\n")
    sp = sections.get("speed", {})
    if sp.get("rows") is not None:
        peak = sp["peak_tflop_per_s"]
        out.append(f"\n## Speed\n\nbench_scale.py's networks (width 64) and FLOP count; batch "
                   f"{sp['batch_per_replica']} per replica; {sp['steps']} steps × "
                   f"{sp['rounds']} rounds, median. Matmul peak ({sp['matmul_n']}²) here: "
                   + ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in peak.items())
                   + f". Auto precision: {sp['auto_precision']}.\n\n")
        out.append(table(["model", "px", "devices", "XLA", "precision", "img/s", "spread",
                          "TFLOP/s", "of peak"],
                         [[r["model"], r["size"], r["devices"], r["xla"], r["precision"],
                           r["img_per_s"], percent(r["spread"]), r["tflop_per_s"],
                           percent(r["of_peak"])] for r in sp["rows"]]))
        out.append("\n" + table(["model", "px", "XLA on / off", "faster", "bf16 / fp32",
                                 "fp16 / fp32", "scaling (XLA off)", "scaling (XLA on)"],
                                [[e["model"], e["size"], e.get("xla_on_over_off"),
                                  e.get("faster"), e.get("bf16_over_fp32"),
                                  e.get("fp16_over_fp32"), percent(e.get("scaling_xla_off")),
                                  percent(e.get("scaling_xla_on"))] for e in sp["summary"]]))
        if sp["skipped"]:
            out.append(f"\nNot timed (time budget): {', '.join(sp['skipped'])}.\n")
        if sp.get("failed"):
            out.append("\nCould not run:\n\n" + "".join(f"- {line}\n" for line in sp["failed"]))
        advice = recommendation(sp["summary"])
        if advice:
            out.append("\n**--jit_compile:** " + "; ".join(
                f"{NAMES[k]} {v}" for k, v in advice.items())
                + " (the faster on one device at the auto precision, at every size timed; "
                  "mixed: it depends on the size). The scripts' `auto` leaves XLA off under "
                  "`--strategy auto` on GPUs: pass `--jit_compile on` where it says on.\n")
        else:
            out.append("\n**--jit_compile:** not measured here (no XLA on/off pair).\n")
    if sp and sp.get("status") != "ok":
        out.append(("\n" if sp.get("rows") is not None else "\n## Speed\n\n")
                   + f"{sp['status']}\n")
    run = sections.get("train_ign", {})
    if run:
        out.append("\n## train_ign.py\n\n")
        if run.get("status") == "ok":
            out.append(f"`{run['command']}` ({run['run_seconds']} s)\n\n    {run['first_line']}\n"
                       f"    {run['last_progress']}\n    {run['last_line']}\n")
        else:
            out.append(f"{run['status']}\n")
    if failed:
        out.append("\n## Failed checks\n\n" + "".join(
            f"- {c['section']}: {c['name']} (value {fmt(c['value'])}, limit {fmt(c['limit'])})\n"
            for c in failed))
    return "".join(out)


# -------------------------------------------------------------------- main
# Sections per child, about even in time; determinism last: it cannot be undone.
WORKERS = {"checks": ("equality",),
           "speed": ("environment", "precision", "speed", "determinism")}
SECTIONS = {"environment": environment, "equality": equality, "precision": precision,
            "speed": speed, "determinism": determinism}
ORDER = ("environment", "equality", "precision", "determinism", "speed", "train_ign")
TIMEOUT = {"full": 1200, "quick": 600}   # per child process, seconds


def worker(name):
    """One child: configures its devices, runs its sections, records each."""
    mode = "quick" if FLAGS.quick else "full"
    run = Run(FLAGS.out, PRESETS[mode], mode, results=FLAGS.results)
    run.devices = configure_devices(carve_gpu=name == "checks")  # speed: devices as they are
    for section in WORKERS[name]:
        run.section(section, SECTIONS[section])
    return 0


def start_worker(run, name):
    forwarded = [f"--out={run.out}"]  # absolute
    forwarded += ["--quick"] * FLAGS.quick + ["--inject_mismatch"] * FLAGS.inject_mismatch
    if FLAGS.speed_seconds:
        forwarded.append(f"--speed_seconds={FLAGS.speed_seconds}")
    results = os.path.join(run.out, f"worker_{name}.json")
    if os.path.exists(results):
        os.remove(results)
    return Child(run.out, f"worker_{name}", [os.path.relpath(__file__, ROOT), f"--worker={name}",
                                             f"--results={results}"] + forwarded, results,
                 capture=False)


def finish_worker(run, child):
    try:
        child.wait(TIMEOUT[run.report["mode"]])
    except RuntimeError:
        pass  # recorded by merge as the sections' failure
    run.merge(child, WORKERS[child.name[len("worker_"):]])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.out:
        raise app.UsageError("--out is required (a folder for the report)")
    for name in ("train_steps", "speed_seconds"):
        if FLAGS[name].value is not None and FLAGS[name].value <= 0:
            raise app.UsageError(f"--{name} must be positive, got {FLAGS[name].value}")
    if FLAGS.worker:
        return worker(FLAGS.worker)
    out = os.path.abspath(FLAGS.out)  # the children run in the repository's root
    os.makedirs(out, exist_ok=True)
    mode = "quick" if FLAGS.quick else "full"
    run = Run(out, PRESETS[mode], mode)
    # This process never touches a device. With a GPU the three children run
    # one after the other (each would want the GPU's memory, and the speed
    # figures want the GPU alone); on a CPU they run side by side.
    sequential = bool(tf.config.list_physical_devices("GPU"))
    trainer = start_train_ign(run)
    if sequential:
        run.section("train_ign", lambda r: train_ign_result(r, trainer, TIMEOUT[mode]))
    workers = []
    for name in WORKERS:
        workers.append(start_worker(run, name))
        if sequential:
            finish_worker(run, workers.pop())
    if not sequential:  # the shortest first, so that its time is its own
        run.section("train_ign", lambda r: train_ign_result(r, trainer, TIMEOUT[mode]))
    for child in workers:
        finish_worker(run, child)
    run.report["sections"] = {k: run.report["sections"][k] for k in ORDER}
    run.write()
    print("\n" + markdown(run.report), flush=True)
    print(f"report: {os.path.join(out, 'gpu_check.md')} "
          f"({'passed' if run.passed() else 'FAILED'}, {run.report['seconds_total']} s)")
    return exit_status(run.report)


if __name__ == "__main__":
    app.run(main)
