"""Shared by the benchmarks: multiply-add counts of the conv and dense layers,
the machine's load (printed before and after a run, to judge its figures), and
a switch that puts the library's BatchNorm on Keras's unfused ops, and
comma-list flags checked before any work starts."""

import contextlib

import keras
from absl import flags
from keras import layers

from ogan_ign import networks


def layer_macs(layer):
    """Forward multiply-adds of one Conv2D (out_h·out_w·k²·c_in·c_out),
    Conv2DTranspose (in_h·in_w·k²·c_in·c_out) or Dense (in·out) per image; 0 else."""
    if isinstance(layer, layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        return h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
    if isinstance(layer, layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        return h * w * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] * c_out
    if isinstance(layer, layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def macs(model):
    """Forward multiply-adds of a model's conv and dense layers, per image."""
    return sum(macs(layer) if isinstance(layer, keras.Model) else layer_macs(layer)
               for layer in model.layers)


def load_average():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


@contextlib.contextmanager
def batchnorm_kind(kind):
    """`keras`: the library's BatchNorm takes Keras's unfused path everywhere."""
    if kind == "fused":
        yield
        return
    fusable = networks.BatchNorm._fusable
    networks.BatchNorm._fusable = lambda self, inputs, mask: False
    try:
        yield
    finally:
        networks.BatchNorm._fusable = fusable


def define_list(name, default, choices, help):
    """A comma-separated string flag whose items must be among `choices`: a typo
    stops the benchmark with one line instead of timing (and labelling) the
    wrong thing."""
    flags.DEFINE_string(name, default, f"{help} (comma-separated: {', '.join(choices)})")
    flags.register_validator(
        name, lambda value: bool(value) and set(value.split(",")) <= set(choices),
        message=f"--{name} takes a comma-separated list of {', '.join(choices)}")
