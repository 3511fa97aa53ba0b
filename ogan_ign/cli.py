"""The command line of the training scripts: flags → `training.Config` → one call.

A script defines the common flags and its model's settings flags, then calls
`train_or_exit`:

    from absl import app
    from ogan_ign import cli

    cli.define_common_flags(out_dir="runs/ogan")           # the script's own defaults
    cli.define_settings_flags(OGANRun)                     # one flag per dataclass field

    def main(argv):
        config = cli.main_config(argv, OGANRun)
        cli.train_or_exit(config, build_model, figures=figures)

A settings dataclass (`settings.hparam` fields) holds each hyper-parameter's one
default and help; its flag is defined from it. Values are checked once, by
`training.validate`, `data.resolve` and the model's constructor, so a script and
a direct library call fail alike: one line on stderr (`error: ...`), exit status
2, before any file is written; a run that diverges exits with status 3.
"""

import contextlib
import dataclasses
import os
import sys
import time
import typing

from absl import app
from absl import flags
from absl import logging

from ogan_ign import data, evaluation, training
from ogan_ign.settings import help_of

NONE_WORDS = ("none", "off", "")

COMMON_FLAGS = tuple(f.name for f in dataclasses.fields(training.Config) if f.name != "model")


def define_common_flags(flag_values=flags.FLAGS, **defaults):
    """Defines a flag for every `training.Config` field on `flag_values`; `defaults`
    are the script's own (e.g. dataset="fashion_mnist", out_dir="runs/ign")."""
    define_settings_flags(training.Config, flag_values, exclude=("model",), **defaults)


def _optional_base(kind):
    """(True, T) for Optional[T], else (False, kind)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) is typing.Union and type(None) in args:
        return True, next(a for a in args if a is not type(None))
    return False, kind


def define_settings_flags(settings_class, flag_values=flags.FLAGS, exclude=(), **defaults):
    """A flag for every field of a settings dataclass, with the field's default and
    help; `defaults` are the script's own choices where they differ (say why in
    the script). An Optional field takes 'none'."""
    for field in dataclasses.fields(settings_class):
        if field.name in exclude:
            continue
        default = defaults.pop(field.name, field.default)
        optional, kind = _optional_base(field.type)
        if optional:
            flags.DEFINE_string(field.name, "none" if default is None else str(default),
                                help_of(field) + " ('none': unset)", flag_values=flag_values)
            continue
        define = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                  float: flags.DEFINE_float, str: flags.DEFINE_string}[kind]
        define(field.name, default, help_of(field), flag_values=flag_values)
    if defaults:
        raise TypeError(f"{settings_class.__name__} has no field {', '.join(sorted(defaults))}")


def settings_from_flags(settings_class, flag_values=flags.FLAGS, exclude=()):
    """The settings dataclass of the parsed flags ('none' → None for Optional fields)."""
    values = {}
    for field in dataclasses.fields(settings_class):
        if field.name in exclude:
            continue
        value = flag_values[field.name].value
        optional, kind = _optional_base(field.type)
        if optional:
            if str(value).strip().lower() in NONE_WORDS:
                value = None
            else:
                try:
                    value = kind(value)
                except ValueError:
                    raise training.ConfigError(f"--{field.name} must be a {kind.__name__} or "
                                               f"'none', got {value!r}") from None
        values[field.name] = value
    return settings_class(**values)


def config_from_flags(flag_values=flags.FLAGS, model=None):
    """The training.Config of the parsed common flags; `model` holds the script's
    own hyper-parameters (a frozen settings dataclass)."""
    values = dataclasses.asdict(settings_from_flags(training.Config, flag_values,
                                                    exclude=("model",)))
    return training.Config(**{**values, "model": model})


def main_config(argv, settings_class, flag_values=flags.FLAGS):
    """The run's Config from the parsed flags, or one line on stderr and exit 2."""
    with user_errors():
        if len(argv) > 1:
            raise training.ConfigError(f"unexpected arguments: {' '.join(argv[1:])} "
                                       "(flags are written --name=value)")
        return config_from_flags(flag_values, settings_from_flags(settings_class, flag_values))


@contextlib.contextmanager
def user_errors():
    """A user's mistake (exit status 2) or a diverged run (3) as one line on
    stderr instead of a traceback; for everything a script does around training."""
    try:
        yield
    except (training.ConfigError, data.DataError, evaluation.EvaluationError,
            training.TrainingDiverged) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2 if not isinstance(e, training.TrainingDiverged) else 3)


def train_or_exit(config, build_model, figures=None, callbacks=()):
    """training.train, with a user's mistake or a diverged run as one line on stderr."""
    if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
        # TensorFlow logs a line at INFO for every checkpoint it writes.
        logging.set_verbosity(logging.WARNING)
    with user_errors():
        return training.train(config, build_model, figures=figures, callbacks=callbacks)


class _Run:
    model = None
    metrics = None


@contextlib.contextmanager
def timed_run(config):
    """Times a script's training and final metrics; at the end merges
    {"steps", "wall_seconds", **run.metrics} into the run's metrics.json (keys
    other tools wrote there, such as evaluate.py's, stay) and prints it."""
    run, start = _Run(), time.perf_counter()
    yield run
    metrics = {"steps": int(run.model.optimizer.iterations),
               "wall_seconds": round(time.perf_counter() - start, 1), **(run.metrics or {})}
    training.merge_json(os.path.join(config.out_dir, "metrics.json"), metrics)
    print(" ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)
