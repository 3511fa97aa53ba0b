"""Tests of bad input to a training run: every invalid setting, missing data or
model and a run folder another config owns fail with one line before any file
is written; flags become the config, flagfiles included. Runs:
tests/tiny_runs.py."""

import dataclasses
import os

from absl import flags
import tensorflow as tf

from ogan_ign import data, training
from ogan_ign import cli as common
from ogan_ign.settings import hparam
from tiny_runs import RunTestCase, build_tiny, tiny_config


@dataclasses.dataclass(frozen=True)
class SampledTiny:
    """The tiny model's settings with one that changes only how it samples."""
    width: int = hparam(8, "width")
    z_dim: int = hparam(8, "z_dim")
    temperature: float = hparam(1.0, "sampling only", resumable=True)


class InputTest(RunTestCase):

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
            (dict(lr_decay=-0.1), r"--lr_decay must be in \[0, 1\] \(0 = constant\), got -0.1"),
            (dict(lr_decay=1.5), r"--lr_decay must be in \[0, 1\]"),
            (dict(lr_decay=float("nan")), r"--lr_decay must be in \[0, 1\].*got nan"),
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
        # A model setting is named by itself, not as the whole model's settings.
        with self.assertRaisesRegex(training.ConfigError,
                                    r"another config \(width: 8 → 16\); use the same flags"):
            training.train(tiny_config(self.folder, done, steps=2,
                                       model={"width": 16, "z_dim": 8}), build_tiny)
        # A model setting declared resumable (how a run samples) may change on resume,
        # the others may not; the run's config.json never held it (its default then).
        sampled = dataclasses.replace(tiny_config(self.folder, done, steps=2),
                                      model=SampledTiny(temperature=1.5))
        self.assertEqual(training.check_run_dir(sampled), [])
        with self.assertRaisesRegex(training.ConfigError,
                                    r"another config \(z_dim: 8 → 4\); use the same flags"):
            training.check_run_dir(dataclasses.replace(
                sampled, model=SampledTiny(z_dim=4, temperature=1.5)))
        self.assertEqual(sorted(os.listdir(os.path.join(done, "checkpoints"))), before)

    def test_resumable_run_settings_are_the_watched_and_placed_ones(self):
        # The `resumable` marks on Config's fields: how a run is watched, placed or
        # sampled; nothing that changes what a step computes or the data it reads.
        self.assertEqual(training.RESUMABLE_CHANGES, {
            "steps", "sample_every", "ckpt_every", "log_every", "resume", "strategy",
            "jit_compile", "data_dir", "out_dir", "num_samples", "allow_change",
            "standing_stats", "cache_dir", "filter_gradient", "batchnorm"})
        for computes in ("dataset", "image_size", "batch_size", "lr", "lr_decay", "seed",
                         "mixed_precision", "ema", "model"):
            self.assertNotIn(computes, training.RESUMABLE_CHANGES)

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
