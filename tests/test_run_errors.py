"""One error format for every user mistake: a flag the parser refuses, an
unusable --out_dir, multi_worker without TF_CONFIG, a folder without write
permission — one line starting "error: ", exit status 2, before anything is built."""

import dataclasses
import errno
import os
import subprocess
import sys
from unittest import mock

from absl import flags
import pytest
import tensorflow as tf

from ogan_ign import cli, training
from ogan_ign.training import run_folder
from tests.tiny_runs import REPO, SafetyCase, build_tiny, exit_of, subprocess_env


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """A model without settings, for cli.main_config."""


class RunErrorsTest(SafetyCase):

    prefix = "test_run_errors_"

    # ----------------------------------------------------- #14.6 one error format

    def flag_values(self):
        values = flags.FlagValues()
        cli.define_common_flags(values, dataset=self.folder)
        return values

    def test_flag_parse_errors_are_one_line_and_exit_2(self):
        for argv, part in ((["--steps=abc"], "error: flag --steps=abc: invalid literal for int()"),
                           (["--stepz=3"], "error: Unknown command line flag 'stepz'"),
                           (["--flagfile=/no/such.flags"], "error: "),
                           (["--resume=maybe"], "error: ")):
            with self.subTest(argv=argv):
                values = self.flag_values()
                status, stdout, stderr = exit_of(lambda: cli.parse_flags(["prog", *argv], values))
                self.assertEqual(status, 2)
                self.assertEqual(stdout, "")
                self.assertTrue(self.assert_one_error_line(stderr).startswith(part), stderr)
        self.assertEqual(cli.parse_flags(["prog", "--steps=3", "extra"], self.flag_values()),
                         ["prog", "extra"])

    @pytest.mark.slow
    def test_scripts_use_the_one_line_parser(self):
        done = subprocess.run([sys.executable, "train_gan.py", "--steps=abc",
                               f"--out_dir={self.run_dir('never_cli')}"], cwd=REPO,
                              env=subprocess_env(), capture_output=True, text=True, timeout=300)
        self.assertEqual(done.returncode, 2, done.stderr[-3000:])
        self.assertEqual(done.stderr.strip().splitlines()[-1],
                         "error: flag --steps=abc: invalid literal for int() with base 10: 'abc'")
        self.assertNotIn("USAGE", done.stdout + done.stderr)
        self.assertNotIn("--helpshort", done.stdout + done.stderr)
        self.assertFalse(os.path.exists(self.run_dir("never_cli")))
        for script in ("train_gan.py", "train_ogan.py", "train_ign.py", "evaluate.py"):
            with open(os.path.join(REPO, script)) as f:
                source = f.read()
            self.assertIn("\n    cli.run(main)\n", source, script)
            self.assertNotIn("app.run(", source, script)

    def test_an_unusable_out_dir_or_multi_worker_without_tf_config_is_one_line(self):
        a_file = os.path.join(self.root, "a_file")
        with open(a_file, "w") as f:
            f.write("x")
        for out_dir, message in (
                ("/proc/ogan_ign_run", "error: --out_dir /proc/ogan_ign_run is not usable: "
                                       "cannot create a folder in /proc (No such file or "
                                       "directory)"),
                (a_file, f"error: --out_dir {a_file} is a file, not a folder"),
                (os.path.join(a_file, "run"),
                 f"error: --out_dir {a_file}/run: {a_file} is a file, not a folder")):
            with self.subTest(out_dir=out_dir):
                values = self.flag_values()
                values(["prog", f"--out_dir={out_dir}"])
                status, _, stderr = exit_of(lambda: cli.main_config(["prog"], NoSettings,
                                                                    values))
                self.assertEqual(status, 2)
                self.assertEqual(self.assert_one_error_line(stderr), message)
                # The library refuses it too, before building anything.
                with self.assertRaisesRegex(training.ConfigError, "--out_dir"):
                    training.train(dataclasses.replace(self.config("x"), out_dir=out_dir), None)
        self.assertEqual(os.listdir("/proc").count("ogan_ign_run"), 0)

        with mock.patch.dict(os.environ):
            os.environ.pop("TF_CONFIG", None)
            with self.assertRaisesRegex(training.ConfigError,
                                        r"^--strategy=multi_worker needs the cluster in "
                                        r"TF_CONFIG"):
                training.make_strategy("multi_worker")
            out = self.run_dir("multi_worker")
            with self.assertRaises(training.ConfigError):
                training.train(self.config("multi_worker", strategy="multi_worker"), build_tiny)
            self.assertFalse(os.path.exists(out))

    def test_no_write_permission_is_one_line_before_anything_is_built(self):
        # Mode bits do not stop root (the suite may run as root) and the venv may not
        # run as another user, so the refused mkdir is simulated where it happens.
        parent = os.path.join(self.root, "read_only")
        os.makedirs(parent)
        values = self.flag_values()
        values(["prog", f"--out_dir={parent}/run"])
        with mock.patch.object(run_folder.tempfile, "mkdtemp",
                               side_effect=PermissionError(errno.EACCES, "Permission denied")):
            status, _, stderr = exit_of(lambda: cli.main_config(["prog"], NoSettings, values))
        self.assertEqual(status, 2)
        self.assertEqual(self.assert_one_error_line(stderr),
                         f"error: --out_dir {parent}/run is not usable: cannot create a folder "
                         f"in {parent} (Permission denied)")
        self.assertEqual(os.listdir(parent), [])


if __name__ == "__main__":
    tf.test.main()
