"""Shared by the benchmarks: multiply-add counts of the conv and dense layers,
the machine's load (printed before and after a run, to judge its figures), a
switch that runs the networks' BatchNorm on TensorFlow's fused kernel, and
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
    """`fused`: every Keras BatchNormalization traced inside runs networks.BatchNorm's
    fused kernel where it can; `keras`: Keras's own ops (what the networks use)."""
    if kind == "keras":
        yield
        return
    keras_call = layers.BatchNormalization.call
    fusable = networks.BatchNorm._fusable  # pylint: disable=protected-access

    def fused_call(self, inputs, training=None, mask=None):
        if fusable(self, inputs, mask):  # BatchNorm.call takes its fused path
            return networks.BatchNorm.call(self, inputs, training=training, mask=mask)
        return keras_call(self, inputs, training=training, mask=mask)

    layers.BatchNormalization._fusable = fusable  # pylint: disable=protected-access
    layers.BatchNormalization.call = fused_call
    try:
        yield
    finally:
        layers.BatchNormalization.call = keras_call
        del layers.BatchNormalization._fusable  # pylint: disable=protected-access


def define_list(name, default, choices, help):
    """A comma-separated string flag whose items must be among `choices`: a typo
    stops the benchmark with one line instead of timing (and labelling) the
    wrong thing."""
    flags.DEFINE_string(name, default, f"{help} (comma-separated: {', '.join(choices)})")
    flags.register_validator(
        name, lambda value: bool(value) and set(value.split(",")) <= set(choices),
        message=f"--{name} takes a comma-separated list of {', '.join(choices)}")
