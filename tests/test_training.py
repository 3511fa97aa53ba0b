"""Tests of the training driver (ogan_ign/training/): the command line and the
run folder it writes, exact resume after SIGKILL, the weight average in samples
and exports, and stopping on non-finite values. Exact resume is checked bit for
bit on the CPU with TensorFlow's default settings (same machine, same thread
count). Runs: tests/tiny_runs.py."""

import glob
import json
import os
import signal
import subprocess
import sys
from unittest import mock

import pytest
import imageio.v3 as iio
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import averaging, data, images, training
from tiny_runs import (REPO, RunTestCase, build_tiny, checkpoint_values, run_python,
                       subprocess_env, tiny_config)

class TrainingTest(RunTestCase):

    # ------------------------------------------------------------ the CLI

    @pytest.mark.slow
    def test_cli_run_writes_the_run_folder_and_a_model_a_fresh_process_loads(self):
        out = self.run_dir("cli")
        flagfile = os.path.join(self.root, "gan.flags")
        with open(flagfile, "w") as f:
            f.write("\n".join([f"--dataset={self.folder}", "--image_size=32", "--batch_size=8",
                               "--steps=6", "--ckpt_every=3", "--sample_every=3",
                               "--log_every=3", "--num_samples=4", "--z_dim=8", "--width=8",
                               "--ema=0.9", f"--out_dir={out}"]) + "\n")
        command = [sys.executable, "train_gan.py", f"--flagfile={flagfile}"]
        done = subprocess.run(command, cwd=REPO, env=subprocess_env(), capture_output=True,
                              text=True, timeout=300)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertRegex(done.stdout, r"step 3/6  \w+, ETA \w+  [0-9.]+ img/s  .*loss/total")
        self.assertRegex(done.stdout, r"step 6/6  \w+  [0-9.]+ img/s  .*loss/total")

        with open(os.path.join(out, "config.json")) as f:
            config = json.load(f)
        self.assertEqual(config["steps"], 6)
        self.assertEqual(config["model"]["z_dim"], 8)
        self.assertEqual(tf.train.latest_checkpoint(os.path.join(out, "checkpoints")),
                         os.path.join(out, "checkpoints", "ckpt-6"))
        for name in ("00000003.png", "00000006.png", "real.png"):
            picture = iio.imread(os.path.join(out, "samples", name))
            self.assertEqual(picture.shape, (2 * 33 + 1, 2 * 33 + 1, 3))
        tags = set()
        for events in glob.glob(os.path.join(out, "logs", "events.*")):
            for event in tf.compat.v1.train.summary_iterator(events):
                tags.update(value.tag for value in event.summary.value)
        self.assertContainsSubset({"loss/total", "loss/penalty", "perf/images_per_second",
                                   "samples"}, tags)

        # A fresh process that imports only ogan_ign loads the export.
        loaded = run_python(f"""
            import keras, numpy as np, ogan_ign
            model = keras.saving.load_model({os.path.join(out, "model.keras")!r})
            x = np.asarray(model.generate(4, seed=0))
            print(type(model).__name__, x.shape, bool(np.all(np.abs(x) <= 1)))
            """)
        self.assertEqual(loaded.returncode, 0, loaded.stderr[-3000:])
        self.assertIn("SingleLossGAN (4, 32, 32, 3) True", loaded.stdout)

    @pytest.mark.slow
    def test_cli_bad_flag_is_one_line_and_no_files(self):
        out = self.run_dir("cli_bad")
        done = subprocess.run([sys.executable, "train_gan.py", f"--dataset={self.folder}",
                               "--batch_size=-8", f"--out_dir={out}"], cwd=REPO,
                              env=subprocess_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 2)
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        self.assertEqual(errors, ["error: --batch_size must be a positive integer, got -8"])
        self.assertFalse(os.path.exists(out))

    # ------------------------------------------------------------ resume

    @pytest.mark.slow
    def test_kill9_mid_step_and_mid_checkpoint_then_resume_is_exact(self):
        out = self.run_dir("killed")
        # Run 1 dies by SIGKILL at step 6 (after checkpoint 4); run 2 resumes and
        # dies while writing checkpoint 8, leaving torn files that the index never
        # names; run 3 finishes. Runs 1 and 2 are separate processes.
        script = f"""
            import glob, os, signal, sys
            import keras, tensorflow as tf
            sys.path.insert(0, {REPO!r})
            from ogan_ign import training
            from tests.tiny_runs import build_tiny, tiny_config

            mode = sys.argv[1]

            class KillAt(keras.callbacks.Callback):
                def on_train_batch_end(self, batch, logs=None):
                    if mode == "step" and int(self.model.optimizer.iterations) == 6:
                        os.kill(os.getpid(), signal.SIGKILL)

            save = tf.train.CheckpointManager.save
            def torn_save(self, checkpoint_number=None, check_interval=True, options=None):
                if mode == "write" and checkpoint_number == 8:
                    def tear(save_path):  # the files are written, the index not yet
                        for path in glob.glob(save_path + ".*"):
                            os.truncate(path, os.path.getsize(path) // 2)
                        os.kill(os.getpid(), signal.SIGKILL)
                    options = tf.train.CheckpointOptions(experimental_write_callbacks=[tear])
                return save(self, checkpoint_number, check_interval, options)
            tf.train.CheckpointManager.save = torn_save

            training.train(tiny_config({self.folder!r}, {out!r}), build_tiny, callbacks=[KillAt()])
            """
        ckpt_dir = os.path.join(out, "checkpoints")
        first = run_python(script, "step")
        self.assertEqual(first.returncode, -signal.SIGKILL, first.stderr[-3000:])
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-4"))

        second = run_python(script, "write")
        self.assertEqual(second.returncode, -signal.SIGKILL, second.stderr[-3000:])
        self.assertIn("resuming at step 4", second.stdout)
        self.assertTrue(glob.glob(os.path.join(ckpt_dir, "ckpt-8.*")))
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-4"))
        checkpoint_values(out, 4)  # the latest checkpoint reads

        training.train(tiny_config(self.folder, out), build_tiny)
        expected = checkpoint_values(self.reference(), 12)
        actual = checkpoint_values(out, 12)
        self.assertEqual(sorted(actual), sorted(expected))
        # Weights and BatchNorm statistics, RMSprop slots, the average of every
        # weight and its count, the step counter: all compared below.
        model = build_tiny(tiny_config(self.folder, out), data.resolve(self.folder))
        self.assertGreaterEqual(len(actual), 2 * len(model.weights) + len(model.trainable_weights))
        self.assertIn("optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", actual)
        self.assertIn("average/count/.ATTRIBUTES/VARIABLE_VALUE", actual)
        for name, value in expected.items():
            self.assertAllEqual(actual[name], value, msg=name)

    def test_a_catalog_handed_to_train_decodes_the_folder_once(self):
        # The scripts read the data for the classifier and the probe, and train on
        # it: with one catalog, a folder is decoded once per process.
        from ogan_ign.data import files  # pylint: disable=import-outside-toplevel
        decode, calls = files._decode_all, []

        def counting(*args, **kwargs):
            calls.append(1)
            return decode(*args, **kwargs)

        catalog = data.Catalog()
        with mock.patch.object(files, "_decode_all", counting):
            catalog.resolve(self.folder, image_size=32)
            training.train(tiny_config(self.folder, self.run_dir("catalog"), steps=1),
                           build_tiny, catalog=catalog)
            self.assertLen(calls, 1)
            training.train(tiny_config(self.folder, self.run_dir("no_catalog"), steps=1), build_tiny)
            self.assertLen(calls, 2)

    def test_resume_restores_the_step_and_training_state(self):
        # 8 steps then 4 more from the checkpoint equals 12 in one go, and the
        # counter of the restored optimizer says 8 before it trains on.
        out = self.run_dir("extended")
        training.train(tiny_config(self.folder, out, steps=8), build_tiny)
        self.assertEqual(int(checkpoint_values(out, 8)
                             ["optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE"]), 8)
        training.train(tiny_config(self.folder, out, steps=12), build_tiny)
        expected = checkpoint_values(self.reference(), 12)
        for name, value in checkpoint_values(out, 12).items():
            self.assertAllEqual(value, expected[name], msg=name)

    def test_lr_decay_sets_each_steps_rate_and_a_crashed_run_resumes_exactly(self):
        # --lr_decay 0.5 over 12 steps: steps 0–6 at --lr, then lr·(12 − t)/6 for
        # t = 7 … 11 (hand values); the caller's callback runs after the schedule's.
        rates = {}

        class Rates(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                optimizer = self.model.optimizer
                rates[int(optimizer.iterations)] = float(optimizer.learning_rate)

        class CrashAt9(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                if int(self.model.optimizer.iterations) == 9:
                    raise RuntimeError("crashed at step 9")

        one_go, crashed = self.run_dir("decay"), self.run_dir("decay_crashed")
        config = tiny_config(self.folder, one_go, lr_decay=0.5)
        training.train(config, build_tiny, callbacks=[Rates()])
        lr = config.lr
        self.assertAllClose([rates[t] for t in range(12)],
                            [lr] * 7 + [lr * 5 / 6, lr * 4 / 6, lr / 2, lr * 2 / 6, lr / 6])
        self.assertAllClose([training.decayed_lr(lr, 12, 0.5, t) for t in (0, 6, 7, 11)],
                            [lr, lr, lr * 5 / 6, lr / 6], rtol=1e-12, atol=0)
        self.assertEqual(training.decayed_lr(lr, 12, 0.0, 11), lr)
        self.assertAllClose(training.decayed_lr(lr, 12, 1.0, 3), lr * 9 / 12, rtol=1e-12, atol=0)
        # Killed after checkpoint 8 (the restore sets --lr back), then resumed: the
        # rates and so every variable are those of the uninterrupted run.
        with self.assertRaisesRegex(RuntimeError, "crashed at step 9"):
            training.train(tiny_config(self.folder, crashed, lr_decay=0.5), build_tiny,
                           callbacks=[CrashAt9()])
        training.train(tiny_config(self.folder, crashed, lr_decay=0.5), build_tiny)
        expected = checkpoint_values(one_go, 12)
        for name, value in checkpoint_values(crashed, 12).items():
            self.assertAllEqual(value, expected[name], msg=name)
        # And the schedule reached the step: the constant-rate run ends elsewhere.
        constant = checkpoint_values(self.reference(), 12)
        self.assertTrue(any(not np.array_equal(constant[name], value)
                            for name, value in expected.items()
                            if name.startswith("optimizer/_trainable_variables/")))

    # ------------------------------------------------------------ EMA, NaN

    def test_samples_and_export_use_the_average_of_every_weight(self):
        out = self.run_dir("ema")
        calls = []

        def figures(model, run_dir, step, fixed):
            calls.append((run_dir, step, fixed.x_real.shape, fixed.seed,
                          model.generator.get_layer("project").kernel.numpy()))

        model = training.train(tiny_config(self.folder, out, steps=4, ema=0.5, sample_every=2),
                               build_tiny, figures=figures)
        exported = keras.saving.load_model(os.path.join(out, "model.keras"))
        ckpt = checkpoint_values(out, 4)
        self.assertEqual(ckpt["average/count/.ATTRIBUTES/VARIABLE_VALUE"], 4.0)
        averaged = averaging.averaged_weights(exported)
        self.assertLen(averaged, len(exported.weights))
        self.assertTrue(any("moving_mean" in w.path for w in averaged))
        # The checkpoint keeps the raw weights (restored here into a fresh model);
        # the export holds the average, BatchNorm's moving statistics included.
        fresh = build_tiny(tiny_config(self.folder, out), data.resolve(self.folder))
        tf.train.Checkpoint(model=fresh).restore(
            os.path.join(out, "checkpoints", "ckpt-4")).expect_partial()
        differ = set()
        for i, (w, returned, raw) in enumerate(zip(averaged, averaging.averaged_weights(model),
                                                   averaging.averaged_weights(fresh))):
            self.assertEqual(w.path, raw.path)
            stored = ckpt[f"average/values/{i}/.ATTRIBUTES/VARIABLE_VALUE"]
            self.assertAllEqual(w.numpy(), stored, msg=w.path)
            self.assertAllEqual(returned.numpy(), stored, msg=w.path)
            if not np.array_equal(stored, raw.numpy()):
                differ.add(w.path.rsplit("/", 1)[-1])
        self.assertContainsSubset({"kernel", "moving_mean", "moving_variance"}, differ)
        # figures() runs with the sample grids, on the averaged weights, with fixed reals.
        self.assertEqual([c[:4] for c in calls], [(out, 2, (4, 32, 32, 3), 0),
                                                  (out, 4, (4, 32, 32, 3), 0)])
        self.assertAllEqual(calls[-1][4], exported.generator.get_layer("project").kernel)
        # The last sample grid shows the exported (averaged) generator on fixed noise.
        grid = iio.imread(os.path.join(out, "samples", "00000004.png"))
        x = np.asarray(exported.generate(4, seed=0))
        self.assertAllEqual(grid, images.table(images.grid(x)))

    @pytest.mark.slow
    def test_turning_the_average_on_at_resume_starts_it_from_the_restored_weights(self):
        out = self.run_dir("ema_on")
        training.train(tiny_config(self.folder, out, steps=4, ema=0.0), build_tiny)
        self.assertFalse(training.has_average(os.path.join(out, "checkpoints", "ckpt-4")))
        resumed = tiny_config(self.folder, out, steps=6, ema=0.5, allow_change="ema")
        done = run_python(f"""
            import sys
            sys.path.insert(0, {REPO!r})
            from ogan_ign import training
            from tests.tiny_runs import build_tiny, tiny_config
            training.train(tiny_config({self.folder!r}, {out!r}, steps=6, ema=0.5,
                                       allow_change="ema"), build_tiny)
            """)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertIn("the checkpoint of step 4 holds no weight average: the average "
                      "(--ema 0.5) starts from its weights", done.stdout)
        ckpt = checkpoint_values(out, 6)
        self.assertEqual(ckpt["average/count/.ATTRIBUTES/VARIABLE_VALUE"], 2.0)
        self.assertEqual(training.check_run_dir(resumed), [])

    def test_nan_loss_stops_naming_step_and_metric_and_keeps_the_checkpoint(self):
        out = self.run_dir("nan")

        def build_diverging(config, spec):
            model = build_tiny(config, spec)
            compute_terms = model.compute_terms

            def poisoned(x_real, z):  # from the 6th step on, the loss is NaN
                terms = compute_terms(x_real, z)
                terms["loss/total"] = tf.where(model.optimizer.iterations >= 5,
                                               tf.constant(np.nan, tf.float32), terms["loss/total"])
                return terms

            model.compute_terms = poisoned
            return model

        with self.assertRaisesRegex(training.TrainingDiverged,
                                    r"^loss/total is nan at step 6; stopped"):
            training.train(tiny_config(self.folder, out), build_diverging)
        ckpt_dir = os.path.join(out, "checkpoints")
        self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), os.path.join(ckpt_dir, "ckpt-4"))
        self.assertTrue(all(np.all(np.isfinite(v)) for v in checkpoint_values(out, 4).values()
                            if v.dtype.kind == "f"))
        self.assertFalse(os.path.exists(os.path.join(out, "model.keras")))

    def test_a_non_finite_weight_is_never_checkpointed(self):
        model = build_tiny(tiny_config(self.folder, "unused"), data.resolve(self.folder))
        model.compile()
        model.generator.get_layer("project").bias.assign(
            np.full(model.generator.get_layer("project").bias.shape, np.inf, np.float32))
        directory = self.run_dir("inf_weight")
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), directory, 1)
        with self.assertRaisesRegex(training.TrainingDiverged, r"project/bias is not finite at step 3"):
            training.save_checkpoint(model, manager, 3)
        self.assertIsNone(manager.latest_checkpoint)


if __name__ == "__main__":
    tf.test.main()
