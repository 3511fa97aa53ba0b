"""Section `precision`: a few bf16 and fp16 steps of each model (the models'
default optimizers, so fp16 runs with Keras's dynamic loss scale); losses and
weights must stay finite."""

import numpy as np
import tensorflow as tf

from gpu_check.equality import data_shape, small_model
from gpu_check.presets import MODELS
from gpu_check.reference import max_difference
from ogan_ign import training


def steps(kind, policy, preset, x):
    """One row: fit() of a fresh small model on x under `policy`."""
    with training.precision_policy(policy):
        model = small_model(kind, preset)
        model.compile(jit_compile=False)  # the models' default optimizers
    before = [np.array(w) for w in model.trainable_weights]
    logs = model.fit(tf.data.Dataset.from_tensor_slices(x.astype("float32")).batch(8),
                     verbose=0).history
    after = [np.array(w) for w in model.trainable_weights]
    finite = (all(np.isfinite(v).all() for v in logs.values())
              and all(np.isfinite(w).all() for w in after))
    scale = getattr(model.optimizer, "dynamic_scale", None)
    return {"model": kind, "precision": policy, "finite": finite,
            "moved": max_difference(after, before) > 0,
            "loss": float(logs["loss/total"][-1]),
            "loss_scale": None if scale is None else float(np.asarray(scale))}


def precision(run):
    preset = run.preset
    x = np.random.default_rng(0).uniform(-1, 1, (8 * preset.precision_steps,)
                                         + data_shape(preset))
    rows = []
    for policy in ("bf16", "fp16"):
        for kind in MODELS:
            rows.append(steps(kind, policy, preset, x))
            run.check("precision", f"{kind} {policy} steps finite", rows[-1]["finite"],
                      loss=rows[-1]["loss"])
    return {"rows": rows, "steps": preset.precision_steps}
