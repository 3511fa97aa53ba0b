"""A run's configuration: the `Config`, its validation, and what may change on resume.

`validate` checks a config alone (no I/O). `check_run_dir` and
`check_resumed_computation` compare it with the config.json of the run it
resumes: a setting may differ only when it changes how a run is watched or placed
or how it samples (a setting declared `resumable`, e.g. --steps or IGN's
temperature: RESUMABLE_CHANGES are the run's), or when the user names it in
--allow_change (ALLOWED_CHANGES).
"""

import dataclasses
import json
import math
import os
from typing import Any, Optional

import tensorflow as tf

from ogan_ign import conv_gradient, data, fused_batchnorm
from ogan_ign.settings import hparam, resumable_names

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
JIT_COMPILE = {"auto": "auto", "on": True, "off": False}
# --mixed_precision: one word per precision, the words of config.json and of the
# reports too; "auto" resolves to bf16 or fp32 (`devices.resolve_precision`).
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = ("auto",) + PRECISIONS
# --filter_gradient: how the convolutions' filter gradients are computed
# (ogan_ign.conv_gradient); "auto" resolves per machine (`devices.resolve_filter_gradient`).
FILTER_GRADIENTS = ("auto",) + conv_gradient.KINDS
# Older spellings, read from the command line (flagfiles) and from the
# config.json of runs made before the words above.
PRECISION_ALIASES = {"off": "fp32", "float32": "fp32", "mixed_bfloat16": "bf16",
                     "mixed_float16": "fp16"}
# Settings a resumed run may change when the user names them in --allow_change
# (the rescue of a diverged run). They live outside the checkpoint's shapes: the
# learning rate is one optimizer variable, set again after the restore, and its
# schedule (lr_decay) a function of the step that sets it before every step; the EMA
# decay is a Python number (turning EMA on starts the average at the resumed
# weights; turning it off exports the raw weights). Everything else is refused:
# the data (dataset, image_size, channels) and the model's settings change what
# the weights mean or their shapes, batch_size the data position a resumed run
# skips to, seed the noise and order.
ALLOWED_CHANGES = ("lr", "lr_decay", "ema")


class ConfigError(ValueError):
    """A configuration the user can fix; the message is one line."""


def precision_word(name):
    """The word of this vocabulary (fp32, bf16, fp16, auto) for `name`, old
    spellings included ("off", "float32", "mixed_bfloat16", ...); `name` itself
    when it is none of them (`validate` refuses it)."""
    return PRECISION_ALIASES.get(name, name) if isinstance(name, str) else name


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs; written to config.json. Each field holds its
    default and the help of its flag (`cli.define_common_flags`).

    model: the model's own hyper-parameters, a frozen settings dataclass (or a
      dict) of JSON-able values, read only by the script's `build_model`.
    A field (or model setting) marked `resumable` may differ when a run is resumed:
      it changes how the run is watched, placed or sampled, not what a step computes
      (strategy and jit_compile: unless they switch the batch statistics,
      `check_resumed_computation`).
    mixed_precision: one of PRECISION_CHOICES; an old spelling ("off" ...) is
      read as its word (`precision_word`), so config.json holds the word.
    """

    dataset: str = hparam("", "fashion_mnist, celeba_hq, ffhq, a TFDS name (celeb_a, mnist, "
                              "...) or a folder of images")
    out_dir: str = hparam("", "the run folder: config, checkpoints, logs, samples, model.keras",
                          resumable=True)
    data_dir: Optional[str] = hparam(None, "where the dataset's files are (TFDS data_dir, "
                                           "CelebA-HQ archives or images, Fashion-MNIST IDX)",
                                           resumable=True)
    cache_dir: Optional[str] = hparam(None, "where a folder or .tar whose resized images "
                                            "exceed 1.5 GiB is cached, decoded once at "
                                            "--image_size for later epochs and runs; default: "
                                            "a .ogan_ign_cache folder beside the data, else "
                                            "~/.cache/ogan_ign/data", resumable=True)
    image_size: int = hparam(32, "image side: 28, 32, 64, 128 or 256")
    channels: Optional[int] = hparam(None, "1 or 3; default: the data's own")
    batch_size: int = hparam(64, "global batch size, split over the replicas")
    steps: int = hparam(10_000, "training steps in all (a resumed run stops at the same total)",
                        resumable=True)
    lr: float = hparam(1e-4, "learning rate")
    lr_decay: float = hparam(0.0, "fraction of --steps at the end of the run over which the "
                                  "learning rate falls linearly from --lr to 0 (step t of T "
                                  "trains at lr·min(1, (T − t)/(lr_decay·T))); 0 keeps it "
                                  "constant, 1 decays from the first step. A function of the "
                                  "step and --steps: a run resumed with another --steps "
                                  "follows the new schedule from there")
    seed: int = hparam(0, "seed of the weights, the noise and the data order")
    resume: bool = hparam(True, "continue from the last checkpoint in --out_dir (--noresume "
                                "refuses a folder that has one)", resumable=True)
    allow_change: str = hparam("", "settings a resumed run may change on purpose, comma "
                                   "separated (lr, lr_decay, ema), e.g. to rescue a diverged "
                                   "run with a lower --lr; recorded in config.json's history",
                                   resumable=True)
    sample_every: int = hparam(1000, "steps between sample grids (0: only at the end)",
                               resumable=True)
    ckpt_every: int = hparam(1000, "steps between checkpoints", resumable=True)
    log_every: int = hparam(100, "steps between progress lines", resumable=True)
    num_samples: int = hparam(64, "images per sample grid", resumable=True)
    strategy: str = hparam("auto", "|".join(STRATEGIES) + "; auto = mirrored over the visible "
                                   "GPUs, if any", resumable=True)
    jit_compile: str = hparam("auto", "|".join(JIT_COMPILE) + "; auto lets Keras decide (off "
                                      "on the CPU and under strategies); on over several "
                                      "replicas takes batch statistics per replica", resumable=True)
    mixed_precision: str = hparam("auto", "|".join(PRECISION_CHOICES) + "; auto = bf16 where "
                                          "the hardware has native bfloat16 (GPUs of compute "
                                          "capability ≥ 8.0, TPUs, CPUs with AVX512-BF16/AMX), "
                                          "else fp32; the loss math is float32 either way "
                                          "('off' is read as fp32)")
    filter_gradient: str = hparam("auto", "how each convolution's filter gradient is computed: "
                                          "native (TensorFlow's kernel), as_conv (the same "
                                          "sums as a forward convolution for large maps "
                                          f"up to {conv_gradient.LARGEST_MAP}×"
                                          f"{conv_gradient.LARGEST_MAP}, ogan_ign."
                                          "conv_gradient); auto = as_conv where measured "
                                          "faster (bf16 on CPUs with AVX512-BF16 without "
                                          "AMX), else native", choices=FILTER_GRADIENTS,
                                          resumable=True)
    batchnorm: str = hparam("fused", "how the networks' BatchNormalization layers run in "
                                     "training and sampling: fused (TensorFlow's fused kernel, "
                                     "ogan_ign.fused_batchnorm; Keras's ops where it cannot "
                                     "run, e.g. synchronized statistics) or keras (Keras's "
                                     "own ops); the same function either way, and the saved "
                                     "networks are plain Keras", choices=fused_batchnorm.KINDS,
                                     resumable=True)
    ema: float = hparam(0.0, "decay of the moving average of every weight, BatchNorm statistics "
                             "included, warmed up as min(ema, (1+t)/(10+t)) (e.g. 0.999); "
                             "samples and model.keras use it; 0 = off")
    standing_stats: int = hparam(0, "standing statistics (BigGAN): the generator samples with "
                                    "each BatchNorm layer's batch statistics averaged over this "
                                    "many batches of noise (of the run's --batch_size); a "
                                    "training run exports them in model.keras (IGN: in a "
                                    "sampling copy of f, while f projects with statistics of "
                                    "as many batches of training images), the sample grids "
                                    "and evaluate.py sample with them; 0 = off", resumable=True)
    model: Any = None

    def __post_init__(self):
        object.__setattr__(self, "mixed_precision", precision_word(self.mixed_precision))

    def to_json(self):
        """The config as JSON-able nested dicts (dataclasses and tuples flattened)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


RESUMABLE_CHANGES = frozenset(resumable_names(Config))


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
        need(isinstance(value, int) and value >= 1,
             f"--{name} must be a positive integer, got {value}")
    for name in ("sample_every", "seed", "standing_stats"):
        value = getattr(config, name)
        need(isinstance(value, int) and value >= 0, f"--{name} must be >= 0, got {value}")
    need(not config.standing_stats or config.batch_size >= 2,
         "--standing_stats needs a --batch_size of at least 2 (batch statistics of one image)")
    need(config.channels in (None, 1, 3), f"--channels must be 1 or 3, got {config.channels}")
    need(math.isfinite(config.lr) and config.lr > 0, f"--lr must be positive, got {config.lr}")
    need(0.0 <= config.lr_decay <= 1.0,
         f"--lr_decay must be in [0, 1] (0 = constant), got {config.lr_decay}")
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


def has_checkpoint(config):
    """Whether config.out_dir holds a checkpoint to resume from."""
    return bool(tf.train.latest_checkpoint(os.path.join(config.out_dir, "checkpoints")))


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


def _defaults(settings):
    """{name: default} of a dataclass's fields that have one, as JSON values."""
    return json.loads(json.dumps({f.name: f.default for f in dataclasses.fields(settings)
                                  if f.default is not dataclasses.MISSING}))


def with_later_defaults(stored, config):
    """A stored config (config.json, maybe written by an older ogan_ign) with
    every setting it lacks — top-level or in "model" — set to the default of the
    field that holds it now. A setting is added with a default that computes
    what runs did before it existed, so an older run resumes unrefused."""
    filled = {**_defaults(config), **stored}
    if dataclasses.is_dataclass(config.model) and isinstance(stored.get("model"), dict):
        filled["model"] = {**_defaults(config.model), **stored["model"]}
    return filled


def _model_flag_name(name, run_names):
    """A model setting's name beside the run's settings (`run_names`): its flag's
    name (the scripts define one flag per name), "model.<name>" where a run setting
    has it."""
    return f"model.{name}" if name in run_names else name


def _by_flag(settings):
    """A config's JSON with the model's settings beside the run's, each under
    `_model_flag_name`, so a refused resume names the model setting that differs."""
    flat = {k: v for k, v in settings.items() if k != "model"}
    model = settings.get("model")
    if not isinstance(model, dict):
        return settings
    for name, value in model.items():
        flat[_model_flag_name(name, flat)] = value
    return flat


def _resumable_settings(config_json, config):
    """The settings marked `resumable` (`settings.hparam`): the run's
    (RESUMABLE_CHANGES) and its model's, these under the names `_by_flag` gives
    them in `config_json`."""
    model = resumable_names(config.model) if dataclasses.is_dataclass(config.model) else []
    run_names = set(config_json) - {"model"}
    return RESUMABLE_CHANGES | {_model_flag_name(name, run_names) for name in model}


def check_run_dir(config):
    """The run folder may be new, or hold a run of the same config to resume.

    Returns the changes --allow_change permits, as [{"field", "old", "new"}]
    (empty for a new run); ConfigError for any other difference.
    """
    if not has_checkpoint(config):
        return []
    if not config.resume:
        raise ConfigError(f"{config.out_dir} already holds checkpoints; resume (the default) "
                          "or choose another --out_dir")
    stored = stored_config(config)
    if stored is None:
        return []
    stored.pop("run", None)
    stored.pop("history", None)
    stored = with_later_defaults(stored, config)
    current = config.to_json()
    if data.canonical_dataset(stored.get("dataset", "")) == data.canonical_dataset(
            current["dataset"]):
        stored["dataset"] = current["dataset"]  # another spelling of the same data
    if "mixed_precision" in stored:  # a run written before the fp32/bf16/fp16 words
        stored["mixed_precision"] = precision_word(stored["mixed_precision"])
    allowed = set(allowed_changes(config))
    resumable = _resumable_settings(current, config)
    stored, current = _by_flag(stored), _by_flag(current)
    changed = sorted(k for k in set(stored) | set(current)
                     if k not in resumable and stored.get(k) != current.get(k))
    refused = [k for k in changed if k not in allowed]
    if refused:
        diffs = "; ".join(f"{k}: {stored.get(k)!r} → {current.get(k)!r}" for k in refused)
        hint = "use the same flags to resume or another --out_dir"
        if set(refused) <= set(ALLOWED_CHANGES):
            hint = (f"to change it on purpose add --allow_change {','.join(refused)}, or use "
                    "the same flags to resume")
        raise ConfigError(f"{config.out_dir} holds a run with another config ({diffs}); {hint}")
    return [{"field": k, "old": stored.get(k), "new": current.get(k)} for k in changed]


def check_resumed_computation(config, record):
    """A resumed run must compute the same step: --strategy and --jit_compile may
    change, unless they switch batch statistics between global and per replica.
    `record` is this run's `devices.run_record`."""
    stored = stored_config(config) if config.resume and has_checkpoint(config) else None
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
