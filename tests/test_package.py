"""The package as users meet it: every model saved as .keras loads in a fresh
Python process that imports nothing but ogan_ign (and keras)."""

import os
import subprocess
import sys
import tempfile

import pytest
import numpy as np
import tensorflow as tf

from ogan_ign import IGN, OGAN, SingleLossGAN, TwoPlayerGAN, networks

LOAD = """
import sys, numpy as np, keras, ogan_ign
model = keras.saving.load_model(sys.argv[1])
z = np.load(sys.argv[2])
np.save(sys.argv[3], np.asarray(model.generate(z)))
print(type(model).__name__)
"""


def tiny_models():
    def gen():
        return networks.dcgan_generator(28, 1, z_dim=8, width=4)

    def enc(z_dim, name="encoder"):
        return networks.dcgan_encoder(28, 1, z_dim=z_dim, width=4, name=name)

    return {
        "SingleLossGAN": (SingleLossGAN(gen(), enc(1, "critic")), (3, 8)),
        "TwoPlayerGAN": (TwoPlayerGAN(gen(), enc(1, "critic")), (3, 8)),
        "OGAN": (OGAN(enc(8), gen()), (3, 8)),
        "IGN": (IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=4)), (3, 28, 28, 1)),
    }


@pytest.mark.slow
class FreshProcessLoadTest(tf.test.TestCase):

    def test_every_model_loads_after_importing_only_ogan_ign(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            for name, (model, z_shape) in tiny_models().items():
                with self.subTest(model=name):
                    model.compile()
                    path = os.path.join(tmp, f"{name}.keras")
                    model.save(path)
                    z = rng.normal(size=z_shape).astype("float32")
                    np.save(os.path.join(tmp, "z.npy"), z)
                    out = os.path.join(tmp, "out.npy")
                    result = subprocess.run(
                        [sys.executable, "-c", LOAD, path, os.path.join(tmp, "z.npy"), out],
                        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=root))
                    self.assertEqual(result.returncode, 0, msg=result.stderr[-1500:])
                    self.assertEqual(result.stdout.strip().splitlines()[-1], name)
                    self.assertAllClose(np.load(out), model.generate(z), atol=1e-5)


@pytest.mark.slow
class ScriptErrorTest(tf.test.TestCase):
    """What users type first, `python train_ign.py --dataset celeba_hq`, on a
    machine without the data: one line, exit status 2, no run folder."""

    def test_every_script_answers_missing_celeba_hq_with_one_line(self):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        for script, extra in (("train_ign.py", ["--coverage_every=10"]), ("train_ogan.py", []),
                              ("train_gan.py", [])):
            with self.subTest(script=script), tempfile.TemporaryDirectory() as tmp:
                out = os.path.join(tmp, "run")
                result = subprocess.run(
                    [sys.executable, os.path.join(root, script), "--dataset=celeba_hq",
                     f"--data_dir={tmp}", f"--out_dir={out}"] + extra,
                    capture_output=True, text=True, timeout=120,
                    env=dict(os.environ, PYTHONPATH=root))
                self.assertEqual(result.returncode, 2, msg=result.stderr[-1500:])
                self.assertNotIn("Traceback", result.stderr)
                last = result.stderr.strip().splitlines()[-1]
                self.assertStartsWith(last, "error: ")
                self.assertIn("celeb_a_hq", last)
                self.assertIn("downloads/manual", last)
                self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    tf.test.main()
