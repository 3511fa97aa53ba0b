"""Hyper-parameters with one home: a frozen dataclass field holds the default and
the help text. Model constructors take their defaults from these fields, and the
scripts define their flags from them (`ogan_ign.cli.define_settings_flags`)."""

import dataclasses


def hparam(default, help, choices=None, minimum=None,  # pylint: disable=redefined-builtin
           resumable=False):
    """A dataclass field with its help text (and, for a string, the values it may
    take; for a number, the least it may be: its flag refuses any other when
    parsed, before any work). A setting that is `resumable` changes how a run is
    watched, placed or sampled, not what a step computes: a resumed run may change
    it (`training.config.check_run_dir`)."""
    metadata = {"help": help}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    if minimum is not None:
        metadata["minimum"] = minimum
    if resumable:
        metadata["resumable"] = True
    return dataclasses.field(default=default, metadata=metadata)


def resumable_names(settings_class):
    """The names of `settings_class`'s fields marked `resumable` (`hparam`)."""
    return [f.name for f in dataclasses.fields(settings_class) if f.metadata.get("resumable")]


def help_of(field):
    return field.metadata.get("help", field.name)


def subset(settings, cls):
    """The values of `settings` (a dataclass) that are fields of `cls`, as a dict."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in dataclasses.asdict(settings).items() if k in names}
