"""The driver: `train(config, build_model)` turns a Config into a resumable run.

See the package's docstring (`ogan_ign.training`) for the run folder, the
contract of `build_model` and `figures`, and what resume guarantees. `train` is
`session` without a body: a caller with final writes of its own (the scripts'
metrics.json) uses `session`, so they happen while the run folder is locked.
"""

import contextlib
import dataclasses
import os
import time
from typing import Any, Optional

import keras
import tensorflow as tf

from ogan_ign import averaging, data, images, kernels, standing
from ogan_ign.training import callbacks as cb
from ogan_ign.training import config as cfg
from ogan_ign.training import devices
from ogan_ign.training import run_folder as rf
from ogan_ign.training.config import ConfigError

KEEP_CHECKPOINTS = 3


class RunComplete(Exception):
    """The run in `out_dir` already reached --steps: nothing was done or written."""

    def __init__(self, out_dir, step):
        super().__init__(f"run complete at step {step} in {out_dir} (raise --steps to continue)")
        self.out_dir, self.step = out_dir, step


@dataclasses.dataclass
class Run:
    """A run once its model is built: what the phases after `build` share."""

    config: cfg.Config
    spec: Any                      # the data.Source being trained on
    strategy: Any                  # tf.distribute.Strategy
    chief: bool                    # this task writes the run folder
    model: Any = None              # the compiled one_loss.OneLossModel
    average: Optional[averaging.WeightAverage] = None
    precision: tuple = ()          # (precision, why) of devices.resolve_precision
    filter_gradient: tuple = ()    # (kind, why) of devices.resolve_filter_gradient
    record: Optional[dict] = None  # devices.run_record, config.json's "run"
    figures: Any = None            # the script's figures(model, run_dir, step, fixed)
    callbacks: tuple = ()          # the caller's extra keras callbacks


@dataclasses.dataclass(frozen=True)
class Trained:
    """What `session` yields: the trained model and its still-locked folder."""

    model: Any
    folder: rf.RunFolder


def train(config, build_model, figures=None, callbacks=(), catalog=None):
    """Trains (or resumes) the run described by `config`; returns the model.

    The returned model holds the averaged weights when --ema is on, and the standing
    statistics with --standing_stats (what it exports).
    `callbacks` are extra keras callbacks, run after the samples and before the
    checkpoint of a step (a resumed run repeats what they wrote since it).
    `catalog` (a data.Catalog) resolves the dataset; a caller that reads the same
    data before or after training passes its own, so a folder is decoded once.

    Raises ConfigError / data.DataError (one line, before any file is written);
    RunFolderError (a ConfigError) when another process holds the run folder's
    lock or a write fails for room or rights, naming what stays intact;
    RunComplete when the run already reached `steps` (nothing is touched);
    TrainingDiverged, saying where to resume from.
    """
    with session(config, build_model, figures, callbacks, catalog) as trained:
        return trained.model


@contextlib.contextmanager
def session(config, build_model, figures=None, callbacks=(), catalog=None):
    """`train`, yielding a `Trained` while the run folder is still locked: the
    body's writes through `trained.folder` are the run's last. Raises as `train`
    does, before the body runs; a RunFolderError of the body names the last
    good checkpoint too."""
    cfg.validate(config)
    rf.check_out_dir(config.out_dir)
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs an op.
    strategy = devices.make_strategy(config.strategy)
    spec = (catalog or data.Catalog()).resolve(
        config.dataset, data_dir=config.data_dir, image_size=config.image_size,
        channels=config.channels, cache_dir=config.cache_dir)
    changes = cfg.check_run_dir(config)
    run = Run(config, spec, strategy, devices.is_chief(strategy), figures=figures,
              callbacks=tuple(callbacks))
    # Only the chief writes, so only it locks; before the slow part, so that a
    # second run stops at once.
    with rf.RunFolder(config.out_dir, lock=run.chief) as folder, with_advice(config):
        check_startable(config, run.strategy)
        build(run, build_model)
        cfg.check_resumed_computation(config, run.record)
        folder.begin_writes()
        with rf.writing(f"in {config.out_dir}"):
            saver, restarted_average = restore(run)
            writer, samples = announce(run, folder, changes, restarted_average)
            fit(run, saver, writer, samples)
            finish(run, folder, writer)
        yield Trained(run.model, folder)


@contextlib.contextmanager
def with_advice(config):
    """Adds to a TrainingDiverged what to do next (`run_folder.diverged_advice`)."""
    try:
        yield
    except cb.TrainingDiverged as e:
        raise cb.TrainingDiverged(f"{e}; {rf.diverged_advice(config, config.out_dir)}") from None


def check_startable(config, strategy):
    """RunComplete when the run already reached --steps (and exported); ConfigError
    when the global batch does not split over the replicas."""
    latest = tf.train.latest_checkpoint(os.path.join(config.out_dir, "checkpoints"))
    if (config.resume and latest and rf.checkpoint_step(latest) >= config.steps
            and os.path.isfile(os.path.join(config.out_dir, "model.keras"))):
        raise RunComplete(config.out_dir, rf.checkpoint_step(latest))
    n_replicas = strategy.num_replicas_in_sync
    if config.batch_size % n_replicas:
        raise ConfigError(f"--batch_size {config.batch_size} is not divisible by the "
                          f"{n_replicas} replicas of --strategy={config.strategy}")


def build(run, build_model):
    """Builds and compiles the model (and its weight average) under the resolved
    precision, in the strategy's scope; a ValueError of `build_model` is a
    ConfigError."""
    config = run.config
    run.precision = devices.resolve_precision(config.mixed_precision, run.strategy)
    # Seeds the weights' initialisers; the training noise is seeded by the step.
    keras.utils.set_random_seed(config.seed)
    with devices.precision_policy(run.precision[0]), run.strategy.scope():
        try:
            run.model = build_model(config, run.spec)
        except ValueError as e:
            raise ConfigError(str(e).strip().splitlines()[0]) from None
        run.model.compile(optimizer=configure_optimizer(run.model, config),
                          jit_compile=cfg.JIT_COMPILE[config.jit_compile])
        run.average = averaging.WeightAverage(run.model, config.ema) if config.ema > 0 else None
    run.filter_gradient = devices.resolve_filter_gradient(config.filter_gradient,
                                                          run.precision[0], run.strategy)
    chosen = devices.training_kernels(run.filter_gradient[0], config.batchnorm)
    for net in run.model.nets:
        kernels.install(net, *chosen)
    run.record = devices.run_record(run.model, run.strategy, run.precision[0],
                                    run.filter_gradient[0], config.batchnorm)


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


def restore(run):
    """The run's Checkpoints callback, and whether the weight average restarts.

    When resuming, the latest checkpoint is restored into the model, its
    optimizer and the average. A checkpoint written without --ema (or by an
    ogan_ign whose EMA was the optimizer's) holds no average: it then starts
    from the restored weights.
    """
    config, model, average = run.config, run.model, run.average
    trackables = dict(model=model, optimizer=model.optimizer)
    checkpoint = tf.train.Checkpoint(
        **trackables, **({"average": average.state} if average is not None else {}))
    ckpt_dir = os.path.join(config.out_dir, "checkpoints")
    manager = tf.train.CheckpointManager(checkpoint, ckpt_dir, KEEP_CHECKPOINTS)
    worker_manager = None if run.chief else tf.train.CheckpointManager(
        checkpoint, os.path.join(ckpt_dir, f".worker{run.strategy.cluster_resolver.task_id}"), 1)
    restarted_average = False
    if config.resume and manager.latest_checkpoint:
        latest = manager.latest_checkpoint
        restarted_average = average is not None and not has_average(latest)
        restoring = tf.train.Checkpoint(**trackables) if restarted_average else checkpoint
        restoring.restore(latest).assert_existing_objects_matched()
        if restarted_average:
            average.reset()
        # The learning rate is an optimizer variable, so the restore brought back
        # the stored one; the config's wins (equal unless --allow_change lr).
        inner_optimizer(model.optimizer).learning_rate = config.lr
    return cb.Checkpoints(config, manager, worker_manager), restarted_average


def announce(run, folder, changes, restarted_average):
    """Writes config.json (with the history of --allow_change) and the real
    images, prints the start line; returns (TensorBoard writer, the Samples
    callback or None where this task writes no samples)."""
    config, step = run.config, cb.global_step(run.model)
    if run.chief:
        history = (cfg.stored_config(config) or {}).get("history", []) if step else []
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        history = history + [{"step": step, "time": now, **change} for change in changes]
        value = {**config.to_json(), "run": run.record}
        if history:
            value["history"] = history
        folder.write_json("config.json", value)
        for change in changes:
            print(f"{change['field']} changed on resume at step {step}: {change['old']!r} → "
                  f"{change['new']!r} (--allow_change; recorded in config.json)", flush=True)
        if restarted_average:
            print(f"the checkpoint of step {step} holds no weight average: the average (--ema "
                  f"{config.ema}) starts from its weights", flush=True)
    writer = cb.Summaries(folder.join("logs")) if run.chief else tf.summary.create_noop_writer()
    fixed = cb.Fixed(x_real=data.load_arrays(run.spec, limit=config.num_samples)[0],
                     seed=config.seed)
    if not run.chief:
        return writer, None
    with rf.writing(folder.join("samples", "real.png")):
        images.save_grid(folder.join("samples", "real.png"), fixed.x_real)
    print(start_line(run, step), flush=True)
    samples = cb.Samples(config, writer, fixed, run.figures, run.average)
    if step and samples.due(step) and not os.path.exists(cb.samples_path(config.out_dir, step)):
        # Missing where a run checkpointed before its samples (older versions
        # ran the callbacks the other way round).
        samples.write(run.model, step)
    return writer, samples


def start_line(run, step):
    """The run's first line: data, replicas, precision, where it starts."""
    spec, config, (precision, why) = run.spec, run.config, run.precision
    if config.mixed_precision == "auto":
        why = f"auto: {why}"
    kind, kind_why = run.filter_gradient
    if config.filter_gradient == "auto":
        kind_why = f"auto: {kind_why}"
    return (f"{spec.name}: {spec.num_examples} images of {spec.image_size}px × "
            f"{spec.channels}; {run.strategy.num_replicas_in_sync} replica(s); precision "
            f"{precision} ({why}); filter gradient {kind} ({kind_why}); {config.batchnorm} "
            "BatchNorm; "
            + (f"resuming at step {step}" if step else "starting") + f" in {config.out_dir}")


def fit(run, saver, writer, samples):
    """Trains from the restored step to --steps with the callbacks in their
    order: the average first (a step's samples and checkpoint include it), the
    learning rate's schedule (--lr_decay; before each step), Progress, Samples,
    the caller's, Checkpoints last (a kill while saving checkpoint N finds step
    N's samples and metrics written; the resumed run repeats them)."""
    config, model, average = run.config, run.model, run.average
    step = cb.global_step(model)
    if step >= config.steps:
        return
    # The same deterministic stream as an uninterrupted run, minus what the
    # checkpointed steps consumed.
    dataset = data.make_dataset(run.spec, config.batch_size, shuffle=True, repeat=True,
                                seed=config.seed).skip(step)
    order = ([average] if average is not None else [])
    if config.lr_decay > 0:
        order.append(cb.LearningRate(config, inner_optimizer(model.optimizer)))
    order.append(cb.Progress(config, writer, run.chief, step))
    order += ([samples] if samples is not None else []) + list(run.callbacks) + [saver]
    # One endless epoch: Progress stops it at `steps` (an fp16 step skipped by
    # the loss scale does not count, so the number of batches is not known).
    model.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=order)


def training_images(run):
    """make_images(k) for standing statistics: batch k of the training images in
    an order seeded by --seed (the pipeline is built at the first call)."""
    images = None

    def make_images(k):
        nonlocal images
        if images is None:
            images = iter(data.make_dataset(run.spec, run.config.batch_size, shuffle=True,
                                            repeat=True, seed=run.config.seed))
        return next(images)
    return make_images


def finish(run, folder, writer):
    """Exports model.keras with the averaged weights in (the checkpoint keeps
    the raw ones), and with --standing_stats standing statistics on those
    weights (`standing.set_for_export`: batches of --batch_size noise for the
    sampler, of training images for IGN's projecting f, of the sampler's samples
    for IGN's refiner and of the images' codes for O-GAN's reconstructing G, all
    seeded by --seed);
    flushes TensorBoard."""
    config, model = run.config, run.model
    if run.average is not None:
        run.average.assign()
    if config.standing_stats:
        # Seconds to minutes of eager passes on a CPU: said before it starts.
        print(f"standing statistics for the export: {config.standing_stats} batches of "
              f"{config.batch_size} noise draws (and of training images, their codes or "
              "samples, for the copies that read those)", flush=True)
        standing.set_for_export(model, config.standing_stats,
                                standing.model_noise(model, config.batch_size, config.seed),
                                training_images(run))
    if run.chief:
        rf.export(model, folder.join("model.keras"))
        writer.flush()
