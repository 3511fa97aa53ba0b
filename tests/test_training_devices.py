"""Tests of the training driver's hardware paths: what `--mixed_precision auto`
and `--filter_gradient auto` resolve to, a bf16 run, older precision words and
settings added since a run was written, and a two-replica MirroredStrategy run.
Runs: tests/tiny_runs.py."""

import contextlib
import dataclasses
import io
import json
import os

import pytest
import keras
import tensorflow as tf

from ogan_ign import training
from tiny_runs import REPO, RunTestCase, build_tiny, run_python, tiny_config

class DevicesTest(RunTestCase):

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
        self.check_same_step("filter_gradient", conv_gradient.KERNEL, "native", "as_conv")

    def test_fused_batchnorm_trains_the_same_step(self):
        # --batchnorm fused (the default) runs every BatchNorm of the nets on
        # TensorFlow's fused kernel: the same step as Keras's ops to float32
        # rounding, recorded in config.json's "run".
        from ogan_ign import fused_batchnorm
        self.check_same_step("batchnorm", fused_batchnorm.KERNEL, "keras", "fused")

    def check_same_step(self, flag, kernel, off, on):
        from ogan_ign import kernels
        weights = {}
        for kind in (off, on):
            out = self.run_dir(f"{flag}_{kind}")
            model = training.train(tiny_config(self.folder, out, steps=2, mixed_precision="fp32",
                                               **{flag: kind}), build_tiny)
            changed = sum(kernels.installed(net, kernel) for net in model.nets)
            self.assertEqual(changed > 0, kind == on)
            weights[kind] = model.get_weights()
            with open(os.path.join(out, "config.json")) as f:
                self.assertEqual(json.load(f)["run"][flag], kind)
        for a, b in zip(weights[on], weights[off]):
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
                      "fused BatchNorm; resuming at step 2", printed.getvalue())
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
        with self.assertRaisesRegex(training.ConfigError, r"; later: '' → 'color'\)"):
            training.check_run_dir(dataclasses.replace(config, steps=4,
                                                       model=Settings(later="color")))
        with self.assertRaisesRegex(training.ConfigError, "ema: 0.0 → 0.9"):
            training.check_run_dir(config)

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
            from tests.tiny_runs import build_tiny, tiny_config
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


if __name__ == "__main__":
    tf.test.main()
