"""The quiet start (ogan_ign/quiet.py, reached through the top-level quiet_start.py)."""

import os
import subprocess
import sys
from unittest import mock

import pytest
import tensorflow as tf

from ogan_ign import quiet

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What a script does first, then what the test looks at: the level left for the
# rest of the run, and whether the package (which imports TensorFlow) came after.
PROGRAM = """
import os, sys
import quiet_start
import ogan_ign, tensorflow as tf
tf.config.list_logical_devices()
print(os.environ.get("TF_CPP_MIN_LOG_LEVEL"))
"""


def run(env):
    return subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


class QuietStartTest(tf.test.TestCase):

    def test_does_nothing_once_tensorflow_is_imported(self):
        with mock.patch.dict(os.environ):
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
            quiet.start()
            self.assertNotIn("TF_CPP_MIN_LOG_LEVEL", os.environ)

    @pytest.mark.slow
    def test_hides_the_start_up_lines_and_leaves_errors_visible(self):
        env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
        env["PYTHONPATH"] = REPO
        done = run(env)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertEqual(done.stdout.strip(), "2")  # errors still shown after the start
        self.assertEqual(done.stderr, "")

    @pytest.mark.slow
    def test_the_users_level_is_kept_and_nothing_is_hidden(self):
        env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="0")
        done = run(env)
        self.assertEqual(done.returncode, 0, done.stderr[-3000:])
        self.assertEqual(done.stdout.strip(), "0")
