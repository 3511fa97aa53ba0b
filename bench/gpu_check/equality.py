"""Section `equality`: one training step on two replicas equals the one-device
step, for SingleLossGAN, O-GAN and IGN, XLA off and on, in float64 with SGD.

The references (reference.py): XLA off, the plain step on the global batch
(BatchNorm synchronized across replicas); XLA on, the "ghost batch" step (each
replica's half of the batch: gradients and new BatchNorm statistics averaged).
Tolerances: ATOL with XLA off, ATOL_XLA with XLA on (XLA's kernels differ
slightly from TensorFlow's). A check also fails when it could not have failed:
the step must move a weight by more than MIN_STEP and the two references must
differ by more than MIN_GAP.
"""

import dataclasses

import keras
import numpy as np

from gpu_check import reference
from gpu_check.presets import MODELS
from gpu_check.reference import dense_net
from ogan_ign import gan, ign, networks, ogan

LR = 2.0 ** -5       # SGD step; exact in float32, as Keras keeps it
ATOL = 1e-9          # equality, XLA off
ATOL_XLA = 1e-7      # equality, XLA on
MIN_STEP = 1e-3      # the step must move a weight by more than this …
MIN_GAP = 1e-4       # … and the two BatchNorm semantics must differ by more than this


def small_model(kind, preset):
    """A small model of each kind: the library's DCGAN nets at the preset's size
    and width, or (dense) nets on 6-d data with 4-d noise."""
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


def data_shape(preset):
    """The shape of one example of the check nets' data."""
    return (6,) if preset.check_net == "dense" else (preset.check_size, preset.check_size, 1)


def check_batch(kind, preset):
    """(x, z) of the global batch, its two halves different (reference.halves_batch)."""
    shape = data_shape(preset)
    return reference.halves_batch(preset.check_batch, shape, shape if kind == "ign" else (4,))


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The weights after the distributed step against their reference, and
    whether the check could have failed: `step`, the largest weight change of
    the reference step, and `gap`, the largest difference between the two
    references."""

    got: list
    want: list
    tolerance: float
    step: float
    gap: float
    agree: bool = True       # every replica holds the same weights
    finite: bool = True      # the step's logs


def equality_check(run, name, comparison):
    """Records one equality check: `got` within `tolerance` of `want`, every
    replica equal, finite logs, step > MIN_STEP and gap > MIN_GAP."""
    c = comparison
    difference = reference.max_difference(c.got, c.want)
    passed = (difference < c.tolerance and c.agree and c.finite and c.step > MIN_STEP
              and c.gap > MIN_GAP)
    return run.check("equality", name, passed, value=difference, limit=c.tolerance,
                     step=c.step, reference_gap=c.gap, replicas_agree=c.agree, finite=c.finite)


def equality(run):
    preset, devices = run.preset, run.devices["pair"]
    if len(devices) < 2:
        raise RuntimeError(f"two devices needed, found {devices}")
    for kind in MODELS:
        def make():
            with reference.float64():
                return small_model(kind, preset)

        x, z = check_batch(kind, preset)
        start = make().get_weights()
        plain = reference.reference_step(make, x, z, 1, LR)
        ghost = reference.reference_step(make, x, z, 2, LR)
        step, gap = reference.max_difference(plain, start), reference.max_difference(plain, ghost)
        for xla in (False, True):
            model, logs = reference.mirrored_fit(make, reference.dataset(x, z), devices, LR, xla)
            want = [w + preset.mismatch for w in (ghost if xla else plain)]
            equality_check(run, f"{kind} XLA {'on' if xla else 'off'}", Comparison(
                model.get_weights(), want, ATOL_XLA if xla else ATOL, step, gap,
                reference.replicas_agree(model, len(devices)),
                all(np.isfinite(v).all() for v in logs.values())))
            del model
    return {"devices": devices, "net": preset.check_net, "dtype": "float64",
            "batch": preset.check_batch}
