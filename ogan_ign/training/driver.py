"""The driver: `train(config, build_model)` turns a Config into a resumable run.

See the package's docstring (`ogan_ign.training`) for the run folder, the
contract of `build_model` and `figures`, and what resume guarantees.
"""

import contextlib
import os
import time

import keras
import tensorflow as tf

from ogan_ign import averaging, data, images
from ogan_ign.training import callbacks as cb
from ogan_ign.training import config as cfg
from ogan_ign.training import devices
from ogan_ign.training import run_folder as rf
from ogan_ign.training.callbacks import (Checkpoints, Fixed, Progress, Samples, Summaries,
                                         TrainingDiverged, global_step, samples_path,
                                         write_samples)
from ogan_ign.training.config import ConfigError, JIT_COMPILE
from ogan_ign.training.run_folder import LOCK_FILE, RunFolderError, checkpoint_step, writing

KEEP_CHECKPOINTS = 3


class RunComplete(Exception):
    """The run in `out_dir` already reached --steps: nothing was done or written."""

    def __init__(self, out_dir, step):
        super().__init__(f"run complete at step {step} in {out_dir} (raise --steps to continue)")
        self.out_dir, self.step = out_dir, step


def configure_optimizer(model, config):
    """The model's `default_optimizer()` with config's lr. (The EMA is not the
    optimizer's: `averaging.WeightAverage` averages BatchNorm statistics too.)
    Under mixed_float16, compile() wraps the optimizer in a LossScaleOptimizer.
    """
    optimizer = model.default_optimizer()
    settings = optimizer.get_config()
    settings.update(learning_rate=config.lr)
    return optimizer.__class__.from_config(settings)


def inner_optimizer(optimizer):
    """The optimizer inside a LossScaleOptimizer under fp16 (else itself)."""
    return getattr(optimizer, "inner_optimizer", optimizer)


def has_average(checkpoint_path):
    """Whether a checkpoint holds a weight average (written with --ema)."""
    return any(name.startswith("average/") for name, _ in tf.train.list_variables(checkpoint_path))


def train(config, build_model, figures=None, callbacks=()):
    """Trains (or resumes) the run described by `config`; returns the model.

    The returned model holds the averaged weights when --ema is on (those it exports).
    `callbacks` are extra keras callbacks, run after the samples and before the
    checkpoint of a step (a resumed run repeats what they wrote since it).

    Raises ConfigError / data.DataError (one line, before any file is written);
    RunFolderError (a ConfigError) when another process holds the run folder's
    lock or a write fails for room or rights, naming what stays intact;
    RunComplete when the run already reached `steps` (nothing is touched);
    TrainingDiverged, saying where to resume from.
    """
    cfg.validate(config)
    rf.check_out_dir(config.out_dir)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs an op.
    strategy = devices.make_strategy(config.strategy)
    spec = data.resolve(config.dataset, data_dir=config.data_dir,
                        image_size=config.image_size, channels=config.channels)
    changes = cfg.check_run_dir(config)
    run_dir = config.out_dir
    chief = devices.is_chief(strategy)
    # Only the chief writes, so only it holds the lock; taken before the slow
    # part so that a second run stops at once.
    created = rf.missing_ancestor(run_dir)
    lock = rf.lock_run_dir(run_dir) if chief else None
    writes_started = False
    try:
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        latest = tf.train.latest_checkpoint(ckpt_dir) if config.resume else None
        if (latest and checkpoint_step(latest) >= config.steps
                and os.path.isfile(os.path.join(run_dir, "model.keras"))):
            raise RunComplete(run_dir, checkpoint_step(latest))
        replicas = strategy.num_replicas_in_sync
        if config.batch_size % replicas:
            raise ConfigError(f"--batch_size {config.batch_size} is not divisible by the "
                              f"{replicas} replicas of --strategy={config.strategy}")

        precision, why = devices.resolve_precision(config.mixed_precision, strategy)

        # Seeds the weights' initialisers; the training noise is seeded by the step.
        keras.utils.set_random_seed(config.seed)
        with devices.precision_policy(precision), strategy.scope():
            try:
                model = build_model(config, spec)
            except ValueError as e:
                raise ConfigError(str(e).strip().splitlines()[0]) from None
            model.compile(optimizer=configure_optimizer(model, config),
                          jit_compile=JIT_COMPILE[config.jit_compile])
            average = averaging.WeightAverage(model, config.ema) if config.ema > 0 else None
        record = devices.run_record(model, strategy, precision)
        cfg.check_resumed_computation(config, record)

        writes_started = True
        if chief:
            removed = rf.remove_stale_temporaries(run_dir)
            if removed:
                print(f"removed {len(removed)} temporary file(s) left by an interrupted write "
                      f"in {run_dir}", flush=True)
        with writing(f"in {run_dir}"):
            return _run(config, model, strategy, spec, record, chief, changes, figures,
                        callbacks, precision, why, average)
    except RunFolderError as e:
        if not writes_started:
            rf.undo_created(run_dir, created)
            raise
        raise RunFolderError(f"{e}; {rf.last_checkpoint_note(run_dir)}") from None
    except TrainingDiverged as e:
        # Raised with what diverged; the advice depends on the run folder.
        raise TrainingDiverged(f"{e}; {rf.diverged_advice(config, run_dir)}") from None
    except (ConfigError, data.DataError):
        if not writes_started:
            rf.undo_created(run_dir, created)
        raise
    finally:
        if lock is not None:
            rf.unlock_run_dir(lock)


def _run(config, model, strategy, spec, record, chief, changes, figures, callbacks,
         precision, why, average):
    """train()'s writing part, with the lock held and the checks passed."""
    run_dir = config.out_dir
    replicas = strategy.num_replicas_in_sync
    trackables = dict(model=model, optimizer=model.optimizer)
    checkpoint = tf.train.Checkpoint(
        **trackables, **({"average": average.state} if average is not None else {}))
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, KEEP_CHECKPOINTS)
    worker_manager = None if chief else tf.train.CheckpointManager(
        checkpoint, os.path.join(ckpt_dir, f".worker{strategy.cluster_resolver.task_id}"), 1)
    restarted_average = False
    if config.resume and manager.latest_checkpoint:
        latest = manager.latest_checkpoint
        restarted_average = average is not None and not has_average(latest)
        # A run checkpointed without --ema (or by an ogan_ign whose EMA was the
        # optimizer's) has no average: it starts from the restored weights.
        restoring = tf.train.Checkpoint(**trackables) if restarted_average else checkpoint
        restoring.restore(latest).assert_existing_objects_matched()
        if restarted_average:
            average.reset()
        # The learning rate is an optimizer variable, so the restore brought back
        # the stored one; the config's wins (equal unless --allow_change lr).
        inner_optimizer(model.optimizer).learning_rate = config.lr
    step = global_step(model)

    if chief:
        os.makedirs(run_dir, exist_ok=True)
        history = (cfg.stored_config(config) or {}).get("history", []) if step else []
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        history = history + [{"step": step, "time": now, **change} for change in changes]
        value = {**config.to_json(), "run": record}
        if history:
            value["history"] = history
        rf.write_json(os.path.join(run_dir, "config.json"), value)
        for change in changes:
            print(f"{change['field']} changed on resume at step {step}: {change['old']!r} → "
                  f"{change['new']!r} (--allow_change; recorded in config.json)", flush=True)
        if restarted_average:
            print(f"the checkpoint of step {step} holds no weight average: the average (--ema "
                  f"{config.ema}) starts from its weights", flush=True)
    writer = Summaries(os.path.join(run_dir, "logs")) if chief else tf.summary.create_noop_writer()
    fixed = Fixed(x_real=data.load_arrays(spec, limit=config.num_samples)[0], seed=config.seed)
    if chief:
        with writing(os.path.join(run_dir, "samples", "real.png")):
            images.save_grid(os.path.join(run_dir, "samples", "real.png"), fixed.x_real)
        print(f"{spec.name}: {spec.num_examples} images of {spec.image_size}px × "
              f"{spec.channels}; {replicas} replica(s); precision "
              f"{devices.PRECISION_POLICIES[precision]} ({config.mixed_precision}: {why}); "
              + (f"resuming at step {step}" if step else "starting") + f" in {run_dir}",
              flush=True)
        every = config.sample_every
        if step and ((every and step % every == 0) or step >= config.steps) \
                and not os.path.exists(samples_path(run_dir, step)):
            # Written by a run that checkpointed before its samples (older
            # versions ran the callbacks the other way round).
            write_samples(model, run_dir, step, fixed, figures, writer, average)

    if step < config.steps:
        # The same deterministic stream as an uninterrupted run, minus what the
        # checkpointed steps consumed.
        dataset = data.make_dataset(spec, config.batch_size, shuffle=True, repeat=True,
                                    seed=config.seed).skip(step)
        # Checkpoints last: a kill while saving checkpoint N finds step N's
        # samples and metrics written; the resumed run repeats them.
        # The average first: this step's samples and checkpoint include it.
        driver = ([average] if average is not None else []) + [Progress(config, writer, chief,
                                                                         step)]
        if chief:
            driver.append(Samples(config, run_dir, writer, fixed, figures, average))
        driver += list(callbacks) + [Checkpoints(config, manager, worker_manager)]
        # One endless epoch: Progress stops it at `steps` (an fp16 step skipped by
        # the loss scale does not count, so the number of batches is not known).
        model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=driver)

    if average is not None:
        average.assign()  # the checkpoint keeps the raw weights; the export the average
    if chief:
        rf.export(model, os.path.join(run_dir, "model.keras"))
        writer.flush()
    return model
