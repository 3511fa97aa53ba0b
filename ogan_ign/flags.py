"""The flags every training script shares, for `training.Config`.

A script defines them, adds its model's own flags, and makes one library call:

    from absl import app, flags
    from ogan_ign import flags as common

    common.define_common_flags(out_dir="runs/ogan", lr=1e-4)   # per-script defaults
    flags.DEFINE_integer("z_dim", 128, "noise size")
    FLAGS = flags.FLAGS

    def main(argv):
        common.no_extra_args(argv)
        config = common.config_from_flags(model=OGANConfig(z_dim=FLAGS.z_dim, ...))
        common.train_or_exit(config, build_model, figures=figures)

    if __name__ == "__main__":
        app.run(main)

Values are checked once, by `training.validate` (and `data.resolve` for the
dataset and size), so a script and a direct library call fail alike: one line on
stderr (`error: ...`), exit status 2, before any file is written; a run that
diverges exits with status 3. absl itself handles `--flagfile` and malformed
numbers.
"""

import contextlib
import sys

from absl import app
from absl import flags
from absl import logging

from ogan_ign import data, training

COMMON_FLAGS = ("dataset", "data_dir", "image_size", "channels", "batch_size", "steps", "lr",
                "out_dir", "seed", "resume", "sample_every", "ckpt_every", "log_every",
                "num_samples", "strategy", "jit_compile", "mixed_precision", "ema")


def define_common_flags(flag_values=flags.FLAGS, **defaults):
    """Defines the common flags on `flag_values`; `defaults` override the
    training.Config defaults (e.g. out_dir="runs/ign", lr=1e-4)."""
    base = training.Config(dataset="", out_dir="runs/run")
    default = {name: defaults.pop(name, getattr(base, name)) for name in COMMON_FLAGS}
    if defaults:
        raise TypeError(f"no common flag named {', '.join(sorted(defaults))}")
    fv = flag_values
    flags.DEFINE_string("dataset", default["dataset"] or None,
                        "fashion_mnist, a TFDS name (celeba_hq, celeb_a, mnist, ...) or a "
                        "folder of images", flag_values=fv)
    flags.DEFINE_string("data_dir", default["data_dir"], "TFDS data_dir (or where the "
                        "Fashion-MNIST IDX files are)", flag_values=fv)
    flags.DEFINE_integer("image_size", default["image_size"], "image side: 28, 32, 64, 128 "
                         "or 256", flag_values=fv)
    flags.DEFINE_integer("channels", default["channels"], "1 or 3; default: the data's own",
                         flag_values=fv)
    flags.DEFINE_integer("batch_size", default["batch_size"], "global batch size, split "
                         "over the replicas", flag_values=fv)
    flags.DEFINE_integer("steps", default["steps"], "training steps in all (a resumed run "
                         "stops at the same total)", flag_values=fv)
    flags.DEFINE_float("lr", default["lr"], "learning rate", flag_values=fv)
    flags.DEFINE_string("out_dir", default["out_dir"], "the run folder: config, checkpoints, "
                        "logs, samples, model.keras", flag_values=fv)
    flags.DEFINE_integer("seed", default["seed"], "seed of the weights, the noise and the "
                         "data order", flag_values=fv)
    flags.DEFINE_boolean("resume", default["resume"], "continue from the last checkpoint in "
                         "--out_dir (--noresume refuses a folder that has one)", flag_values=fv)
    flags.DEFINE_integer("sample_every", default["sample_every"], "steps between sample "
                         "grids (0: only at the end)", flag_values=fv)
    flags.DEFINE_integer("ckpt_every", default["ckpt_every"], "steps between checkpoints",
                         flag_values=fv)
    flags.DEFINE_integer("log_every", default["log_every"], "steps between progress lines",
                         flag_values=fv)
    flags.DEFINE_integer("num_samples", default["num_samples"], "images per sample grid",
                         flag_values=fv)
    flags.DEFINE_string("strategy", default["strategy"], "|".join(training.STRATEGIES) +
                        "; auto = mirrored over the visible GPUs, if any", flag_values=fv)
    flags.DEFINE_string("jit_compile", default["jit_compile"], "|".join(training.JIT_COMPILE) +
                        "; auto lets Keras decide (off on the CPU and under strategies)",
                        flag_values=fv)
    flags.DEFINE_string("mixed_precision", default["mixed_precision"],
                        "|".join(training.PRECISION_CHOICES) + "; auto = bf16 where the "
                        "hardware has native bfloat16 (GPUs of compute capability ≥ 8.0, TPUs, "
                        "CPUs with AVX512-BF16/AMX), else off (float32); the loss math is "
                        "float32 either way", flag_values=fv)
    flags.DEFINE_float("ema", default["ema"], "EMA momentum of the weights (e.g. 0.999); "
                       "0 = off", flag_values=fv)


def config_from_flags(flag_values=flags.FLAGS, model=None):
    """The training.Config of the parsed common flags; `model` holds the script's
    own hyperparameters (a frozen dataclass)."""
    values = {name: flag_values[name].value for name in COMMON_FLAGS}
    values["dataset"] = values["dataset"] or ""
    return training.Config(model=model, **values)


def no_extra_args(argv):
    """Fails on positional arguments (usually a mistyped flag)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")


@contextlib.contextmanager
def user_errors():
    """A user's mistake (exit status 2) or a diverged run (3) as one line on
    stderr instead of a traceback; for everything a script does around training."""
    try:
        yield
    except (training.ConfigError, data.DataError, training.TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2 if not isinstance(e, training.TrainingDiverged) else 3)


def train_or_exit(config, build_model, figures=None, callbacks=()):
    """training.train, with a user's mistake or a diverged run as one line on stderr."""
    if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
        # TensorFlow logs a line at INFO for every checkpoint it writes.
        logging.set_verbosity(logging.WARNING)
    with user_errors():
        return training.train(config, build_model, figures=figures, callbacks=callbacks)
