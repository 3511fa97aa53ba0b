"""What a user sees while a run works: progress lines with elapsed time, ETA and
a rate that leaves out compiling; TensorBoard through tf.summary, with no empty
events file; the evaluation classifier saying what it does; evaluate.py checking
the model first; --help listing every flag; no TensorFlow start-up lines;
figures readable by everyone."""

import contextlib
import glob
import io
import os
import stat
import subprocess
import sys
import types

import pytest
import numpy as np
import tensorflow as tf

from ogan_ign import evaluation, images, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def events(logdir):
    """{tag: [(step, value)]} of the scalar and image summaries under logdir."""
    found = {}
    for path in glob.glob(os.path.join(logdir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                tensor = tf.make_ndarray(value.tensor)
                found.setdefault(value.tag, []).append(
                    (event.step, float(tensor) if plugin == "scalars" else plugin))
    return found


def script(name, *args):
    """A script run as a user runs it: TF_CPP_MIN_LOG_LEVEL not set."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = ROOT
    return subprocess.run([sys.executable, os.path.join(ROOT, name), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT)


class ProgressTest(tf.test.TestCase):

    def run_progress(self, logdir, compile_seconds=10.0):
        """Steps 1..6 of a fresh run, log_every 2, batch 64: the first step takes
        `compile_seconds`, every later one 1 s. Returns the printed lines."""
        config = training.Config(dataset="x", out_dir=logdir, steps=6, log_every=2,
                                 batch_size=64)
        iterations = tf.Variable(0, dtype=tf.int64)

        def clock():  # the time at the end of the current step
            step = int(iterations.numpy())
            return 0.0 if step == 0 else compile_seconds + step - 1

        progress = training.Progress(config, training.Summaries(logdir), True, 0, clock=clock)
        progress.set_model(types.SimpleNamespace(
            optimizer=types.SimpleNamespace(iterations=iterations), metrics=[],
            stop_training=False))
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            for step in range(1, 7):
                iterations.assign(step)
                progress.on_train_batch_end(step, {"loss/total": 0.5 * step})
        self.assertTrue(progress.model.stop_training)
        return out.getvalue().splitlines()

    def test_lines_show_elapsed_eta_and_a_rate_without_compiling(self):
        lines = self.run_progress(self.get_temp_dir())
        self.assertLen(lines, 3)
        # Step 2 at 11 s: one step of 64 images in the 1 s after compiling;
        # 4 steps left at 1 s each.
        self.assertTrue(lines[0].startswith("step 2/6  11s, ETA 4s  64.0 img/s  loss/total 1"),
                        lines[0])
        self.assertTrue(lines[1].startswith("step 4/6  13s, ETA 2s  64.0 img/s"), lines[1])
        self.assertTrue(lines[2].startswith("step 6/6  15s  64.0 img/s"), lines[2])

    def test_tensorboard_gets_the_scalars_through_tf_summary(self):
        logdir = os.path.join(self.get_temp_dir(), "logs")
        self.run_progress(logdir)
        found = events(logdir)
        self.assertEqual([step for step, _ in found["loss/total"]], [2, 4, 6])
        self.assertAllClose([v for _, v in found["loss/total"]], [1.0, 2.0, 3.0])
        self.assertAllClose([v for _, v in found["perf/images_per_second"]], [64.0] * 3)

    def test_durations(self):
        self.assertEqual([training.duration(s) for s in (4.4, 65, 3725)],
                         ["4s", "1m05s", "1h02m"])


class SummariesTest(tf.test.TestCase):

    def test_no_events_file_until_something_is_written(self):
        logdir = os.path.join(self.get_temp_dir(), "logs")
        writer = training.Summaries(logdir)
        writer.flush()
        self.assertEmpty(glob.glob(os.path.join(logdir, "*")))
        picture = np.zeros((5, 7, 3), np.uint8)
        with writer.as_default():
            training.write_image("samples", picture, 3)
        writer.flush()
        self.assertEqual(events(logdir), {"samples": [(3, "images")]})


class ClassifierTest(tf.test.TestCase):

    def test_says_it_trains_once_with_a_progress_bar_then_loads(self):
        rng = np.random.default_rng(0)
        train = (rng.uniform(-1, 1, (32, 28, 28, 1)).astype("float32"),
                 rng.integers(0, 10, 32))
        path = os.path.join(self.get_temp_dir(), "classifier.keras")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            evaluation.load_or_train_classifier(path, train, epochs=1, batch_size=16)
        said = out.getvalue()
        self.assertIn(f"training the evaluation classifier once (1 epochs on 32 images), "
                      f"cached at {path}", said)
        self.assertIn("2/2", said)  # Keras's progress bar: 2 batches of 16
        self.assertRegex(said, r"evaluation classifier trained in \d+ s")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            evaluation.load_or_train_classifier(path, train)
        self.assertIn(f"loading the evaluation classifier from {path}", out.getvalue())
        self.assertNotIn("training", out.getvalue())


class UserFacingTest(tf.test.TestCase):

    @pytest.mark.slow
    def test_evaluate_reports_a_broken_model_before_reading_any_data(self):
        broken = os.path.join(self.get_temp_dir(), "broken.keras")
        with open(broken, "w") as f:
            f.write("not a keras file")
        # The dataset does not exist either: the model is checked first.
        result = script("evaluate.py", f"--model={broken}",
                        f"--dataset={self.get_temp_dir()}/no_such_folder")
        self.assertEqual(result.returncode, 2, result.stderr)
        # One line, and no TensorFlow start-up lines around it.
        self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        self.assertTrue(result.stderr.startswith(f"error: cannot load {broken}"),
                        result.stderr)

    @pytest.mark.slow
    def test_help_lists_the_common_and_the_model_flags(self):
        result = script("train_gan.py", "--help")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--helpfull", result.stdout, result.stderr)
        self.assertEqual(result.stderr, "")
        for flag in ("--dataset", "--steps", "--batch_size", "--out_dir", "--lr",
                     "--mixed_precision", "--objective", "--penalty", "--z_dim"):
            self.assertIn(f"  {flag}", result.stdout)
        # The script's own defaults: the best measured GAN setting.
        section = result.stdout[result.stdout.index("  --objective"):]
        self.assertIn("(default: 'ns')", section.split("\n  --")[0])
        section = result.stdout[result.stdout.index("  --lr"):]
        self.assertIn("(default: '0.0002')", section.split("\n  --")[0])

    def test_figures_are_readable_by_everyone(self):
        path = images.save_grid(os.path.join(self.get_temp_dir(), "f", "grid.png"),
                                np.zeros((4, 8, 8, 1), np.float32))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o644)


if __name__ == "__main__":
    tf.test.main()
