"""Keras-native import and export: `model.export(dir)` writes a SavedModel whose
signatures equal the model's methods (float32 in and out, whatever the policy);
it and the sub-networks saved alone load in a fresh process that never imports
ogan_ign; a whole model loads there after `import ogan_ign` (Keras's rule for
registered classes); .keras files of the older fused BatchNorm still load."""

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from unittest import mock

import pytest
import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import gan, networks, standing
from tiny_models import three_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run in a fresh interpreter. It must not import ogan_ign until the last part.
FRESH = """
import json, sys
import numpy as np, keras, tensorflow as tf
tmp = sys.argv[1]
inputs = dict(np.load(tmp + "/inputs.npz"))
out = {}
exported = tf.saved_model.load(tmp + "/ogan_export")
out["signatures"] = sorted(exported.signatures)
out["generate"] = exported.generate(inputs["z"]).numpy().tolist()
out["reconstruct"] = exported.reconstruct(inputs["x"]).numpy().tolist()
generator = keras.saving.load_model(tmp + "/generator.keras")
out["generator"] = np.asarray(generator(inputs["z"])).tolist()
f = keras.saving.load_model(tmp + "/f.keras")
out["f"] = np.asarray(f(inputs["x"])).tolist()
try:
    keras.saving.load_model(tmp + "/ogan.keras")
    out["whole_without_import"] = "loaded"
except Exception as e:  # Keras: "Could not locate class 'OGAN'"
    out["whole_without_import"] = type(e).__name__
out["ogan_ign_imported_before"] = "ogan_ign" in sys.modules
import ogan_ign  # the README's one line
whole = keras.saving.load_model(tmp + "/ogan.keras")
out["whole"] = np.asarray(whole.generate(inputs["z"])).tolist()
print(json.dumps(out))
"""


class ExportTest(tf.test.TestCase):

    def test_signatures_equal_the_methods_in_float32_under_bf16(self):
        rng = np.random.default_rng(1)
        z = rng.normal(size=(3, 4)).astype("float32")
        x = rng.uniform(-1, 1, (3, 28, 28, 1)).astype("float32")
        _, o, i = three_models("bf16", ign_noise="fourier")  # OGAN's generate and sample are SingleLossGAN's
        # IGN's image methods take a float32 tensor (e.g. samples) under bf16 as they take numpy.
        for method in (i.project, i.refine):
            self.assertAllClose(method(tf.constant(x)), method(x))
        with tempfile.TemporaryDirectory() as tmp:
            for model, expected in (
                    (o, {"generate": ((z,), o.generate(z)),
                         "sample": ((3, 7), o.generate(3, seed=7)),
                         "encode": ((x,), o.encode(x)),
                         "reconstruct": ((x,), o.reconstruct(x))}),
                    (i, {"generate": ((x,), i.generate(x)),
                         "sample": ((3, 7), i.generate(3, seed=7)),
                         "apply": ((x, 2), i.apply(x, 2)[-1]),
                         "project": ((x,), i.project(x)),
                         "refine": ((x,), i.refine(x))})):
                name = type(model).__name__
                path = model.export(os.path.join(tmp, name))
                loaded = tf.saved_model.load(path)
                self.assertEqual(sorted(loaded.signatures),
                                 sorted(list(expected) + ["serving_default"]), name)
                for endpoint, (args, want) in expected.items():
                    with self.subTest(model=name, endpoint=endpoint):
                        args = [tf.constant(a, tf.int64) if k == 1 and endpoint == "sample"
                                else tf.constant(a, tf.int32) if isinstance(a, int) else a
                                for k, a in enumerate(args)]
                        got = getattr(loaded, endpoint)(*args)
                        self.assertEqual(got.dtype, tf.float32)
                        self.assertEqual(want.dtype, tf.float32)
                        self.assertAllClose(got, want, atol=2e-2)

    def test_an_ign_with_sampling_and_refining_copies_serves_each_for_its_endpoint(self):
        rng = np.random.default_rng(2)
        x = rng.uniform(-1, 1, (3, 28, 28, 1)).astype("float32")
        i = three_models()[2]
        for w in i.f.trainable_weights:  # an output away from 0
            w.assign(rng.normal(0.0, 0.3, w.shape).astype("float32"))
        (sampling, _), (f, _), (refining, _) = i.standing_targets()
        for shift, net in ((0.5, sampling), (-0.5, refining)):  # statistics of their own
            for bn in standing.measured_layers(net):
                bn.moving_mean.assign(bn.moving_mean + shift)
        self.assertGreater(np.abs(i.generate(x) - i.project(x)).max(), 1e-3)
        self.assertGreater(np.abs(i.refine(x) - i.project(x)).max(), 1e-3)
        loaded = tf.saved_model.load(i.export(os.path.join(self.get_temp_dir(), "ign")))
        self.assertAllClose(loaded.generate(x), i.generate(x), atol=1e-5)
        self.assertAllClose(loaded.project(x), f(x, training=False), atol=1e-5)
        self.assertAllClose(loaded.refine(x), refining(x, training=False), atol=1e-5)
        # apply: f on x, then the refiner on f's outputs.
        self.assertAllClose(loaded.apply(x, tf.constant(2)),
                            refining(f(x, training=False), training=False), atol=1e-5)
        self.assertAllClose(loaded.sample(tf.constant(3), tf.constant(7, tf.int64)),
                            i.generate(3, seed=7), atol=1e-5)

    def test_export_refuses_other_formats(self):
        single = gan.SingleLossGAN(networks.dcgan_generator(28, 1, z_dim=4, width=2),
                                   networks.dcgan_encoder(28, 1, 1, width=2, name="critic"))
        with self.assertRaisesRegex(ValueError, "tf_saved_model"):
            single.export(os.path.join(self.get_temp_dir(), "x"), format="onnx")

    @pytest.mark.slow
    def test_fresh_process_loads_exports_and_subnetworks_without_ogan_ign(self):
        _, o, i = three_models(ign_noise="fourier")
        o.compile()
        rng = np.random.default_rng(2)
        z = rng.normal(size=(3, 4)).astype("float32")
        x = rng.uniform(-1, 1, (3, 28, 28, 1)).astype("float32")
        with tempfile.TemporaryDirectory() as tmp:
            o.export(os.path.join(tmp, "ogan_export"))
            o.generator.save(os.path.join(tmp, "generator.keras"))
            i.f.save(os.path.join(tmp, "f.keras"))
            o.save(os.path.join(tmp, "ogan.keras"))
            np.savez(os.path.join(tmp, "inputs.npz"), z=z, x=x)
            result = subprocess.run(
                [sys.executable, "-c", FRESH, tmp], capture_output=True, text=True,
                env=dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2"))
        self.assertEqual(result.returncode, 0, msg=result.stderr[-2000:])
        out = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertFalse(out["ogan_ign_imported_before"])
        self.assertEqual(out["signatures"],
                         ["encode", "generate", "reconstruct", "sample", "serving_default"])
        self.assertAllClose(out["generate"], o.generate(z), atol=1e-5)
        self.assertAllClose(out["reconstruct"], o.reconstruct(x), atol=1e-5)
        self.assertAllClose(out["generator"], o.generator(z), atol=1e-5)
        self.assertAllClose(out["f"], i.f(x), atol=1e-5)
        # Keras resolves a custom model class only once its package is imported;
        # the README says so in one line, and that line works.
        self.assertNotEqual(out["whole_without_import"], "loaded")
        self.assertAllClose(out["whole"], o.generate(z), atol=1e-5)


class OldBatchNormTest(tf.test.TestCase):

    def test_a_file_with_the_fused_batchnorm_still_loads(self):
        keras.utils.set_random_seed(3)
        x_in = keras.Input((4, 4, 2))
        old = keras.Model(x_in, networks.BatchNorm(name="bn")(layers.Conv2D(2, 3)(x_in)))
        x = np.random.default_rng(3).normal(size=(5, 4, 4, 2)).astype("float32")
        old(x, training=True)  # moves the moving statistics off their start
        path = os.path.join(self.get_temp_dir(), "old.keras")
        old.save(path)
        with zipfile.ZipFile(path) as archive:
            self.assertIn("ogan_ign>BatchNorm", archive.read("config.json").decode())
        # Without networks.BatchNorm registered such a file does not load: the class is
        # kept for these files.
        with mock.patch.dict(keras.saving.get_custom_objects()):
            del keras.saving.get_custom_objects()["ogan_ign>BatchNorm"]
            with self.assertRaisesRegex(TypeError, "BatchNorm"):
                keras.saving.load_model(path)
        loaded = keras.saving.load_model(path)
        self.assertIsInstance(loaded.get_layer("bn"), networks.BatchNorm)
        self.assertAllClose(loaded.get_layer("bn").moving_mean, old.get_layer("bn").moving_mean)
        self.assertAllClose(loaded(x), old(x), atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
