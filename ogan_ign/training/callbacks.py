"""The callbacks a run trains with, and the TensorBoard writer they share.

LearningRate (with --lr_decay: sets each step's learning rate), Progress (stops
at --steps and on NaN/Inf, prints and logs the metrics), Samples (sample grids
from fixed noise and the model's figures) and Checkpoints (saves, never
non-finite weights). The driver runs them in that order, checkpoints last,
so a kill while saving checkpoint N finds step N's samples and metrics written.
"""

import contextlib
import dataclasses
import math
import os
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import averaging, images, standing
from ogan_ign.training.run_folder import RunFolderError, remove_uncommitted_checkpoints, writing


class TrainingDiverged(RuntimeError):
    """A loss or a weight became NaN or Inf; the last good checkpoint is kept.
    Raised naming what diverged; `train` adds what to do (`diverged_advice`)."""


@dataclasses.dataclass(frozen=True)
class Fixed:
    """What `figures` gets besides the model: fixed real images and a noise seed."""

    x_real: np.ndarray
    seed: int


class Summaries:
    """TensorBoard events in `logdir` through tf.summary, with the interface of a
    tf.summary writer (`as_default`, `flush`). The events file is created when
    the first value is written, so a run that logs nothing (a finished run
    started again) adds no empty file."""

    def __init__(self, logdir):
        self.logdir, self.writer = logdir, None

    @contextlib.contextmanager
    def as_default(self, step=None):
        if self.writer is None:
            self.writer = tf.summary.create_file_writer(self.logdir)
        with self.writer.as_default(step=step):
            yield self

    def flush(self):
        if self.writer is not None:
            self.writer.flush()


def write_scalar(name, value, step):
    """A TensorBoard scalar (inside a writer's `as_default()`)."""
    tf.summary.scalar(name, float(value), step=step)


def write_image(name, picture, step):
    """A TensorBoard image from a uint8 (H, W, C) picture (inside a writer's
    `as_default()`)."""
    tf.summary.image(name, np.asarray(picture, np.uint8)[None], step=step)


def global_step(model):
    """The optimizer's step counter as an int (a MirroredVariable under a strategy)."""
    return int(to_numpy(model.optimizer.iterations))


def to_numpy(variable):
    """A variable's value, also for the MirroredVariable inside a Keras variable."""
    return tf.convert_to_tensor(variable).numpy()


def scalar(value):
    """A log value as a float (multi-worker logs are rank 1, see
    one_loss.OneLossModel.update_trackers)."""
    return float(np.mean(np.asarray(value, dtype=np.float64)))


def duration(seconds):
    """A duration for progress lines: 42s, 3m05s, 1h02m."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m"


def decayed_lr(lr, steps, decay, step):
    """The learning rate of step `step` (0-based: the step about to be taken) of
    a `steps`-step run whose last `decay`·steps steps fall linearly to 0:

        lr · min(1, (steps − step) / (decay · steps))

    lr itself while step ≤ (1 − decay)·steps, lr / (decay·steps) at the last step;
    decay 0: lr throughout."""
    if decay <= 0:
        return lr
    return lr * min(1.0, max(steps - step, 0) / (decay * steps))


class LearningRate(keras.callbacks.Callback):
    """Sets `optimizer`'s learning rate before every step to `decayed_lr` of the
    step the optimizer is at (--lr_decay). The step is the optimizer's counter,
    restored with the checkpoint, so a resumed run takes the rates of the
    uninterrupted one."""

    def __init__(self, config, optimizer):
        super().__init__()
        self.config, self.optimizer = config, optimizer

    def on_train_batch_begin(self, batch, logs=None):
        config = self.config
        self.optimizer.learning_rate = decayed_lr(
            config.lr, config.steps, config.lr_decay, global_step(self.model))


class Progress(keras.callbacks.Callback):
    """Stops at `steps`, stops on NaN/Inf, prints and logs the metrics.

    A line: step, time since this process began training, the remaining time
    at the rate since the first step, images per second over the steps since
    the last line, then the metrics. The first step of a process (tracing and
    compiling) is left out of every rate: the first line's rate starts after it.
    The metrics are means over the steps since the last line: Keras's trackers
    are reset after each line, so a NaN shows at the step it happens.
    """

    def __init__(self, config, writer, chief, start_step, clock=time.perf_counter):
        super().__init__()
        self.config, self.writer, self.chief, self.clock = config, writer, chief, clock
        self.start_step, self.start_time = start_step, clock()
        self.warm = None          # (step, time) at the end of the first step
        self.last = None          # (step, time) of the last line, or of the first step

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        values = {name: scalar(value) for name, value in (logs or {}).items()}
        for name, value in values.items():
            if not math.isfinite(value):
                self.model.stop_training = True
                raise TrainingDiverged(f"{name} is {value} at step {step}")
        if self.warm is None:
            self.warm = self.last = (step, self.clock())
        if step % self.config.log_every == 0 or step >= self.config.steps:
            self.report(step, values)
        if step >= self.config.steps:
            self.model.stop_training = True

    def timing(self, step):
        """(elapsed s, remaining s or None, img/s since the last line or None)."""
        now = self.clock()
        (warm_step, warm_time), (last_step, last_time) = self.warm, self.last
        rate = remaining = None
        if step > last_step and now > last_time:
            rate = (step - last_step) * self.config.batch_size / (now - last_time)
        if step > warm_step and now > warm_time:
            remaining = (self.config.steps - step) * (now - warm_time) / (step - warm_step)
        self.last = (step, now)
        return now - self.start_time, remaining, rate

    def report(self, step, values):
        elapsed, remaining, rate = self.timing(step)
        if self.chief:
            shown = "  ".join(f"{name} {value:.4g}" for name, value in values.items())
            eta = "" if remaining is None or step >= self.config.steps \
                else f", ETA {duration(remaining)}"
            speed = "compiling" if rate is None else f"{rate:.1f} img/s"
            print(f"step {step}/{self.config.steps}  {duration(elapsed)}{eta}  {speed}  {shown}",
                  flush=True)
            with self.writer.as_default():
                for name, value in values.items():
                    write_scalar(name, value, step)
                if rate is not None:
                    write_scalar("perf/images_per_second", rate, step)
            self.writer.flush()
        for metric in self.model.metrics:
            metric.reset_state()


class Checkpoints(keras.callbacks.Callback):
    """Saves every `ckpt_every` steps and at the last step, never non-finite weights.

    The driver runs it last, after the samples and any other callback, so a run
    killed while saving a checkpoint has already written that step's figures and
    metrics; the resumed run writes them again (identical: a function of the step).
    """

    def __init__(self, config, manager, worker_manager=None):
        super().__init__()
        self.config, self.manager, self.worker_manager = config, manager, worker_manager

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if step % self.config.ckpt_every == 0 or step >= self.config.steps:
            save_checkpoint(self.model, self.manager, step, self.worker_manager)


def save_checkpoint(model, manager, step, worker_manager=None):
    """Saves checkpoint `step`; TrainingDiverged for a non-finite weight,
    RunFolderError when the disk is full or not writable (the checkpoint's
    uncommitted files are removed, the previous checkpoint stays the latest)."""
    for variable in model.weights:
        if not np.all(np.isfinite(to_numpy(variable))):
            raise TrainingDiverged(f"weight {variable.path} is not finite at step {step}")
    try:
        with writing(f"checkpoint {step} in {manager.directory}"):
            if worker_manager is None:
                manager.save(checkpoint_number=step)
            else:
                # Every worker takes part in a multi-worker save (reads may be
                # collective); only the chief's copy is kept.
                worker_manager.save(checkpoint_number=step)
                shutil.rmtree(worker_manager.directory, ignore_errors=True)
    except RunFolderError:
        remove_uncommitted_checkpoints(manager.directory)
        raise


class Samples(keras.callbacks.Callback):
    """Sample grids from fixed noise and the model's own `figures`, every
    `sample_every` steps and at the last, with the averaged weights in when
    there is an `average`. With --standing_stats the grid is sampled as the
    export samples: standing statistics of the sampler over that many batches of
    --batch_size noise seeded by --seed (the model's own statistics are back
    after it), so the last grid is what model.keras generates. The figures keep
    the moving statistics."""

    def __init__(self, config, writer, fixed, figures=None, average=None):
        super().__init__()
        self.config, self.run_dir, self.writer = config, config.out_dir, writer
        self.fixed, self.figures, self.average = fixed, figures, average

    def due(self, step):
        every = self.config.sample_every
        return bool((every and step % every == 0) or step >= self.config.steps)

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if self.due(step):
            self.write(model=self.model, step=step)

    def write(self, model, step):
        """The sample grid of `step` (and the figures); RunFolderError when it
        cannot be written."""
        with writing(f"the samples of step {step} in {self.run_dir}"), \
                averaging.swapped_in(self.average):
            config = self.config
            with standing.standing(model, config.standing_stats, config.batch_size,
                                   seed=config.seed):
                x = np.asarray(model.generate(len(self.fixed.x_real), seed=self.fixed.seed),
                               np.float32)
            path = images.save_grid(samples_path(self.run_dir, step), x)
            picture = images.table(images.grid(x))
            picture = picture[..., None] if picture.ndim == 2 else picture
            with self.writer.as_default():
                write_image("samples", picture, step)
            if self.figures is not None:
                self.figures(model, self.run_dir, step, self.fixed)
        return path


def samples_path(run_dir, step):
    return os.path.join(run_dir, "samples", f"{step:08d}.png")
