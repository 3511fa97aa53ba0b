"""Faster kernels for a network's layers in training, installed on the layer
objects only.

A `Kernel` names a replacement of one method of the layers it `qualifies`: a
function `make(layer)` returns (the method's name, the function to run instead).
`install(network, *kernels)` sets that function as an attribute of each qualifying
layer object of the network (nested models included; one kernel per layer, the
first that qualifies). The layers' class, config and weights stay Keras's: a
saved network is plain Keras and loads without ogan_ign, and `uninstall`
restores Keras's own method. The kernels here:

- ogan_ign.conv_gradient.KERNEL ("as_conv"): a convolution's filter gradient as a
  forward convolution;
- ogan_ign.fused_batchnorm.KERNEL ("fused"): BatchNormalization's training and
  inference as TensorFlow's fused kernel (one op forward, one backward).

Each computes its layer's function; only the order of the sums differs.
"""

import collections
import types

import keras

Kernel = collections.namedtuple("Kernel", "name qualifies make")
"""name: the word of its flag; qualifies(layer) → bool; make(layer) → (method
name, function), the function called as the method would be (without self)."""


def walk(network):
    """Every layer of a Keras model, the layers of nested models included (a
    layer that is no model: itself)."""
    if not isinstance(network, keras.Model):
        yield network
        return
    for layer in network.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from walk(layer)


def _kernel_methods(layer):
    """{method name: kernel name} of the kernels installed on `layer`."""
    return {method: value.ogan_ign_kernel for method, value in vars(layer).items()
            if isinstance(value, types.FunctionType) and hasattr(value, "ogan_ign_kernel")}


def _installed_kernel(layer):
    """The name of the kernel installed on `layer`, or None."""
    return next(iter(_kernel_methods(layer).values()), None)


def install(network, *chosen):
    """Installs each kernel of `chosen` on every layer of `network` it qualifies
    that has no kernel yet; returns how many layers changed. Idempotent."""
    changed = 0
    for layer in walk(network):
        for kernel in chosen:
            if not kernel.qualifies(layer) or _installed_kernel(layer) is not None:
                continue
            method, function = kernel.make(layer)
            function.ogan_ign_kernel = kernel.name
            setattr(layer, method, function)
            changed += 1
    return changed


def uninstall(network, kernel=None):
    """Back to Keras's own methods on every layer `install` changed (only those
    of `kernel`, if given)."""
    for layer in walk(network):
        for method, name in _kernel_methods(layer).items():
            if kernel is None or name == kernel.name:
                delattr(layer, method)


def installed(network, kernel=None):
    """The number of layers of `network` that run an installed kernel (`kernel`'s,
    if given)."""
    names = [_installed_kernel(layer) for layer in walk(network)]
    return sum(1 for n in names if n is not None and (kernel is None or n == kernel.name))
