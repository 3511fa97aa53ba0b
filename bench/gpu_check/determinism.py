"""Section `determinism`: with tf.config.experimental.enable_op_determinism(),
img/s without and with it (same process, measured just before and after), and
a resume check through the library's own driver (training.train on
Fashion-MNIST): N steps in one go against a copy of that run cut after its
checkpoint at N/2 and resumed by a new model to N; every weight must be equal
bit for bit. It runs after `speed`, in the same process: op determinism cannot
be undone."""

import glob
import os
import shutil

import keras
import tensorflow as tf

from gpu_check.environment import jit_under
from gpu_check.reference import max_difference
from gpu_check.speed import prepare, release, time_settings
from ogan_ign import ign, networks, training


def resume_model(width):
    def build(config, spec):
        # training.train compiles it with IGN.default_optimizer(), the paper's Adam.
        return ign.IGN(networks.dcgan_autoencoder(spec.image_size, spec.channels, latent=64,
                                                  width=width), noise="gaussian")
    return build


def resume_config(folder, steps, preset):
    return training.Config(dataset="fashion_mnist", out_dir=folder, steps=steps,
                           batch_size=preset.resume_batch, ckpt_every=preset.resume_steps // 2,
                           log_every=preset.resume_steps // 2, sample_every=0, num_samples=8,
                           strategy="default")


class Restored(keras.callbacks.Callback):
    """The step and weights a run starts fit() from (after its restore)."""

    def on_train_begin(self, logs=None):
        self.step = training.global_step(self.model)
        self.weights = self.model.get_weights()


def cut_after_checkpoint(source, target, step):
    """A copy of run folder `source` as a run killed right after its checkpoint
    at `step`: its config and that checkpoint only."""
    checkpoints = os.path.join(target, "checkpoints")
    os.makedirs(checkpoints)
    shutil.copy(os.path.join(source, "config.json"), target)
    for path in glob.glob(os.path.join(source, "checkpoints", f"ckpt-{step}.*")):
        shutil.copy(path, checkpoints)
    tf.compat.v1.train.update_checkpoint_state(checkpoints, os.path.join(checkpoints,
                                                                         f"ckpt-{step}"))


def rates(run):
    """img/s of each determinism model on one device, XLA off, fp32."""
    preset = run.preset
    prepared = {kind: prepare(kind, preset.determinism_size, ("off", "fp32"),
                              run.devices["one"], preset.speed_batch)
                for kind in preset.determinism_models}
    timed = time_settings(prepared, preset.speed_steps, preset.speed_rounds)
    del prepared
    release()
    return {kind: value[0] for kind, value in timed.items()}


def resume(run):
    """Records the resume check; returns its part of the section's result."""
    preset, n = run.preset, run.preset.resume_steps
    base = os.path.join(run.out, "resume")
    shutil.rmtree(base, ignore_errors=True)
    build = resume_model(preset.resume_width)
    whole_dir, resumed_dir = os.path.join(base, "whole"), os.path.join(base, "resumed")
    whole = training.train(resume_config(whole_dir, n, preset), build)
    cut_after_checkpoint(whole_dir, resumed_dir, n // 2)
    restored = Restored()
    resumed = training.train(resume_config(resumed_dir, n, preset), build, callbacks=[restored])
    difference = max_difference(resumed.get_weights(), whole.get_weights())
    moved = max_difference(whole.get_weights(), restored.weights)
    steps = [restored.step, training.global_step(whole), training.global_step(resumed)]
    run.check("determinism", f"resume exact: {n} steps vs {n // 2} + restore + {n - n // 2}",
              difference == 0 and moved > 0 and steps == [n // 2, n, n], value=difference,
              limit=0.0, second_half_moved=moved, steps=steps)
    return {"steps": n, "model": f"IGN, DCGAN autoencoder width {preset.resume_width}",
            "data": "fashion_mnist 32 px", "batch": preset.resume_batch,
            "precision": training.resolve_precision("auto")[0],
            "max_difference": difference, "second_half_moved": moved,
            "restored_step": restored.step}


def determinism(run):
    without = rates(run)
    tf.config.experimental.enable_op_determinism()
    resumed = resume(run)
    with_ = rates(run)  # after the resume check: a GPU op without a deterministic kernel fails here
    cost = [{"model": k, "img_per_s_without": without[k], "img_per_s_with": with_[k],
             "with_over_without": with_[k] / without[k]} for k in without]
    return {"cost": cost, "size": run.preset.determinism_size, "batch": run.preset.speed_batch,
            "setting": "one device, XLA off, fp32",
            "jit_compile_auto_with_determinism": jit_under(None), "resume": resumed}
