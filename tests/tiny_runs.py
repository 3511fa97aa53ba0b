"""Tiny training runs for the driver's tests: 32 px images from a folder of
random PNGs, width 8, z_dim 8, batch 8, a dozen steps of a SingleLossGAN, and a
test case with a folder of its own (`RunTestCase`), and the run-safety tests'
case (`SafetyCase`: runs that checkpoint and sample every 4 steps, one error line)."""

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from ogan_ign import networks, training
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


class RunTestCase(tf.test.TestCase):
    """A test case whose runs share one temporary folder (`root`) with a folder
    of images (`folder`) in it; `reference()` trains the uninterrupted
    12-step run once per class. A subclass may set `n_images` and `prefix`."""

    n_images = 48              # in the shared folder
    prefix = "test_training_"  # of the temporary folder's name

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = tempfile.mkdtemp(prefix=cls.prefix)
        cls.folder = write_folder(os.path.join(cls.root, "images"), n=cls.n_images)
        cls._reference = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)
        super().tearDownClass()

    def run_dir(self, name):
        return os.path.join(self.root, name)

    def reference(self):
        """An uninterrupted 12-step run, shared by the resume tests."""
        if type(self)._reference is None:
            out = self.run_dir("reference")
            training.train(tiny_config(self.folder, out), build_tiny)
            type(self)._reference = out
        return type(self)._reference


def exit_of(call):
    """(exit status, stdout, stderr) of a cli call that ends in sys.exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            call()
            status = None
        except SystemExit as e:
            status = e.code
    return status, out.getvalue(), err.getvalue()


class SafetyCase(RunTestCase):
    """RunTestCase for the run-safety tests (test_run_safety, test_run_lock,
    test_run_errors): 16 images, 12-step runs that checkpoint and sample every 4
    steps, and the check that a failure printed exactly one error line."""

    n_images = 16

    def config(self, name, **overrides):
        settings = dict(steps=12, ckpt_every=4, sample_every=4, log_every=4)
        settings.update(overrides)
        return tiny_config(self.folder, self.run_dir(name), **settings)

    def assert_one_error_line(self, stderr, *parts):
        lines = [line for line in stderr.splitlines() if line.strip()]
        self.assertLen(lines, 1, stderr)
        self.assertTrue(lines[0].startswith("error: "), lines[0])
        for part in parts:
            self.assertIn(part, lines[0])
        return lines[0]
