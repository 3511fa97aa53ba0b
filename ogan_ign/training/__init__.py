"""The shared training driver: config → strategy → compile → fit with callbacks.

One call, `train(config, build_model, figures=None)`, turns a frozen `Config` into
a resumable run in `config.out_dir` (`session`, the same as a context manager,
keeps the folder locked for the caller's final writes):

    out_dir/
      config.json           the whole config, model hyperparameters included
      checkpoints/          tf.train.CheckpointManager: ckpt-<step>.{index,data-*}
      logs/                 TensorBoard scalars (every --log_every steps) and samples
      samples/<step>.png    model.generate(n, seed=config.seed): fixed noise
      samples/real.png      the fixed real images handed to `figures`
      model.keras           the final model (EMA weights when EMA is on)
      metrics.json          the script's final metrics (written through `session`)
      .lock                 flock'ed by the running chief, holds its PID

Contract for a model's script (train_ogan.py, train_ign.py, train_gan.py):

    build_model(config, spec) -> model
        Called inside the strategy scope with the `Config` and the dataset's
        `data.DataSpec`; returns an uncompiled `one_loss.OneLossModel` (its
        train_step draws its own noise from `optimizer.iterations`; it has
        `generate(n, seed=...)`). It is compiled with the model's
        `default_optimizer()`, whose learning rate is replaced by `config.lr`.
        Model hyperparameters come from `config.model`.
        A ValueError raised here is a configuration error (one line, no files).
    figures(model, run_dir, step, fixed) -> None     (optional)
        Writes model-specific PNGs (reconstructions, refinements ...) with
        `images.save_table`; called on the chief every `sample_every` steps and
        at the end, with the averaged weights in place when --ema is on. `fixed`
        is a `Fixed`: real images in [-1, 1] (the first `num_samples` of the
        dataset) and a seed.

Resume. Everything that determines the future of a run is in the checkpoint or
is a function of the step: weights, BatchNorm statistics, optimizer slots and
the weight average (`averaging.WeightAverage`, --ema), the step
(optimizer.iterations), the noise (the models draw it statelessly from the
step) and the data position (the input pipeline is deterministic for a seed; a
resumed run skips the batches already consumed by replaying the input pipeline
without the model). So a resumed run repeats the uninterrupted one exactly: on
the CPU bit for bit with TensorFlow's default settings, the same machine and
thread count (tests/test_training.py); on GPUs also call
tf.config.experimental.enable_op_determinism(). Under fp16, a step skipped by
the loss scale does not advance the counter, so exactness holds up to such
steps. Checkpoints are written every `ckpt_every` steps and at the end;
TensorFlow writes the files first and then swaps the `checkpoint` index file
atomically, so a kill at any moment leaves the previous checkpoint as the
latest one. A step's samples, figures and the extra
callbacks run before its checkpoint, so a kill never loses them (the resumed
run repeats them). The next start removes what an interrupted write left.

Safety. The chief holds an OS lock on the run folder from its checks to its last
write (`run_folder.RunFolder`): a second run stops at once, naming the holder's
PID; where the file system cannot lock, one line says so and the run goes on.
config.json, metrics.json and model.keras are written through one atomic helper
(`run_folder.atomic_write`). A write failing for room or rights (checkpoint,
samples, config.json, model.keras, metrics.json) is a one-line RunFolderError
naming the intact last checkpoint. A run already at `steps` is not touched
(RunComplete). A setting may change on resume only when named in `allow_change`
(ALLOWED_CHANGES: lr, lr_decay, ema), e.g. to rescue a diverged run with a lower learning
rate; config.json's "history" records each change.

Strategies: auto (MirroredStrategy over the visible GPUs, else the default),
default, mirrored, multi_worker (TF_CONFIG; only the chief writes files, every
worker takes part in checkpoint saves), tpu. The global batch is split over the
replicas; the models scale their loss for the summed gradients. A strategy or
--jit_compile may change when a run is resumed, unless the change alters what
a step computes: with XLA on over several replicas, batch statistics are per
replica (`one_loss.XlaShards`); config.json records which (`batch_statistics`).

The library never reads flags: `ogan_ign.cli` turns absl flags into a Config.

The modules, one job each: `config` (Config, validation, what may change on
resume), `devices` (strategy, precision, XLA), `run_folder` (lock, atomic
writes, failure notes, stale temporaries), `callbacks` (Progress, Samples,
Checkpoints, Summaries) and `driver` (`train`, `session`). This package
re-exports the names its callers use.
"""

from ogan_ign.training.callbacks import (Checkpoints, Fixed, LearningRate, Progress, Samples,
                                         Summaries, TrainingDiverged, decayed_lr, duration,
                                         global_step,
                                         save_checkpoint, samples_path, scalar, to_numpy,
                                         write_image, write_scalar)
from ogan_ign.training.config import (ALLOWED_CHANGES, JIT_COMPILE, PRECISION_CHOICES,
                                      PRECISIONS, RESUMABLE_CHANGES, STRATEGIES, Config,
                                      ConfigError, allowed_changes, check_resumed_computation,
                                      check_run_dir, precision_word, stored_config, validate)
from ogan_ign.training.devices import (PRECISION_POLICIES, cpu_flags, is_chief, make_strategy,
                                       model_batch_statistics, precision_policy,
                                       resolve_filter_gradient, resolve_precision,
                                       run_record, training_kernels)
from ogan_ign.training.driver import (KEEP_CHECKPOINTS, RunComplete, Trained,
                                      configure_optimizer, has_average, inner_optimizer,
                                      session, train)
from ogan_ign.training.run_folder import (LOCK_FILE, RunFolder, RunFolderError, atomic_write,
                                          check_out_dir,
                                          checkpoint_step, diverged_advice, export,
                                          last_checkpoint_note, lock_run_dir, merge_json,
                                          missing_ancestor, remove_stale_temporaries,
                                          remove_uncommitted_checkpoints, unlock_run_dir,
                                          write_failure, write_json, writing)
