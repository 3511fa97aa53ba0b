"""The shared training driver: config → strategy → compile → fit with callbacks.

One call, `train(config, build_model, figures=None)`, turns a frozen `Config` into
a resumable run in `config.out_dir`:

    out_dir/
      config.json           the whole config, model hyperparameters included
      checkpoints/          tf.train.CheckpointManager: ckpt-<step>.{index,data-*}
      logs/                 TensorBoard scalars (every --log_every steps) and samples
      samples/<step>.png    model.generate(n, seed=config.seed): fixed noise
      samples/real.png      the fixed real images handed to `figures`
      model.keras           the final model (EMA weights when EMA is on)
      .lock                 flock'ed by the running chief, holds its PID

Contract for a model's script (train_ogan.py, train_ign.py, train_gan.py):

    build_model(config, spec) -> model
        Called inside the strategy scope with the `Config` and the dataset's
        `data.DataSpec`; returns an uncompiled `one_loss.OneLossModel` (its
        train_step draws its own noise from `optimizer.iterations`; it has
        `generate(n, seed=...)`). It is compiled with the model's
        `default_optimizer()`, whose learning rate is replaced by `config.lr`.
        Model hyperparameters come from `config.model`.
        A ValueError raised here is a configuration error (one line, no files).
    figures(model, run_dir, step, fixed) -> None     (optional)
        Writes model-specific PNGs (reconstructions, refinements ...) with
        `images.save_table`; called on the chief every `sample_every` steps and
        at the end, with the averaged weights in place when --ema is on. `fixed` is a `Fixed`: real
        images in [-1, 1] (the first `num_samples` of the dataset) and a seed.

Resume. Everything that determines the future of a run is in the checkpoint or
is a function of the step: weights, BatchNorm statistics, optimizer slots and
the weight average (`averaging.WeightAverage`, --ema), the step (optimizer.iterations), the noise (the
models draw it statelessly from the step) and the data position (the input
pipeline is deterministic for a seed; a resumed run skips the batches already
consumed by replaying the input pipeline without the model). So a resumed run repeats the
uninterrupted one exactly: on the CPU bit for bit with TensorFlow's default
settings, the same machine and thread count (tests/test_training.py); on GPUs
also call tf.config.experimental.enable_op_determinism(). Under fp16, a step
skipped by the loss scale does not advance the counter, so exactness holds up
to such steps. Checkpoints are written every
`ckpt_every` steps and at the end; TensorFlow writes the files first and then
swaps the `checkpoint` index file atomically, so a kill at any moment leaves the
previous checkpoint as the latest one. A step's samples, figures and the extra
callbacks run before its checkpoint, so a kill never loses them (the resumed
run repeats them). The next start removes what an interrupted write left.

Safety. The chief holds an OS lock on the run folder for the run (`lock_run_dir`):
a second run stops at once, naming the holder's PID. A write failing for room or
rights (checkpoint, samples, config.json, model.keras) is a one-line
RunFolderError naming the intact last checkpoint. A run already at `steps` is not
touched (RunComplete). A setting may change on resume only when named in
`allow_change` (ALLOWED_CHANGES: lr, ema), e.g. to rescue a diverged run with a
lower learning rate; config.json's "history" records each change.

Strategies: auto (MirroredStrategy over the visible GPUs, else the default),
default, mirrored, multi_worker (TF_CONFIG; only the chief writes files, every
worker takes part in checkpoint saves), tpu. The global batch is split over the
replicas; the models scale their loss for the summed gradients. A strategy or
--jit_compile may change when a run is resumed, unless the change alters what
a step computes: with XLA on over several replicas, batch statistics are per
replica (`one_loss.XlaShards`); config.json records which (`batch_statistics`).

The library never reads flags: `ogan_ign.cli` turns absl flags into a Config.
"""

import contextlib
import dataclasses
import errno
import fcntl
import importlib.metadata
import json
import math
import os
import re
import shutil
import tempfile
import time
from typing import Any, Optional

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import averaging, data, images, one_loss
from ogan_ign.settings import hparam

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
JIT_COMPILE = {"auto": "auto", "on": True, "off": False}
PRECISION_POLICIES = {"off": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
# --mixed_precision values; "auto" resolves to "bf16" or "off" (`resolve_precision`).
PRECISION_CHOICES = ("auto",) + tuple(PRECISION_POLICIES)
# Settings that may differ when a run is resumed: they change how a run is
# watched or placed, not what it computes (strategy and jit_compile: unless
# they switch the batch statistics, `check_resumed_computation`).
RESUMABLE_CHANGES = frozenset({"steps", "sample_every", "ckpt_every", "log_every", "resume",
                               "strategy", "jit_compile", "data_dir", "out_dir", "num_samples",
                               "allow_change"})
# Settings a resumed run may change when the user names them in --allow_change
# (the rescue of a diverged run). Both live outside the checkpoint's shapes: the
# learning rate is one optimizer variable, set again after the restore; the EMA
# decay is a Python number (turning EMA on starts the average at the resumed
# weights; turning it off exports the raw weights). Everything else is refused: the data (dataset, image_size,
# channels) and the model's settings change what the weights mean or their shapes,
# batch_size the data position a resumed run skips to, seed the noise and order.
ALLOWED_CHANGES = ("lr", "ema")
KEEP_CHECKPOINTS = 3
LOCK_FILE = ".lock"
# A write that failed for want of room or rights (OSError numbers; TensorFlow's
# errors carry the same words in their message).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
WRITE_REASONS = ("No space left on device", "Disk quota exceeded", "Permission denied",
                 "Read-only file system", "File too large")


class ConfigError(ValueError):
    """A configuration the user can fix; the message is one line."""


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or Inf; the last good checkpoint is kept.
    Raised naming what diverged; `train` adds what to do (`diverged_advice`)."""


class RunFolderError(ConfigError):
    """The run folder cannot be written (disk full, no permission, in use by
    another run); the message is one line and says what stays intact."""


class RunComplete(Exception):
    """The run in `out_dir` already reached --steps: nothing was done or written."""

    def __init__(self, out_dir, step):
        super().__init__(f"run complete at step {step} in {out_dir} (raise --steps to continue)")
        self.out_dir, self.step = out_dir, step


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs; written to config.json. Each field holds its
    default and the help of its flag (`cli.define_common_flags`).

    model: the model's own hyper-parameters, a frozen settings dataclass (or a
      dict) of JSON-able values, read only by the script's `build_model`.
    """

    dataset: str = hparam("", "fashion_mnist, celeba_hq, ffhq, a TFDS name (celeb_a, mnist, "
                              "...) or a folder of images")
    out_dir: str = hparam("", "the run folder: config, checkpoints, logs, samples, model.keras")
    data_dir: Optional[str] = hparam(None, "where the dataset's files are (TFDS data_dir, "
                                           "CelebA-HQ archives or images, Fashion-MNIST IDX)")
    image_size: int = hparam(32, "image side: 28, 32, 64, 128 or 256")
    channels: Optional[int] = hparam(None, "1 or 3; default: the data's own")
    batch_size: int = hparam(64, "global batch size, split over the replicas")
    steps: int = hparam(10_000, "training steps in all (a resumed run stops at the same total)")
    lr: float = hparam(1e-4, "learning rate")
    seed: int = hparam(0, "seed of the weights, the noise and the data order")
    resume: bool = hparam(True, "continue from the last checkpoint in --out_dir (--noresume "
                                "refuses a folder that has one)")
    allow_change: str = hparam("", "settings a resumed run may change on purpose, comma "
                                   "separated (lr, ema), e.g. to rescue a diverged run with a "
                                   "lower --lr; recorded in config.json's history")
    sample_every: int = hparam(1000, "steps between sample grids (0: only at the end)")
    ckpt_every: int = hparam(1000, "steps between checkpoints")
    log_every: int = hparam(100, "steps between progress lines")
    num_samples: int = hparam(64, "images per sample grid")
    strategy: str = hparam("auto", "|".join(STRATEGIES) + "; auto = mirrored over the visible "
                                   "GPUs, if any")
    jit_compile: str = hparam("auto", "|".join(JIT_COMPILE) + "; auto lets Keras decide (off "
                                      "on the CPU and under strategies); on over several "
                                      "replicas takes batch statistics per replica")
    mixed_precision: str = hparam("auto", "|".join(PRECISION_CHOICES) + "; auto = bf16 where "
                                          "the hardware has native bfloat16 (GPUs of compute "
                                          "capability ≥ 8.0, TPUs, CPUs with AVX512-BF16/AMX), "
                                          "else off (float32); the loss math is float32 either way")
    ema: float = hparam(0.0, "decay of the moving average of every weight, BatchNorm statistics "
                             "included, warmed up as min(ema, (1+t)/(10+t)) (e.g. 0.999); "
                             "samples and model.keras use it; 0 = off")
    model: Any = None

    def to_json(self):
        """The config as JSON-able nested dicts (dataclasses and tuples flattened)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclasses.dataclass(frozen=True)
class Fixed:
    """What `figures` gets besides the model: fixed real images and a noise seed."""

    x_real: np.ndarray
    seed: int


# ------------------------------------------------------------------- checks


def validate(config):
    """Raises ConfigError with one line for a config that cannot run; no I/O."""
    def need(ok, message):
        if not ok:
            raise ConfigError(message)

    need(isinstance(config, Config), f"expected a training.Config, got {type(config).__name__}")
    need(str(config.dataset).strip() != "", "--dataset is required")
    need(str(config.out_dir).strip() != "", "--out_dir is required")
    for name in ("image_size", "batch_size", "steps", "ckpt_every", "log_every", "num_samples"):
        value = getattr(config, name)
        need(isinstance(value, int) and value >= 1, f"--{name} must be a positive integer, got {value}")
    for name in ("sample_every", "seed"):
        value = getattr(config, name)
        need(isinstance(value, int) and value >= 0, f"--{name} must be >= 0, got {value}")
    need(config.channels in (None, 1, 3), f"--channels must be 1 or 3, got {config.channels}")
    need(math.isfinite(config.lr) and config.lr > 0, f"--lr must be positive, got {config.lr}")
    need(0.0 <= config.ema < 1.0, f"--ema must be in [0, 1) (0 = off), got {config.ema}")
    need(config.strategy in STRATEGIES,
         f"--strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}")
    need(config.jit_compile in JIT_COMPILE,
         f"--jit_compile must be one of {', '.join(JIT_COMPILE)}, got {config.jit_compile!r}")
    need(config.mixed_precision in PRECISION_CHOICES,
         f"--mixed_precision must be one of {', '.join(PRECISION_CHOICES)}, "
         f"got {config.mixed_precision!r}")
    try:
        config.to_json()
    except (TypeError, ValueError) as e:
        raise ConfigError(f"the config is not JSON-able: {e}") from None
    allowed_changes(config)


def allowed_changes(config):
    """The field names of --allow_change; ConfigError for a name that is not a
    setting or one that cannot change on resume (ALLOWED_CHANGES says why)."""
    names = [n.strip() for n in str(config.allow_change or "").split(",") if n.strip()]
    fields = set(config.to_json()) - {"model"}
    model = config.to_json().get("model")
    model_fields = set(model) if isinstance(model, dict) else set()
    for name in names:
        if name not in fields and name not in model_fields:
            raise ConfigError(f"--allow_change: {name!r} is not a setting")
        if name not in ALLOWED_CHANGES:
            raise ConfigError(
                f"--allow_change: {name} cannot change on resume (only "
                f"{', '.join(ALLOWED_CHANGES)} can: the others change what the checkpoint "
                "holds or what a step means); start a new --out_dir instead")
    return names


def check_run_dir(config):
    """The run folder may be new, or hold a run of the same config to resume.

    Returns the changes --allow_change permits, as [{"field", "old", "new"}]
    (empty for a new run); ConfigError for any other difference.
    """
    directory = os.path.join(config.out_dir, "checkpoints")
    if not tf.train.latest_checkpoint(directory):
        return []
    if not config.resume:
        raise ConfigError(f"{config.out_dir} already holds checkpoints; resume (the default) "
                          "or choose another --out_dir")
    stored = stored_config(config)
    if stored is None:
        return []
    stored.pop("run", None)
    stored.pop("history", None)
    current = config.to_json()
    if data.canonical_dataset(stored.get("dataset", "")) == data.canonical_dataset(
            current["dataset"]):
        stored["dataset"] = current["dataset"]  # another spelling of the same data
    allowed = set(allowed_changes(config))
    changed = sorted(k for k in set(stored) | set(current)
                     if k not in RESUMABLE_CHANGES and stored.get(k) != current.get(k))
    refused = [k for k in changed if k not in allowed]
    if refused:
        diffs = "; ".join(f"{k}: {stored.get(k)!r} → {current.get(k)!r}" for k in refused)
        hint = "use the same flags to resume or another --out_dir"
        if set(refused) <= set(ALLOWED_CHANGES):
            hint = (f"to change it on purpose add --allow_change {','.join(refused)}, or use "
                    "the same flags to resume")
        raise ConfigError(f"{config.out_dir} holds a run with another config ({diffs}); {hint}")
    return [{"field": k, "old": stored.get(k), "new": current.get(k)} for k in changed]


def has_average(checkpoint_path):
    """Whether a checkpoint holds a weight average (written with --ema)."""
    return any(name.startswith("average/") for name, _ in tf.train.list_variables(checkpoint_path))


def stored_config(config):
    """The config.json of the run in config.out_dir, or None."""
    path = os.path.join(config.out_dir, "config.json")
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        raise ConfigError(f"{path} is not readable JSON ({e}); restore it or choose another "
                          "--out_dir") from None


def run_record(model, strategy, precision):
    """What the flags resolved to on this machine, for config.json's "run"."""
    return {
        "precision": PRECISION_POLICIES[precision],
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "jit_compile": bool(model.jit_compile),
        "batch_statistics": model_batch_statistics(model, strategy),
        "versions": {"ogan_ign": package_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
    }


def package_version():
    try:
        return importlib.metadata.version("ogan_ign")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def model_batch_statistics(model, strategy):
    """"global", or "per replica" when the step runs as XLA shards (one_loss.XlaShards)."""
    return "per replica" if one_loss.uses_xla_shards(model.jit_compile, strategy) else "global"


def check_resumed_computation(config, record):
    """A resumed run must compute the same step: --strategy and --jit_compile may
    change, unless they switch batch statistics between global and per replica."""
    has_checkpoint = tf.train.latest_checkpoint(os.path.join(config.out_dir, "checkpoints"))
    stored = stored_config(config) if config.resume and has_checkpoint else None
    if not stored or "run" not in stored:
        return
    before = stored["run"].get("batch_statistics")
    if before != record["batch_statistics"] or (
            before == "per replica" and stored["run"].get("replicas") != record["replicas"]):
        raise ConfigError(
            f"{config.out_dir} was trained with {before} batch statistics on "
            f"{stored['run'].get('replicas')} replica(s); these flags give "
            f"{record['batch_statistics']} on {record['replicas']}: resuming would change what "
            "a step computes (--jit_compile on over several replicas is per replica)")


# ----------------------------------------------------------------- strategy


def make_strategy(name):
    """The tf.distribute strategy for --strategy (ConfigError when unavailable)."""
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        # The cluster comes from TF_CONFIG; without it TensorFlow would train one
        # local worker silently.
        if not os.environ.get("TF_CONFIG", "").strip():
            raise ConfigError("--strategy=multi_worker needs the cluster in TF_CONFIG (JSON: "
                              "cluster and task); on one machine use --strategy=auto or mirrored")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--strategy=tpu: no TPU found ({first})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def is_chief(strategy):
    """Whether this task writes checkpoints, logs and figures (one task does)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if not cluster or resolver.task_type in (None, "chief"):
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def cpu_flags():
    """The instruction-set flags of this machine's CPU (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(name, strategy=None, gpu_capabilities=None, cpu=None):
    """(policy name, why) for --mixed_precision; "auto" picks bf16 where the
    devices compute in bfloat16 natively, float32 elsewhere.

    Native bfloat16: TPUs, NVIDIA GPUs of compute capability 8.0 or higher (every
    visible GPU must qualify), or, with no GPU, a CPU with AMX-BF16 or
    AVX512-BF16 (the loss math stays float32); elsewhere bfloat16 is emulated
    and slower (README, "Speed").
    `gpu_capabilities` (a list of (major, minor) or None per GPU) and `cpu` (a set
    of CPU flags) default to this machine's.
    """
    if name != "auto":
        return name, "as asked"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "bf16", "TPU"
    if gpu_capabilities is None:
        gpu_capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                            for gpu in tf.config.list_physical_devices("GPU")]
    if gpu_capabilities:
        if all(c is not None and tuple(c) >= (8, 0) for c in gpu_capabilities):
            return "bf16", "GPUs with native bfloat16 (compute capability ≥ 8.0)"
        return "off", "a GPU without native bfloat16 (compute capability < 8.0)"
    cpu = cpu_flags() if cpu is None else cpu
    native = sorted({"amx_bf16", "avx512_bf16"} & set(cpu))
    if native:
        return "bf16", f"CPU with {'/'.join(native)}"
    return "off", "CPU without bfloat16 instructions"


@contextlib.contextmanager
def precision_policy(name):
    """Sets Keras's global dtype policy while the model is built, then restores it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[name])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def configure_optimizer(model, config):
    """The model's `default_optimizer()` with config's lr. (The EMA is not the
    optimizer's: `averaging.WeightAverage` averages BatchNorm statistics too.)
    Under mixed_float16, compile() wraps the optimizer in a LossScaleOptimizer.
    """
    optimizer = model.default_optimizer()
    settings = optimizer.get_config()
    settings.update(learning_rate=config.lr)
    return optimizer.__class__.from_config(settings)


def inner_optimizer(optimizer):
    """The optimizer inside a LossScaleOptimizer under fp16 (else itself)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


class Summaries:
    """TensorBoard events in `logdir` through tf.summary, with the interface of a
    tf.summary writer (`as_default`, `flush`). The events file is created when
    the first value is written, so a run that logs nothing (a finished run
    started again) adds no empty file."""

    def __init__(self, logdir):
        self.logdir, self.writer = logdir, None

    @contextlib.contextmanager
    def as_default(self, step=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.logdir)
        with self.writer.as_default(step=step):
            yield self

    def flush(self):
        if self.writer is not None:
            self.writer.flush()


def write_scalar(name, value, step):
    """A TensorBoard scalar (inside a writer's `as_default()`)."""
    tf.summary.scalar(name, float(value), step=step)


def write_image(name, picture, step):
    """A TensorBoard image from a uint8 (H, W, C) picture (inside a writer's
    `as_default()`)."""
    tf.summary.image(name, np.asarray(picture, np.uint8)[None], step=step)


def global_step(model):
    """The optimizer's step counter as an int (a MirroredVariable under a strategy)."""
    return int(to_numpy(model.optimizer.iterations))


def to_numpy(variable):
    """A variable's value, also for the MirroredVariable inside a Keras variable."""
    return tf.convert_to_tensor(variable).numpy()


def scalar(value):
    """A log value as a float (multi-worker logs are rank 1, see DESIGN.md)."""
    return float(np.mean(np.asarray(value, dtype=np.float64)))


# ---------------------------------------------------------------- callbacks


def duration(seconds):
    """A duration for progress lines: 42s, 3m05s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


class Progress(keras.callbacks.Callback):
    """Stops at `steps`, stops on NaN/Inf, prints and logs the metrics.

    A line: step, time since this process began training, the remaining time
    at the rate since the first step, images per second over the steps since
    the last line, then the metrics. The first step of a process (tracing and
    compiling) is left out of every rate: the first line's rate starts after it.
    The metrics are means over the steps since the last line: Keras's trackers
    are reset after each line, so a NaN shows at the step it happens.
    """

    def __init__(self, config, writer, chief, start_step, clock=time.perf_counter):
        super().__init__()
        self.config, self.writer, self.chief, self.clock = config, writer, chief, clock
        self.start_step, self.start_time = start_step, clock()
        self.warm = None          # (step, time) at the end of the first step
        self.last = None          # (step, time) of the last line, or of the first step

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        values = {name: scalar(value) for name, value in (logs or {}).items()}
        for name, value in values.items():
            if not math.isfinite(value):
                self.model.stop_training = True
                raise TrainingDiverged(f"{name} is {value} at step {step}")
        if self.warm is None:
            self.warm = self.last = (step, self.clock())
        if step % self.config.log_every == 0 or step >= self.config.steps:
            self.report(step, values)
        if step >= self.config.steps:
            self.model.stop_training = True

    def timing(self, step):
        """(elapsed s, remaining s or None, img/s since the last line or None)."""
        now = self.clock()
        (warm_step, warm_time), (last_step, last_time) = self.warm, self.last
        rate = remaining = None
        if step > last_step and now > last_time:
            rate = (step - last_step) * self.config.batch_size / (now - last_time)
        if step > warm_step and now > warm_time:
            remaining = (self.config.steps - step) * (now - warm_time) / (step - warm_step)
        self.last = (step, now)
        return now - self.start_time, remaining, rate

    def report(self, step, values):
        elapsed, remaining, rate = self.timing(step)
        if self.chief:
            shown = "  ".join(f"{name} {value:.4g}" for name, value in values.items())
            eta = "" if remaining is None or step >= self.config.steps \
                else f", ETA {duration(remaining)}"
            speed = "compiling" if rate is None else f"{rate:.1f} img/s"
            print(f"step {step}/{self.config.steps}  {duration(elapsed)}{eta}  {speed}  {shown}",
                  flush=True)
            with self.writer.as_default():
                for name, value in values.items():
                    write_scalar(name, value, step)
                if rate is not None:
                    write_scalar("perf/images_per_second", rate, step)
            self.writer.flush()
        for metric in self.model.metrics:
            metric.reset_state()


class Checkpoints(keras.callbacks.Callback):
    """Saves every `ckpt_every` steps and at the last step, never non-finite weights.

    The driver runs it last, after the samples and any other callback, so a run
    killed while saving a checkpoint has already written that step's figures and
    metrics; the resumed run writes them again (identical: a function of the step).
    """

    def __init__(self, config, manager, worker_manager=None):
        super().__init__()
        self.config, self.manager, self.worker_manager = config, manager, worker_manager

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.config.ckpt_every == 0 or step >= self.config.steps:
            save_checkpoint(self.model, self.manager, step, self.worker_manager)


def save_checkpoint(model, manager, step, worker_manager=None):
    """Saves checkpoint `step`; TrainingDiverged for a non-finite weight,
    RunFolderError when the disk is full or not writable (the checkpoint's
    uncommitted files are removed, the previous checkpoint stays the latest)."""
    for variable in model.weights:
        if not np.all(np.isfinite(to_numpy(variable))):
            raise TrainingDiverged(f"weight {variable.path} is not finite at step {step}")
    try:
        with writing(f"checkpoint {step} in {manager.directory}"):
            if worker_manager is None:
                manager.save(checkpoint_number=step)
            else:
                # Every worker takes part in a multi-worker save (reads may be
                # collective); only the chief's copy is kept.
                worker_manager.save(checkpoint_number=step)
                shutil.rmtree(worker_manager.directory, ignore_errors=True)
    except RunFolderError:
        remove_uncommitted_checkpoints(manager.directory)
        raise


class Samples(keras.callbacks.Callback):
    """Sample grids from fixed noise and the model's own figures, with the
    averaged weights in when there is an `average`."""

    def __init__(self, config, run_dir, writer, fixed, figures, average=None):
        super().__init__()
        self.config, self.run_dir, self.writer = config, run_dir, writer
        self.fixed, self.figures, self.average = fixed, figures, average

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        every = self.config.sample_every
        if (every and step % every == 0) or step >= self.config.steps:
            write_samples(self.model, self.run_dir, step, self.fixed, self.figures, self.writer,
                          self.average)


def samples_path(run_dir, step):
    return os.path.join(run_dir, "samples", f"{step:08d}.png")


def write_samples(model, run_dir, step, fixed, figures=None, writer=None, average=None):
    """The sample grid of `step` (and `figures`), with `average`'s weights in when
    given; RunFolderError when it cannot be written."""
    with writing(f"the samples of step {step} in {run_dir}"), averaging.swapped_in(average):
        x = np.asarray(model.generate(len(fixed.x_real), seed=fixed.seed), np.float32)
        path = images.save_grid(samples_path(run_dir, step), x)
        if writer is not None:
            picture = images.table(images.grid(x))
            picture = picture[..., None] if picture.ndim == 2 else picture
            with writer.as_default():
                write_image("samples", picture, step)
        if figures is not None:
            figures(model, run_dir, step, fixed)
    return path


# --------------------------------------------------------------- run folder


def check_out_dir(out_dir):
    """ConfigError unless a run folder can be made or written at `out_dir`.

    Checked before anything is built: the folder (or its nearest existing
    parent) must be a folder in which a sub-folder can be created; the probe is
    removed at once, so nothing stays behind.
    """
    path = os.path.abspath(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--out_dir {out_dir} is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"--out_dir {out_dir}: {parent} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ogan_ign-probe-", dir=parent))
    except OSError as e:
        raise ConfigError(f"--out_dir {out_dir} is not usable: cannot create a folder in "
                          f"{parent} ({e.strerror or e})") from None


def missing_ancestor(path):
    """The outermost folder of `path` that does not exist yet (None if it does)."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def lock_run_dir(out_dir):
    """Takes the run folder's lock; returns the open lock file's descriptor.

    An OS-level lock (flock on out_dir/.lock), held while the descriptor is open:
    closing it, the process ending, or the process being killed (even by
    SIGKILL: the kernel drops the lock) releases it. The holder's PID is written
    into the file. Raises RunFolderError naming that PID when another process
    holds it. Creates out_dir. (flock is per open file: a second call in the same
    process, before `unlock_run_dir`, is refused too.)
    """
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd = os.open(os.path.join(out_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunFolderError(f"cannot write {out_dir}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"{out_dir} is in use by another run (pid {holder}); wait for it "
                             "to end or choose another --out_dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_run_dir(fd):
    """Releases a lock of `lock_run_dir` (the file stays; the lock is the flock)."""
    os.close(fd)


def checkpoint_step(path):
    """The step of a checkpoint path ckpt-<step> (the driver numbers them so)."""
    return int(path.rsplit("-", 1)[1])


def remove_stale_temporaries(run_dir):
    """Removes what an interrupted write left (a kill, a full disk); returns the
    paths. Only with the run folder's lock held: another run's files in flight
    look the same.

    checkpoints/: TensorFlow's ckpt-N_temp* staging and the files of a
    checkpoint newer than the latest one the index names (written, never
    committed); model.tmp.keras (export); *.tmp (write_json, images.save_png).
    """
    removed = []

    def remove(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
        removed.append(path)

    ckpt_dir = os.path.join(run_dir, "checkpoints")
    removed += remove_uncommitted_checkpoints(ckpt_dir)
    if os.path.lexists(os.path.join(run_dir, "model.tmp.keras")):
        remove(os.path.join(run_dir, "model.tmp.keras"))
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != ckpt_dir]
        for name in files:
            if name.endswith(".tmp"):
                remove(os.path.join(root, name))
    return removed


def remove_uncommitted_checkpoints(ckpt_dir):
    """Removes TensorFlow's ckpt-N_temp* staging and the files of checkpoints
    newer than the latest one the index names; returns the paths."""
    removed = []
    if not os.path.isdir(ckpt_dir):
        return removed
    latest = tf.train.latest_checkpoint(ckpt_dir)
    newest = checkpoint_step(latest) if latest else -1
    for name in sorted(os.listdir(ckpt_dir)):
        match = re.match(r"ckpt-(\d+)(_temp.*|\.index|\.data-.*)$", name)
        if match and (match.group(2).startswith("_temp") or int(match.group(1)) > newest):
            path = os.path.join(ckpt_dir, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
            removed.append(path)
    return removed


def write_failure(error):
    """The reason when `error` is a write that failed for room or rights, else None."""
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
        return os.strerror(error.errno)
    if isinstance(error, tf.errors.OpError):
        for reason in WRITE_REASONS:
            if reason.lower() in str(error.message).lower():
                return reason
    return None


@contextlib.contextmanager
def writing(what):
    """Turns a write failing for room or rights into a one-line RunFolderError
    ("cannot write <what>: <reason>"); other errors pass."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        reason = write_failure(e)
        if reason is None:
            raise
        raise RunFolderError(f"cannot write {what}: {reason}") from None


def last_checkpoint_note(run_dir):
    """What a stopped run leaves to resume from, for its error line."""
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest:
        return f"the last good checkpoint (step {checkpoint_step(latest)}) is intact in {ckpt_dir}"
    return "no checkpoint was written yet"


def diverged_advice(config, run_dir):
    """How to go on after a NaN / Inf: rescue from the last good checkpoint with
    a lower learning rate, or start again when there is none."""
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    lower = f"{config.lr / 10:g}"
    if latest:
        return (f"stopped, the last good checkpoint is step {checkpoint_step(latest)} in "
                f"{ckpt_dir}: to resume from it with a lower learning rate, run the same "
                f"command with --lr {lower} --allow_change lr")
    return (f"stopped, no checkpoint was written yet (the first is at step "
            f"{min(config.ckpt_every, config.steps)}): rerun with a lower --lr, e.g. "
            f"--lr {lower}")


# ---------------------------------------------------------------- the driver


def write_json(path, value):
    """Writes JSON atomically (temp file, then rename); RunFolderError when the
    disk is full or not writable (the temp file is removed, `path` unchanged)."""
    tmp = path + ".tmp"
    try:
        with writing(path):
            with open(tmp, "w") as f:
                json.dump(value, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.remove(tmp)


def merge_json(path, values):
    """Updates the JSON object at `path` with `values`, keeping its other keys."""
    stored = {}
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
    write_json(path, {**stored, **values})


def export(model, path):
    """Saves the model as .keras atomically (Keras needs the .keras suffix);
    RunFolderError when the disk is full or not writable (no partial file stays)."""
    tmp = path[:-len(".keras")] + ".tmp.keras"
    try:
        with writing(path):
            model.save(tmp)
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.remove(tmp)
    return path


def train(config, build_model, figures=None, callbacks=()):
    """Trains (or resumes) the run described by `config`; returns the model.

    The returned model holds the averaged weights when --ema is on (those it exports).
    `callbacks` are extra keras callbacks, run after the samples and before the
    checkpoint of a step (a resumed run repeats what they wrote since it).

    Raises ConfigError / data.DataError (one line, before any file is written);
    RunFolderError (a ConfigError) when another process holds the run folder's
    lock or a write fails for room or rights, naming what stays intact;
    RunComplete when the run already reached `steps` (nothing is touched);
    TrainingDiverged, saying where to resume from.
    """
    validate(config)
    check_out_dir(config.out_dir)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs an op.
    strategy = make_strategy(config.strategy)
    spec = data.resolve(config.dataset, data_dir=config.data_dir,
                        image_size=config.image_size, channels=config.channels)
    changes = check_run_dir(config)
    run_dir = config.out_dir
    chief = is_chief(strategy)
    # Only the chief writes, so only it holds the lock; taken before the slow
    # part so that a second run stops at once.
    created = missing_ancestor(run_dir)
    lock = lock_run_dir(run_dir) if chief else None
    writes_started = False
    try:
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        latest = tf.train.latest_checkpoint(ckpt_dir) if config.resume else None
        if (latest and checkpoint_step(latest) >= config.steps
                and os.path.isfile(os.path.join(run_dir, "model.keras"))):
            raise RunComplete(run_dir, checkpoint_step(latest))
        replicas = strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ConfigError(f"--batch_size {config.batch_size} is not divisible by the "
                              f"{replicas} replicas of --strategy={config.strategy}")

        precision, why = resolve_precision(config.mixed_precision, strategy)

        # Seeds the weights' initialisers; the training noise is seeded by the step.
        keras.utils.set_random_seed(config.seed)
        with precision_policy(precision), strategy.scope():
            try:
                model = build_model(config, spec)
            except ValueError as e:
                raise ConfigError(str(e).strip().splitlines()[0]) from None
            model.compile(optimizer=configure_optimizer(model, config),
                          jit_compile=JIT_COMPILE[config.jit_compile])
            average = averaging.WeightAverage(model, config.ema) if config.ema > 0 else None
        record = run_record(model, strategy, precision)
        check_resumed_computation(config, record)

        writes_started = True
        if chief:
            removed = remove_stale_temporaries(run_dir)
            if removed:
                print(f"removed {len(removed)} temporary file(s) left by an interrupted write "
                      f"in {run_dir}", flush=True)
        with writing(f"in {run_dir}"):
            return _run(config, model, strategy, spec, record, chief, changes, figures,
                        callbacks, precision, why, average)
    except RunFolderError as e:
        if not writes_started:
            _undo_created(run_dir, created)
            raise
        raise RunFolderError(f"{e}; {last_checkpoint_note(run_dir)}") from None
    except TrainingDiverged as e:
        # Raised with what diverged; the advice depends on the run folder.
        raise TrainingDiverged(f"{e}; {diverged_advice(config, run_dir)}") from None
    except (ConfigError, data.DataError):
        if not writes_started:
            _undo_created(run_dir, created)
        raise
    finally:
        if lock is not None:
            unlock_run_dir(lock)


def _undo_created(run_dir, created):
    """Removes the lock file and the folders this run made before it failed its checks."""
    if created is None:
        return
    with contextlib.suppress(OSError):
        os.remove(os.path.join(run_dir, LOCK_FILE))
    path = os.path.abspath(run_dir)
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == created:
            return
        path = os.path.dirname(path)


def _run(config, model, strategy, spec, record, chief, changes, figures, callbacks,
         precision, why, average):
    """train()'s writing part, with the lock held and the checks passed."""
    run_dir = config.out_dir
    replicas = strategy.num_replicas_in_sync
    trackables = dict(model=model, optimizer=model.optimizer)
    checkpoint = tf.train.Checkpoint(
        **trackables, **({"average": average.state} if average is not None else {}))
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, KEEP_CHECKPOINTS)
    worker_manager = None if chief else tf.train.CheckpointManager(
        checkpoint, os.path.join(ckpt_dir, f".worker{strategy.cluster_resolver.task_id}"), 1)
    restarted_average = False
    if config.resume and manager.latest_checkpoint:
        latest = manager.latest_checkpoint
        restarted_average = average is not None and not has_average(latest)
        # A run checkpointed without --ema (or by an ogan_ign whose EMA was the
        # optimizer's) has no average: it starts from the restored weights.
        restoring = tf.train.Checkpoint(**trackables) if restarted_average else checkpoint
        restoring.restore(latest).assert_existing_objects_matched()
        if restarted_average:
            average.reset()
        # The learning rate is an optimizer variable, so the restore brought back
        # the stored one; the config's wins (equal unless --allow_change lr).
        inner_optimizer(model.optimizer).learning_rate = config.lr
    step = global_step(model)

    if chief:
        os.makedirs(run_dir, exist_ok=True)
        history = (stored_config(config) or {}).get("history", []) if step else []
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        history = history + [{"step": step, "time": now, **change} for change in changes]
        value = {**config.to_json(), "run": record}
        if history:
            value["history"] = history
        write_json(os.path.join(run_dir, "config.json"), value)
        for change in changes:
            print(f"{change['field']} changed on resume at step {step}: {change['old']!r} → "
                  f"{change['new']!r} (--allow_change; recorded in config.json)", flush=True)
        if restarted_average:
            print(f"the checkpoint of step {step} holds no weight average: the average (--ema "
                  f"{config.ema}) starts from its weights", flush=True)
    writer = Summaries(os.path.join(run_dir, "logs")) if chief else tf.summary.create_noop_writer()
    fixed = Fixed(x_real=data.load_arrays(spec, limit=config.num_samples)[0], seed=config.seed)
    if chief:
        with writing(os.path.join(run_dir, "samples", "real.png")):
            images.save_grid(os.path.join(run_dir, "samples", "real.png"), fixed.x_real)
        print(f"{spec.name}: {spec.num_examples} images of {spec.image_size}px × "
              f"{spec.channels}; {replicas} replica(s); precision "
              f"{PRECISION_POLICIES[precision]} ({config.mixed_precision}: {why}); "
              + (f"resuming at step {step}" if step else "starting") + f" in {run_dir}",
              flush=True)
        every = config.sample_every
        if step and ((every and step % every == 0) or step >= config.steps) \
                and not os.path.exists(samples_path(run_dir, step)):
            # Written by a run that checkpointed before its samples (older
            # versions ran the callbacks the other way round).
            write_samples(model, run_dir, step, fixed, figures, writer, average)

    if step < config.steps:
        # The same deterministic stream as an uninterrupted run, minus what the
        # checkpointed steps consumed.
        dataset = data.make_dataset(spec, config.batch_size, shuffle=True, repeat=True,
                                    seed=config.seed).skip(step)
        # Checkpoints last: a kill while saving checkpoint N finds step N's
        # samples and metrics written; the resumed run repeats them.
        # The average first: this step's samples and checkpoint include it.
        driver = ([average] if average is not None else []) + [Progress(config, writer, chief,
                                                                         step)]
        if chief:
            driver.append(Samples(config, run_dir, writer, fixed, figures, average))
        driver += list(callbacks) + [Checkpoints(config, manager, worker_manager)]
        # One endless epoch: Progress stops it at `steps` (an fp16 step skipped by
        # the loss scale does not count, so the number of batches is not known).
        model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=driver)

    if average is not None:
        average.assign()  # the checkpoint keeps the raw weights; the export the average
    if chief:
        export(model, os.path.join(run_dir, "model.keras"))
        writer.flush()
    return model
