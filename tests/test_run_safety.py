"""Nothing damages a run: a full disk or no permission at any write, a diverged
run rescued on purpose, a kill at a step that both samples and checkpoints, a
finished run re-run, a dataset's other spelling. (Two runs in one folder:
test_run_lock.py; one error format for every user mistake: test_run_errors.py.)

A full disk is simulated by patching one writer to raise what the real one
raises (OSError ENOSPC, TensorFlow's ResourceExhaustedError), a kill by raising
inside the checkpoint save. Tiny runs: 16 random 32 px PNGs, width 8, batch 8, a
few steps.
"""

import dataclasses
import errno
import glob
import json
import os
import tempfile
from unittest import mock

import keras
import tensorflow as tf

from ogan_ign import cli, images, training
from ogan_ign.training import run_folder
from tests.tiny_runs import SafetyCase, build_tiny, checkpoint_values, exit_of


class Killed(Exception):
    """Stands for a SIGKILL at that point of the run."""


def snapshot(run_dir):
    """Every file of a run folder (but the lock) with its bytes' size and mtime."""
    files = {}
    for path in glob.glob(os.path.join(run_dir, "**"), recursive=True):
        if os.path.isfile(path) and os.path.basename(path) != training.LOCK_FILE:
            stat = os.stat(path)
            files[os.path.relpath(path, run_dir)] = (stat.st_size, stat.st_mtime_ns)
    return files


class RunSafetyTest(SafetyCase):

    prefix = "test_run_safety_"

    # ----------------------------------------------------- #16.4 full disk

    def test_full_disk_at_a_checkpoint_is_one_line_and_the_next_start_cleans_up(self):
        config = self.config("full_checkpoint")
        out, ckpt_dir = config.out_dir, os.path.join(config.out_dir, "checkpoints")
        save = tf.train.CheckpointManager.save

        def full_disk(manager, checkpoint_number=None, **kwargs):
            if checkpoint_number == 8:  # TensorFlow's staging is half written
                os.makedirs(os.path.join(ckpt_dir, "ckpt-8_temp"))
                with open(os.path.join(ckpt_dir, "ckpt-8_temp", "part-00000-of-00001.data"),
                          "wb") as f:
                    f.write(b"\0" * 100)
                raise tf.errors.ResourceExhaustedError(
                    None, None, f"{ckpt_dir}/ckpt-8_temp/part-00000-of-00001.data-00000-of-"
                    "00001.tempstate123; No space left on device")
            return save(manager, checkpoint_number, **kwargs)

        with mock.patch.object(tf.train.CheckpointManager, "save", full_disk):
            status, _, stderr = exit_of(lambda: cli.train_or_exit(config, build_tiny))
        self.assertEqual(status, 2)
        self.assert_one_error_line(
            stderr, f"cannot write checkpoint 8 in {ckpt_dir}: No space left on device",
            f"the last good checkpoint (step 4) is intact in {ckpt_dir}")
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-4"))
        checkpoint_values(out, 4)  # reads
        self.assertFalse(glob.glob(os.path.join(ckpt_dir, "ckpt-8*")))  # staging removed
        # The samples of step 8 were written before its checkpoint (#16.7).
        self.assertTrue(os.path.exists(os.path.join(out, "samples", "00000008.png")))

        # What a kill during writes leaves behind; the next start removes it all.
        stale = [os.path.join(ckpt_dir, "ckpt-12_temp", "part-00000-of-00001.data"),
                 os.path.join(ckpt_dir, "ckpt-12.index"),  # never committed
                 os.path.join(out, "model.tmp.keras"),
                 os.path.join(out, "config.tmp.json"),
                 os.path.join(out, "config.json.tmp"),  # an older version's name
                 os.path.join(out, "samples", ".00000012.png.a1b2c3.tmp")]
        for path in stale:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(b"partial")
        status, stdout, stderr = exit_of(lambda: cli.train_or_exit(config, build_tiny))
        self.assertIsNone(status, stderr)
        self.assertIn(f"removed {len(stale)} temporary file(s) left by an interrupted write",
                      stdout)
        self.assertIn("resuming at step 4", stdout)
        for path in stale[2:]:
            self.assertFalse(os.path.exists(path), path)
        self.assertFalse(os.path.exists(os.path.join(ckpt_dir, "ckpt-12_temp")))
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-12"))
        checkpoint_values(out, 12)  # the real checkpoint 12, not the planted index
        self.assertEqual(sorted(os.listdir(os.path.join(out, "samples"))),
                         ["00000004.png", "00000008.png", "00000012.png", "real.png"])
        self.assertEqual(os.stat(os.path.join(out, "samples", "00000012.png")).st_mode & 0o777,
                         0o644)

    def test_full_disk_or_no_permission_at_export_config_and_samples(self):
        def partial_save(model, filepath, *args, **kwargs):
            with open(filepath, "wb") as f:
                f.write(b"PK partial zip")
            raise OSError(errno.ENOSPC, "No space left on device", filepath)

        real_imwrite, calls = images.iio.imwrite, []

        def imwrite_then_full(path, *args, **kwargs):
            calls.append(path)
            if len(calls) > 1:  # real.png goes through, the grid of step 2 does not
                raise OSError(errno.ENOSPC, "No space left on device", path)
            return real_imwrite(path, *args, **kwargs)

        cases = [
            ("export", mock.patch.object(keras.Model, "save", partial_save),
             ["cannot write {out}/model.keras: No space left on device",
              "the last good checkpoint (step 2) is intact"]),
            ("config", mock.patch.object(run_folder.json, "dump",
                                         side_effect=PermissionError(errno.EACCES,
                                                                     "Permission denied")),
             ["cannot write {out}/config.json: Permission denied",
              "no checkpoint was written yet"]),
            ("samples", mock.patch.object(images.iio, "imwrite", imwrite_then_full),
             ["cannot write the samples of step 2 in {out}: No space left on device",
              "no checkpoint was written yet"]),
        ]
        for name, patch, parts in cases:
            with self.subTest(write=name):
                config = self.config(f"full_{name}", steps=2, ckpt_every=2, sample_every=2,
                                     log_every=2)
                out = config.out_dir
                with patch:
                    status, _, stderr = exit_of(lambda: cli.train_or_exit(config, build_tiny))
                self.assertEqual(status, 2)
                self.assert_one_error_line(stderr, *[p.format(out=out) for p in parts])
                left = glob.glob(os.path.join(out, "**", "*"), recursive=True)
                self.assertFalse([p for p in left if run_folder.is_temporary(p)])
                self.assertFalse(os.path.exists(os.path.join(out, "model.keras")))
        self.assertEqual(tf.train.latest_checkpoint(self.run_dir("full_export/checkpoints")),
                         self.run_dir("full_export/checkpoints/ckpt-2"))

    # ----------------------------------------------------- #16.6 rescue

    def test_a_diverged_run_is_rescued_with_allow_change_lr_recorded_in_history(self):
        config = self.config("rescue", steps=4, ckpt_every=2, sample_every=0)
        training.train(config, build_tiny)
        # Extended with a learning rate that blows it up: refused unless asked for.
        wild = dict(steps=12, lr=1e8)
        with self.assertRaisesRegex(training.ConfigError,
                                    r"\(lr: 0\.0001 → 100000000\.0\); to change it on purpose "
                                    r"add --allow_change lr"):
            training.train(self.config("rescue", ckpt_every=2, sample_every=0, **wild), build_tiny)
        ckpt_dir = os.path.join(config.out_dir, "checkpoints")
        status, stdout, stderr = exit_of(lambda: cli.train_or_exit(
            self.config("rescue", ckpt_every=2, sample_every=0, allow_change="lr", **wild),
            build_tiny))
        self.assertEqual(status, 3)
        self.assertIn("lr changed on resume at step 4: 0.0001 → 100000000.0", stdout)
        line = self.assert_one_error_line(
            stderr, "stopped, the last good checkpoint is step", "--lr 1e+07 --allow_change lr")
        self.assertRegex(line, r"^error: (weight )?\S+ is (nan|inf|-inf|not finite) at step \d+; "
                               r"stopped")
        self.assertIn(f"in {ckpt_dir}: to resume from it", line)
        good = training.checkpoint_step(tf.train.latest_checkpoint(ckpt_dir))
        self.assertIn(f"checkpoint is step {good} in", line)

        # The rescue: the same command with a sane lr and --allow_change lr.
        rescued = self.config("rescue", steps=12, ckpt_every=2, sample_every=0, lr=1e-4,
                              allow_change="lr")
        status, stdout, stderr = exit_of(lambda: cli.train_or_exit(rescued, build_tiny))
        self.assertIsNone(status, stderr)
        self.assertIn(f"resuming at step {good}", stdout)
        self.assertIn(f"lr changed on resume at step {good}: 100000000.0 → 0.0001", stdout)
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-12"))
        values = checkpoint_values(config.out_dir, 12)
        self.assertTrue(all(tf.reduce_all(tf.math.is_finite(v)) for v in values.values()
                            if v.dtype.kind == "f"))
        # The restored learning rate is the rescue's, not the stored 1e8.
        self.assertAllClose(values["optimizer/_learning_rate/.ATTRIBUTES/VARIABLE_VALUE"], 1e-4)
        with open(os.path.join(config.out_dir, "config.json")) as f:
            stored = json.load(f)
        self.assertEqual(stored["lr"], 1e-4)
        self.assertEqual([(h["step"], h["field"], h["old"], h["new"]) for h in stored["history"]],
                         [(4, "lr", 1e-4, 1e8), (good, "lr", 1e8, 1e-4)])
        self.assertRegex(stored["history"][0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        # Resuming once more with the same flags is no change.
        self.assertEqual(training.check_run_dir(dataclasses.replace(rescued, steps=13)), [])
        # EMA's decay may change, and EMA turn off (the export is then the raw weights).
        self.assertEqual(training.check_run_dir(dataclasses.replace(rescued, ema=0.0,
                                                                    allow_change="ema")),
                         [{"field": "ema", "old": 0.9, "new": 0.0}])
        self.assertEqual(training.check_run_dir(dataclasses.replace(rescued, ema=0.99,
                                                                    allow_change="ema")),
                         [{"field": "ema", "old": 0.9, "new": 0.99}])

    def test_allow_change_refuses_what_cannot_change_and_advice_without_a_checkpoint(self):
        for names, pattern in (("lrr", r"--allow_change: 'lrr' is not a setting"),
                               ("image_size", r"--allow_change: image_size cannot change on "
                                              r"resume \(only lr, lr_decay, ema can"),
                               ("lr,width", r"--allow_change: width cannot change"),
                               ("dataset", "dataset cannot change"),
                               ("batch_size", "batch_size cannot change")):
            with self.subTest(names=names), self.assertRaisesRegex(training.ConfigError, pattern):
                training.validate(self.config("never", allow_change=names))
        self.assertFalse(os.path.exists(self.run_dir("never")))
        training.validate(self.config("never", allow_change="lr, lr_decay, ema"))
        # Diverged before any checkpoint: nothing to resume, say so.
        advice = training.diverged_advice(self.config("no_ckpt", lr=1e-3),
                                          self.run_dir("no_ckpt"))
        self.assertEqual(advice, "stopped, no checkpoint was written yet (the first is at step "
                                 "4): rerun with a lower --lr, e.g. --lr 0.0001")

    # ----------------------------------------------------- #16.7 callback order

    def test_a_kill_right_after_a_checkpoint_that_is_also_a_sample_step_loses_no_grid(self):
        config = self.config("kill_common", steps=8)
        out, ckpt_dir = config.out_dir, os.path.join(config.out_dir, "checkpoints")
        save = tf.train.CheckpointManager.save

        def save_then_die(manager, checkpoint_number=None, **kwargs):
            path = save(manager, checkpoint_number, **kwargs)
            if checkpoint_number == 4:
                raise Killed(path)  # checkpoint 4 is committed, the process dies
            return path

        seen = []

        class Metric(keras.callbacks.Callback):  # a user callback's metric, every 4 steps
            def on_train_batch_end(self, batch, logs=None):
                if int(self.model.optimizer.iterations) % 4 == 0:
                    seen.append(int(self.model.optimizer.iterations))

        with mock.patch.object(tf.train.CheckpointManager, "save", save_then_die), \
                self.assertRaises(Killed):
            training.train(config, build_tiny, callbacks=[Metric()])
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-4"))
        # Samples and the user's callbacks ran before the checkpoint of step 4.
        self.assertTrue(os.path.exists(os.path.join(out, "samples", "00000004.png")))
        self.assertEqual(seen, [4])
        # A run killed this way by an older version (checkpoint first) lacks the
        # grid: the resume at that step writes it.
        os.remove(os.path.join(out, "samples", "00000004.png"))
        status, stdout, stderr = exit_of(lambda: cli.train_or_exit(config, build_tiny))
        self.assertIsNone(status, stderr)
        self.assertIn("resuming at step 4", stdout)
        self.assertEqual(sorted(os.listdir(os.path.join(out, "samples"))),
                         ["00000004.png", "00000008.png", "real.png"])

    # ----------------------------------------------------- #14.4 a finished run

    def test_a_finished_run_is_not_touched_and_a_larger_steps_extends_it(self):
        config = self.config("finished", steps=4)
        out, built = config.out_dir, []

        def script(config):  # what train_*.py's main does
            def build(c, spec):
                built.append(c.steps)
                return build_tiny(c, spec)
            with cli.training_run(config, build) as run:
                run.metrics = {"final_metric": 1.5}

        status, stdout, stderr = exit_of(lambda: script(config))
        self.assertIsNone(status, stderr)
        metrics_path = os.path.join(out, "metrics.json")
        training.merge_json(metrics_path, {"evaluation": {"fid": 12.5}})  # as evaluate.py does
        before = snapshot(out)
        with open(metrics_path) as f:
            first = json.load(f)
        self.assertEqual((first["steps"], first["final_metric"]), (4, 1.5))

        status, stdout, stderr = exit_of(lambda: script(config))
        self.assertEqual(status, 0, stderr)
        self.assertEqual(stdout.strip(), f"run complete at step 4 in {out} (raise --steps to "
                                         "continue)")
        self.assertEqual(stderr, "")
        self.assertEqual(built, [4])  # no model built, no metrics computed
        self.assertEqual(snapshot(out), before)  # no file written, rewritten or added

        status, stdout, stderr = exit_of(lambda: script(self.config("finished", steps=6)))
        self.assertIsNone(status, stderr)
        self.assertIn("resuming at step 4", stdout)
        with open(metrics_path) as f:
            extended = json.load(f)
        self.assertEqual(extended["steps"], 6)
        self.assertEqual(extended["evaluation"], {"fid": 12.5})
        self.assertGreaterEqual(extended["wall_seconds"], first["wall_seconds"])

class DatasetSpellingTest(tf.test.TestCase):
    """#16.8: a run resumes under another spelling of the same dataset, not another dataset."""

    def test_aliases_resume_and_other_data_is_refused(self):
        out = tempfile.mkdtemp()
        tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                                   os.path.join(out, "checkpoints"), 1).save()
        started = training.Config(dataset="fashion-mnist", out_dir=out)
        training.write_json(os.path.join(out, "config.json"), started.to_json())
        for spelling in ("fashion_mnist", "fmnist", "FMNIST"):
            with self.subTest(spelling):
                resumed = dataclasses.replace(started, dataset=spelling)
                self.assertEqual(training.check_run_dir(resumed), [])
        with self.assertRaisesRegex(training.ConfigError, "dataset: 'fashion-mnist' → 'mnist'"):
            training.check_run_dir(dataclasses.replace(started, dataset="mnist"))


if __name__ == "__main__":
    tf.test.main()
