"""The command line of the training scripts: flags → `training.Config` → one call.

A script defines the common flags and its model's settings flags, then calls
`train_or_exit` (or `training_run`, when it computes final metrics after
training), and starts through `cli.run` (absl's app.run with one-line flag
errors):

    from ogan_ign import cli

    cli.define_common_flags(out_dir="runs/ogan")           # the script's own defaults
    cli.define_settings_flags(OGANRun)                     # one flag per dataclass field

    def main(argv):
        config = cli.main_config(argv, OGANRun)
        cli.train_or_exit(config, build_model, figures=figures)

    if __name__ == "__main__":
        cli.run(main)

A settings dataclass (`settings.hparam` fields) holds each hyper-parameter's one
default and help; its flag is defined from it. Values are checked once, by
`training.validate`, `data.resolve` and the model's constructor, so a script and
a direct library call fail alike: one line on stderr (`error: ...`), exit status
2, before any file is written — flag syntax errors included (`cli.run`). Exit
status 2 also ends a run whose folder cannot be written (disk full, no
permission: the line says which checkpoint stays intact) or is in use by another
run (the line names its PID); 3 a run that diverges (the line says how to
resume with a lower --lr); 0 a run that was already complete (nothing is touched).
`--help` (-h, --helpshort) lists the script's flags grouped by job (`HELP_GROUPS`)
and exits 0; --helpfull adds absl's and TensorFlow's.
"""

import contextlib
import dataclasses
import json
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

# The one place that files each flag under a job: --help lists a script's flags
# under these headings, in this order. A flag no heading names is the model's, a
# field of the script's settings class (evaluate.py's model: what it scores).
HELP_GROUPS = {
    "data": ("dataset", "data_dir", "image_size", "channels", "cache_dir"),
    "model": ("run_dir", "model", "floor"),
    "training": ("steps", "batch_size", "lr", "lr_decay", "ema", "seed", "resume", "allow_change"),
    "devices": ("strategy", "jit_compile", "mixed_precision", "filter_gradient",
                "batchnorm"),
    "output": ("out_dir", "sample_every", "ckpt_every", "log_every", "num_samples", "output",
               "standing_stats"),
    "evaluation": ("probe_examples", "probe", "coverage_samples", "coverage_every", "classifier",
                   "num_real", "features", "inception_weights", "k", "kid_subsets",
                   "kid_subset_size"),
}


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


def define_settings_flags(settings_class, flag_values=flags.FLAGS, exclude=(), include=None,
                          **defaults):
    """A flag for every field of a settings dataclass (but `exclude`; only `include`
    when given), with the field's default and help; `defaults` are the script's own
    choices where they differ (say why in the script). An Optional field takes 'none'."""
    for field in dataclasses.fields(settings_class):
        if field.name in exclude or (include is not None and field.name not in include):
            continue
        default = defaults.pop(field.name, field.default)
        optional, kind = _optional_base(field.type)
        if optional:
            flags.DEFINE_string(field.name, "none" if default is None else str(default),
                                help_of(field) + " ('none': unset)", flag_values=flag_values)
            continue  # its choices, if any, are checked by settings_from_flags
        if "choices" in field.metadata:
            flags.DEFINE_enum(field.name, default, field.metadata["choices"], help_of(field),
                              flag_values=flag_values)
            continue
        if "minimum" in field.metadata:
            define = {int: flags.DEFINE_integer, float: flags.DEFINE_float}[kind]
            define(field.name, default, help_of(field), lower_bound=field.metadata["minimum"],
                   flag_values=flag_values)
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
                    word = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
                    raise training.ConfigError(f"--{field.name} must be {word} or 'none', "
                                               f"got {value!r}") from None
                choices = field.metadata.get("choices")
                if choices and value not in choices:
                    raise training.ConfigError(f"--{field.name} must be one of "
                                               f"{', '.join(choices)} or 'none', got {value!r}")
        values[field.name] = value
    return settings_class(**values)


def config_from_flags(flag_values=flags.FLAGS, model=None):
    """The training.Config of the parsed common flags; `model` holds the script's
    own hyper-parameters (a frozen settings dataclass)."""
    values = dataclasses.asdict(settings_from_flags(training.Config, flag_values,
                                                    exclude=("model",)))
    return training.Config(**{**values, "model": model})


def main_config(argv, settings_class, flag_values=flags.FLAGS):
    """The run's Config from the parsed flags, or one line on stderr and exit 2
    (an unusable --out_dir included, before anything is built)."""
    with user_errors():
        if len(argv) > 1:
            raise training.ConfigError(f"unexpected arguments: {' '.join(argv[1:])} "
                                       "(flags are written --name=value)")
        config = config_from_flags(flag_values, settings_from_flags(settings_class, flag_values))
        training.check_out_dir(config.out_dir)
        return config


def one_line(error):
    """An exception's message on one line."""
    return " ".join(str(error).split()) or type(error).__name__


def script_flags(flag_values=flags.FLAGS, script=None):
    """The flags the running script (`script`: its module name, absl's sys.argv[0])
    and ogan_ign define; not those of absl or TensorFlow."""
    script = script or sys.argv[0]
    owners = {name: flag_values.find_module_defining_flag(name, "") for name in flag_values}
    return [flag_values[name] for name, owner in owners.items()
            if owner == script or owner.split(".")[0] == "ogan_ign"]


def describe(flag):
    """One flag's help, absl's layout: `--name: help` then its default."""
    name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
    text = flags.text_wrap(f"{name}: {flag.help}", indent="    ", firstline_indent="  ")
    if flag.default is not None:
        text += f"\n    (default: {flag.default_as_str})"
    return text


def help_text(flag_values=flags.FLAGS, doc=None):
    """`doc` (the script's docstring), then the script's flags under the
    headings of HELP_GROUPS; a flag no heading names is its model's."""
    own = {flag.name: flag for flag in script_flags(flag_values)}
    named = {name for names in HELP_GROUPS.values() for name in names}
    sections = []
    for group, names in HELP_GROUPS.items():
        listed = [own[name] for name in names if name in own]
        if group == "model":  # then the settings' fields, in their order
            listed += [flag for name, flag in own.items() if name not in named]
        if listed:
            sections.append(f"{group}:\n" + "\n".join(describe(flag) for flag in listed))
    footer = "--flagfile=FILE reads flags from FILE; --helpfull lists absl's flags too."
    return "\n\n".join(([doc.strip()] if doc else []) + sections + [footer])


def parse_flags(argv, flag_values=flags.FLAGS):
    """absl's parse with a flag error as one line `error: …` on stderr, exit 2
    (absl's own prints the usage and exits 1); returns the remaining argv.
    -h, --help and --helpshort print `help_text` and --helpfull absl's list of
    every flag, on stdout, and exit 0."""
    words = [w.lstrip("-") for w in (argv[1:argv.index("--")] if "--" in argv else argv[1:])
             if w.startswith("-")]
    if any(word in ("h", "help", "helpshort", "?") for word in words):
        print(help_text(flag_values, sys.modules["__main__"].__doc__), flush=True)
        sys.exit(0)
    if "helpfull" in words:
        app.usage(writeto_stdout=True)
        sys.exit(0)
    try:
        return flag_values(argv)
    except flags.Error as e:
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(2)


def run(main):
    """app.run(main) with one-line flag errors and grouped help (`parse_flags`):
    every script's entry."""
    app.run(main, flags_parser=parse_flags)


@contextlib.contextmanager
def user_errors():
    """A user's mistake (exit status 2) or a diverged run (3) as one line on
    stderr instead of a traceback; for everything a script does around training."""
    try:
        yield
    except training.RunComplete as e:
        print(e, flush=True)
        sys.exit(0)
    except (training.ConfigError, data.DataError, evaluation.EvaluationError,
            training.TrainingDiverged) as e:
        print(f"error: {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(2 if not isinstance(e, training.TrainingDiverged) else 3)


def quiet_checkpoint_logs():
    if "verbosity" in flags.FLAGS and not flags.FLAGS["verbosity"].present:
        # TensorFlow logs a line at INFO for every checkpoint it writes.
        logging.set_verbosity(logging.WARNING)


def train_or_exit(config, build_model, figures=None, callbacks=()):
    """training.train, with a user's mistake or a diverged run as one line on
    stderr; a run already complete says so and exits 0 (nothing is written)."""
    quiet_checkpoint_logs()
    with user_errors():
        return training.train(config, build_model, figures=figures, callbacks=callbacks)


@dataclasses.dataclass
class ScriptRun:
    """What `training_run` yields: the trained `model`; the body sets `metrics`."""

    model: typing.Any
    metrics: dict = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def training_run(config, build_model, figures=None, callbacks=(), catalog=None):
    """`train_or_exit` for a script with final metrics: yields a `ScriptRun`
    once training is done; the body computes `run.metrics`, and
    {"steps", "wall_seconds", **run.metrics} is merged into the run's
    metrics.json while the run folder is still locked (its last write: keys
    other tools wrote there, such as evaluate.py's "evaluation", stay), then
    printed. A run extended with a larger --steps adds its time to the stored
    wall_seconds. Nothing is written when the body raises; a user's mistake in
    it is one line on stderr, as in training. `catalog` as in training.train."""
    quiet_checkpoint_logs()
    start = time.perf_counter()
    with user_errors(), training.session(config, build_model, figures, callbacks,
                                         catalog) as trained:
        run = ScriptRun(trained.model)
        yield run
        metrics = {"steps": int(run.model.optimizer.iterations),
                   "wall_seconds": time.perf_counter() - start, **run.metrics}
        metrics["wall_seconds"] = round(metrics["wall_seconds"] + earlier_seconds(
            trained.folder.join("metrics.json"), metrics["steps"]), 1)
        trained.folder.merge_json("metrics.json", metrics)
    print(" ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)


def earlier_seconds(path, steps):
    """The wall time a metrics.json records for fewer than `steps` steps (a run
    now extended), else 0."""
    stored = {}
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
    if isinstance(stored.get("wall_seconds"), (int, float)) \
            and isinstance(stored.get("steps"), int) and stored["steps"] < steps:
        return stored["wall_seconds"]
    return 0.0
