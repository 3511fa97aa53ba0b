"""Tests of the training driver (ogan_ign/training/) and the common flags.

Tiny everything: 32 px images from a folder of 48 random PNGs, width 8, z_dim 8,
batch 8, a dozen steps. Exact resume is checked bit for bit on the CPU with
TensorFlow's default settings (same machine, same thread count).
"""

import contextlib
import dataclasses
import glob
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from unittest import mock

from absl import flags
import pytest
import imageio.v3 as iio
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import averaging, data, images, networks, training
from ogan_ign import cli as common
from ogan_ign.gan import SingleLossGAN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_folder(path, n=48, size=32, seed=0):
    """A folder of n random RGB PNGs: the smallest real dataset."""
    os.makedirs(path, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        iio.imwrite(os.path.join(path, f"{i:03d}.png"),
                    rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return path


def tiny_config(dataset, out_dir, **overrides):
    # float32 pinned: the default "auto" would make the numbers depend on the CPU.
    settings = dict(dataset=dataset, out_dir=out_dir, image_size=32, batch_size=8, steps=12,
                    ckpt_every=4, sample_every=0, log_every=4, num_samples=4, ema=0.9,
                    mixed_precision="fp32",
                    model={"width": 8, "z_dim": 8})
    settings.update(overrides)
    return training.Config(**settings)


def build_tiny(config, spec):
    hp = config.model
    generator = networks.dcgan_generator(spec.image_size, spec.channels, hp["z_dim"], hp["width"])
    critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, hp["width"], name="critic")
    return SingleLossGAN(generator, critic, seed=config.seed)


def checkpoint_values(run_dir, step):
    """Every variable of checkpoint `step` by name: weights, slots, EMA, counters."""
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints", f"ckpt-{step}"))
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if not name.startswith("_CHECKPOINTABLE_OBJECT_GRAPH")
            and "save_counter" not in name}


def subprocess_env():
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    return env


def run_python(code, *args, timeout=300):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], cwd=REPO,
                          env=subprocess_env(), capture_output=True, text=True, timeout=timeout)


class TrainingTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix="test_training_")
        cls.folder = write_folder(os.path.join(cls.root, "images"))
        cls._reference = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def run_dir(self, name):
        return os.path.join(self.root, name)

    def reference(self):
        """An uninterrupted 12-step run, shared by the resume tests."""
        if TrainingTest._reference is None:
            out = self.run_dir("reference")
            training.train(tiny_config(self.folder, out), build_tiny)
            TrainingTest._reference = out
        return TrainingTest._reference

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
            from tests.test_training import build_tiny, tiny_config

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
            from tests.test_training import build_tiny, tiny_config
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

    # ------------------------------------------------------------ precision

    def test_auto_precision_is_bf16_only_on_native_bfloat16_hardware(self):
        resolve = training.resolve_precision
        sapphire, old_xeon = {"avx512f", "amx_bf16", "amx_tile"}, {"avx2", "avx512f"}
        for args, expected in (
                (dict(gpu_capabilities=[(8, 0), (9, 0)], cpu=old_xeon), "bf16"),
                (dict(gpu_capabilities=[(8, 0), (7, 5)], cpu=sapphire), "fp32"),
                (dict(gpu_capabilities=[None], cpu=sapphire), "fp32"),  # no capability known
                (dict(gpu_capabilities=[], cpu={"avx512_bf16"}), "bf16"),
                (dict(gpu_capabilities=[], cpu=sapphire), "bf16"),
                (dict(gpu_capabilities=[], cpu=old_xeon), "fp32"),
                (dict(gpu_capabilities=[], cpu=set()), "fp32")):
            with self.subTest(**args):
                self.assertEqual(resolve("auto", **args)[0], expected)
        # An explicit choice is kept whatever the hardware.
        for name in ("fp32", "bf16", "fp16"):
            self.assertEqual(resolve(name, gpu_capabilities=[], cpu=set())[0], name)
        # Older spellings are read as their words.
        for old, name in (("off", "fp32"), ("float32", "fp32"), ("mixed_bfloat16", "bf16"),
                          ("mixed_float16", "fp16")):
            self.assertEqual(resolve(old, gpu_capabilities=[], cpu=set())[0], name)
        # This machine: the CPU flags decide when no GPU is visible.
        if not tf.config.list_physical_devices("GPU"):
            native = bool({"amx_bf16", "avx512_bf16"} & training.cpu_flags())
            self.assertEqual(resolve("auto")[0], "bf16" if native else "fp32")

    def test_auto_filter_gradient_is_as_conv_only_where_measured_faster(self):
        resolve = training.resolve_filter_gradient
        zen, sapphire = {"avx512f", "avx512_bf16"}, {"avx512_bf16", "amx_bf16", "amx_tile"}
        for precision, gpus, cpu, expected in (
                ("bf16", [], zen, "as_conv"),
                ("fp32", [], zen, "native"),      # slower in float32 (README, speed)
                ("bf16", [], sapphire, "native"),  # AMX: not measured
                ("bf16", ["GPU:0"], zen, "native"),
                ("bf16", [], {"avx2"}, "native")):
            with self.subTest(precision=precision, gpus=gpus, cpu=sorted(cpu)):
                self.assertEqual(resolve("auto", precision, gpus=gpus, cpu=cpu)[0], expected)
        for name in ("native", "as_conv"):
            self.assertEqual(resolve(name, "fp32", gpus=[], cpu=set()), (name, "as asked"))

    def test_as_conv_filter_gradient_trains_the_same_step(self):
        # The run's nets get conv_gradient's layers; in float32 the step's
        # weights match a native run's to float32 rounding, and the choice is
        # recorded in config.json's "run".
        from ogan_ign import conv_gradient
        weights = {}
        for kind in ("native", "as_conv"):
            out = self.run_dir(f"dw_{kind}")
            model = training.train(tiny_config(self.folder, out, steps=2, mixed_precision="fp32",
                                               filter_gradient=kind), build_tiny)
            convs = conv_gradient.installed(model.generator) + conv_gradient.installed(
                model.critic)
            self.assertEqual(convs > 0, kind == "as_conv")
            weights[kind] = model.get_weights()
            with open(os.path.join(out, "config.json")) as f:
                self.assertEqual(json.load(f)["run"]["filter_gradient"], kind)
        for a, b in zip(weights["as_conv"], weights["native"]):
            self.assertAllClose(a, b, rtol=1e-4, atol=1e-5)

    def test_bf16_runs_and_restores_the_global_policy(self):
        out = self.run_dir("bf16")
        model = training.train(tiny_config(self.folder, out, steps=2, mixed_precision="bf16"),
                               build_tiny)
        self.assertEqual(model.generator.get_layer("project").compute_dtype, "bfloat16")
        self.assertEqual(keras.mixed_precision.global_policy().name, "float32")
        self.assertTrue(os.path.exists(os.path.join(out, "model.keras")))

    def test_a_run_folder_with_the_old_precision_words_resumes_without_complaint(self):
        # Before fp32 / bf16 / fp16, config.json held mixed_precision "off" and
        # the run's Keras policy name; flagfiles may still say --mixed_precision off.
        out = self.run_dir("old_words")
        training.train(tiny_config(self.folder, out, steps=2, ckpt_every=2), build_tiny)
        path = os.path.join(out, "config.json")
        with open(path) as f:
            stored = json.load(f)
        self.assertEqual((stored["mixed_precision"], stored["run"]["precision"]), ("fp32", "fp32"))
        stored["mixed_precision"], stored["run"]["precision"] = "off", "float32"
        training.write_json(path, stored)
        for word in ("off", "fp32"):
            self.assertEqual(training.check_run_dir(
                tiny_config(self.folder, out, steps=4, mixed_precision=word)), [])
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            model = training.train(tiny_config(self.folder, out, steps=4, ckpt_every=2,
                                               mixed_precision="off"), build_tiny)
        self.assertEqual(training.global_step(model), 4)
        self.assertIn("precision fp32 (as asked); filter gradient native (auto: fp32 step); "
                      "resuming at step 2", printed.getvalue())
        with open(path) as f:
            self.assertEqual(json.load(f)["mixed_precision"], "fp32")
        with self.assertRaisesRegex(training.ConfigError, "mixed_precision: 'fp32' → 'bf16'"):
            training.check_run_dir(tiny_config(self.folder, out, steps=6, mixed_precision="bf16"))

    def test_a_setting_added_since_a_run_was_written_resumes_as_its_default(self):
        # config.json of a run made before a setting existed lacks its key: it
        # counts as the setting's default, top-level and in the model's settings.
        @dataclasses.dataclass(frozen=True)
        class Settings:
            width: int = 8
            z_dim: int = 8
            later: str = ""

        out = self.run_dir("later_setting")
        config = tiny_config(self.folder, out, steps=2, ckpt_every=2, model=Settings())
        training.train(config, lambda c, spec: build_tiny(
            dataclasses.replace(c, model=dataclasses.asdict(c.model)), spec))
        path = os.path.join(out, "config.json")
        with open(path) as f:
            stored = json.load(f)
        del stored["model"]["later"], stored["ema"]
        training.write_json(path, stored)
        self.assertEqual(training.check_run_dir(
            dataclasses.replace(config, steps=4, ema=0.0)), [])
        with self.assertRaisesRegex(training.ConfigError, "model: .*'later': 'color'"):
            training.check_run_dir(dataclasses.replace(config, steps=4,
                                                       model=Settings(later="color")))
        with self.assertRaisesRegex(training.ConfigError, "ema: 0.0 → 0.9"):
            training.check_run_dir(config)

    # ------------------------------------------------------------ bad input

    def assert_config_error(self, config, pattern, error=training.ConfigError, build=build_tiny):
        with self.assertRaisesRegex(error, pattern) as raised:
            training.train(config, build)
        self.assertNotIn("\n", str(raised.exception))
        self.assertFalse(os.path.exists(config.out_dir), f"{config.out_dir} was written")

    def test_every_invalid_value_fails_with_one_line_before_any_file(self):
        out = self.run_dir("never")
        cases = [
            (dict(dataset=""), "--dataset is required"),
            (dict(out_dir=""), "--out_dir is required"),
            (dict(image_size=0), "--image_size must be a positive integer, got 0"),
            (dict(batch_size=0), "--batch_size must be a positive integer, got 0"),
            (dict(batch_size=-8), "--batch_size must be a positive integer, got -8"),
            (dict(steps=-1), "--steps must be a positive integer, got -1"),
            (dict(ckpt_every=0), "--ckpt_every must be a positive integer"),
            (dict(log_every=-5), "--log_every must be a positive integer"),
            (dict(num_samples=0), "--num_samples must be a positive integer"),
            (dict(sample_every=-1), "--sample_every must be >= 0, got -1"),
            (dict(seed=-3), "--seed must be >= 0, got -3"),
            (dict(channels=2), "--channels must be 1 or 3, got 2"),
            (dict(lr=0.0), "--lr must be positive, got 0.0"),
            (dict(lr=-1e-4), "--lr must be positive"),
            (dict(lr=float("nan")), "--lr must be positive, got nan"),
            (dict(ema=1.0), r"--ema must be in \[0, 1\)"),
            (dict(ema=-0.5), r"--ema must be in \[0, 1\)"),
            (dict(strategy="gpus"), "--strategy must be one of auto, default, mirrored"),
            (dict(jit_compile="yes"), "--jit_compile must be one of auto, on, off, got 'yes'"),
            (dict(mixed_precision="fp8"), "--mixed_precision must be one of auto, fp32, bf16, fp16"),
            (dict(model={"width": 8, "z_dim": 8, "bad": object()}), "not JSON-able"),
        ]
        for overrides, pattern in cases:
            with self.subTest(**{k: str(v) for k, v in overrides.items()}):
                config = dataclasses.replace(tiny_config(self.folder, out), **overrides)
                if config.out_dir:
                    self.assert_config_error(config, pattern)
                else:
                    with self.assertRaisesRegex(training.ConfigError, pattern):
                        training.train(config, build_tiny)

    def test_data_model_and_run_folder_errors_fail_before_any_file(self):
        out = self.run_dir("never2")
        self.assert_config_error(tiny_config(os.path.join(self.root, "missing"), out),
                                 "no such folder", error=data.DataError)
        self.assert_config_error(tiny_config("no_such_dataset_xyz", out), "",
                                 error=data.DataError)
        self.assert_config_error(tiny_config(self.folder, out, image_size=30),
                                 "image size 30 is not supported", error=data.DataError)
        self.assert_config_error(tiny_config(self.folder, out, model={"width": 0, "z_dim": 8}),
                                 "width must be positive")
        self.assert_config_error(tiny_config(self.folder, out, strategy="tpu"),
                                 "--strategy=tpu: no TPU found")

        # A folder with a checkpoint: --noresume refuses it, so does another config.
        done = self.run_dir("done")
        training.train(tiny_config(self.folder, done, steps=1), build_tiny)
        before = sorted(os.listdir(os.path.join(done, "checkpoints")))
        with self.assertRaisesRegex(training.ConfigError, "already holds checkpoints"):
            training.train(tiny_config(self.folder, done, steps=2, resume=False), build_tiny)
        with self.assertRaisesRegex(training.ConfigError,
                                    r"another config \(lr: 0\.0001 → 0\.001\)"):
            training.train(tiny_config(self.folder, done, steps=2, lr=1e-3), build_tiny)
        self.assertEqual(sorted(os.listdir(os.path.join(done, "checkpoints"))), before)

    @pytest.mark.slow
    def test_batch_not_divisible_by_replicas_and_a_two_replica_run(self):
        # Two logical CPUs give MirroredStrategy two replicas; this must be set up
        # before TensorFlow starts, hence a fresh process.
        out, bad = self.run_dir("mirrored"), self.run_dir("mirrored_bad")
        result = run_python(f"""
            import os, sys
            import tensorflow as tf
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(
                cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            sys.path.insert(0, {REPO!r})
            from ogan_ign import training
            from ogan_ign.training import devices
            from tests.test_training import build_tiny, tiny_config
            devices.make_strategy = lambda name: tf.distribute.MirroredStrategy(
                ["/cpu:0", "/cpu:1"])
            try:
                training.train(tiny_config({self.folder!r}, {bad!r}, batch_size=9,
                                           strategy="mirrored"), build_tiny)
            except training.ConfigError as e:
                print("ConfigError:", e)
            print("bad folder exists:", os.path.exists({bad!r}))
            model = training.train(tiny_config({self.folder!r}, {out!r}, steps=2, ckpt_every=2,
                                               strategy="mirrored"), build_tiny)
            print("replicas:", model.distribute_strategy.num_replicas_in_sync,
                  "step:", training.global_step(model))
            # A second two-replica run in the same process (a notebook's second
            # cell): its strategy's collectives must not clash with the first's.
            again = training.train(tiny_config({self.folder!r}, {out!r} + "_again", steps=2,
                                               ckpt_every=2, strategy="mirrored"), build_tiny)
            print("again:", training.global_step(again),
                  max(abs(a - b).max() for a, b in zip(model.get_weights(), again.get_weights())))
            """)
        self.assertEqual(result.returncode, 0, result.stderr[-3000:])
        self.assertIn("ConfigError: --batch_size 9 is not divisible by the 2 replicas of "
                      "--strategy=mirrored", result.stdout)
        self.assertIn("bad folder exists: False", result.stdout)
        self.assertIn("replicas: 2 step: 2", result.stdout)
        self.assertIn("again: 2 0.0", result.stdout)  # and the same weights: same seed
        self.assertTrue(os.path.exists(os.path.join(out, "model.keras")))

    # ------------------------------------------------------------ flags

    def parse(self, *argv):
        values = flags.FlagValues()
        common.define_common_flags(values, out_dir="runs/test", lr=2e-4)
        values(["prog", *argv])
        return common.config_from_flags(values, model={"width": 8, "z_dim": 8})

    def test_flags_become_the_config_and_flagfile_works(self):
        config = self.parse(f"--dataset={self.folder}", "--steps=7", "--noresume",
                            "--strategy=default", "--ema=0.999")
        self.assertEqual(config, training.Config(
            dataset=self.folder, out_dir="runs/test", lr=2e-4, steps=7, resume=False,
            strategy="default", ema=0.999, model={"width": 8, "z_dim": 8}))
        flagfile = os.path.join(self.root, "test.flags")
        with open(flagfile, "w") as f:
            f.write(f"--dataset={self.folder}\n--batch_size=16\n--mixed_precision=bf16\n")
        config = self.parse(f"--flagfile={flagfile}", "--seed=3")
        self.assertEqual((config.batch_size, config.mixed_precision, config.seed),
                         (16, "bf16", 3))
        # An older flagfile's word is read as this vocabulary's.
        self.assertEqual(self.parse(f"--dataset={self.folder}", "--mixed_precision=off")
                         .mixed_precision, "fp32")
        with self.assertRaises(TypeError):
            common.define_common_flags(flags.FlagValues(), stepz=3)

    def test_invalid_flags_fail_at_parse_or_validation(self):
        for argv in (["--steps=many"], ["--lr=fast"], ["--resume=maybe"], ["--nosuchflag=1"]):
            with self.subTest(argv=argv), self.assertRaises(flags.Error):
                self.parse(f"--dataset={self.folder}", *argv)
        dataset = f"--dataset={self.folder}"
        for argv, pattern in (([dataset, "--steps=-1"], "--steps must be a positive"),
                              ([dataset, "--ema=1"], "--ema must be in"),
                              ([dataset, "--strategy=tpus"], "--strategy must be one of"),
                              ([dataset, "--jit_compile=1"], "--jit_compile must be one of"),
                              ([dataset, "--mixed_precision=fp64"],
                               "--mixed_precision must be one of auto, fp32, bf16, fp16"),
                              ([], "--dataset is required")):
            with self.subTest(argv=argv):
                with self.assertRaisesRegex(training.ConfigError, pattern):
                    training.validate(self.parse(*argv))


if __name__ == "__main__":
    tf.test.main()
