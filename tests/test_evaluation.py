"""FID, KID and precision / recall against closed forms and hand-computed values;
the encoder and idempotence metrics on tiny models; evaluate.py's one-line errors."""

import json
import os
import subprocess
import sys
import tempfile
import types
from unittest import mock

import pytest
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import evaluation, ign, networks
from ogan_ign.gan import SingleLossGAN
from ogan_ign.ogan import OGAN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_evaluate(*args):
    """evaluate.py in a fresh process, its output captured."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(ROOT, "evaluate.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)


class FrechetTest(tf.test.TestCase):

    def test_one_dimension(self):
        # N(0, 1) vs N(1, 4): 1² + 1 + 4 − 2·√(1·4) = 2.
        self.assertAllClose(evaluation.frechet_gaussians([0.0], [[1.0]], [1.0], [[4.0]]), 2.0)

    def test_diagonal(self):
        # ‖(1, 2)‖² + (1 + 4) + (4 + 9) − 2(√4 + √36) = 5 + 18 − 16 = 7.
        value = evaluation.frechet_gaussians([0.0, 0.0], np.diag([1.0, 4.0]),
                                             [1.0, 2.0], np.diag([4.0, 9.0]))
        self.assertAllClose(value, 7.0)

    def test_non_commuting_covariances(self):
        # 2×2: Tr √M = √(tr M + 2√det M) for M = Σ1Σ2 = [[2, 3], [1, 6]]:
        # √(8 + 2·3) = √14, so FID = tr Σ1 + tr Σ2 − 2√14 = 8 − 2√14.
        cov1 = np.array([[2.0, 1.0], [1.0, 2.0]])
        cov2 = np.diag([1.0, 3.0])
        value = evaluation.frechet_gaussians(np.zeros(2), cov1, np.zeros(2), cov2)
        self.assertAllClose(value, 8.0 - 2.0 * np.sqrt(14.0))
        self.assertAllClose(evaluation.frechet_gaussians(np.zeros(2), cov2, np.zeros(2), cov1),
                            value)

    def test_singular_covariance(self):
        # Rank-1 Σ (as dead ReLU features give): still finite and exact.
        cov = np.array([[1.0, 1.0], [1.0, 1.0]])
        self.assertAllClose(evaluation.frechet_gaussians(np.zeros(2), cov, np.zeros(2), cov), 0.0,
                            atol=1e-7)

    def test_samples_match_closed_form(self):
        rng = np.random.default_rng(0)
        a = rng.standard_normal((20000, 3))
        b = rng.standard_normal((20000, 3)) * [1.0, 2.0, 3.0] + [1.0, 0.0, 0.0]
        # 1 + (3 + 14) − 2(1 + 2 + 3) = 6.
        self.assertAllClose(evaluation.frechet_distance(a, b), 6.0, atol=0.15)
        self.assertAllClose(evaluation.frechet_distance(a, a), 0.0, atol=1e-8)


class KernelDistanceTest(tf.test.TestCase):

    def test_hand_computed(self):
        # d = 1, k(a, b) = (ab + 1)³; x = {0, 1}, y = {1, 2}:
        # off-diagonal k_xx = 1, k_yy = 27, mean k_xy = (1 + 1 + 8 + 27)/4 = 9.25;
        # MMD² = 1 + 27 − 2·9.25 = 9.5.
        self.assertAllClose(evaluation.polynomial_mmd2([[0.0], [1.0]], [[1.0], [2.0]]), 9.5)

    def test_same_law_near_zero_and_different_law_large(self):
        rng = np.random.default_rng(1)
        a, b = rng.standard_normal((2000, 8)), rng.standard_normal((2000, 8))
        same, same_std = evaluation.kernel_distance(a, b, num_subsets=10, subset_size=500)
        self.assertLess(abs(same), 3 * same_std + 1e-3)
        far, _ = evaluation.kernel_distance(a, b + 1.0, num_subsets=10, subset_size=500)
        self.assertGreater(far, 100 * abs(same))

    def test_unbiased(self):
        # The average over many small subsets stays near 0 for equal laws (the
        # biased V-statistic would sit at a clearly positive value).
        rng = np.random.default_rng(2)
        values = [evaluation.polynomial_mmd2(rng.standard_normal((20, 4)),
                                             rng.standard_normal((20, 4))) for _ in range(400)]
        self.assertLess(abs(np.mean(values)), 3 * np.std(values) / np.sqrt(len(values)))


class PrecisionRecallTest(tf.test.TestCase):

    def test_radii_hand_computed(self):
        points = np.array([[0.0], [1.0], [3.0], [7.0]])
        # k = 1: nearest other point; k = 2: second nearest (squared distances).
        self.assertAllClose(evaluation.knn_radii(points, k=1), [1.0, 1.0, 4.0, 16.0])
        self.assertAllClose(evaluation.knn_radii(points, k=2), [9.0, 4.0, 9.0, 36.0])

    def test_hand_computed(self):
        real = np.array([[0.0], [1.0], [2.0], [3.0]])
        fake = np.array([[0.5], [10.0]])
        # Real balls have radius 1: 0.5 is inside, 10 is not → precision 1/2.
        # Fake balls have radius 9.5: every real point is within 9.5 of 0.5 → recall 1.
        self.assertAllClose(evaluation.precision_recall(real, fake, k=1), (0.5, 1.0))

    def test_identical_far_and_collapsed(self):
        rng = np.random.default_rng(3)
        real = rng.standard_normal((500, 4))
        self.assertAllClose(evaluation.precision_recall(real, real), (1.0, 1.0))
        self.assertAllClose(evaluation.precision_recall(real, real + 100.0), (0.0, 0.0))
        # Mode collapse: realistic samples (precision high) from a small part of
        # the data (recall low).
        collapsed = real[np.argsort(real[:, 0])[-50:]]
        collapsed = np.repeat(collapsed, 10, axis=0) + 0.01 * rng.standard_normal((500, 4))
        precision, recall = evaluation.precision_recall(real, collapsed)
        self.assertGreater(precision, 0.9)
        self.assertLess(recall, 0.3)

    def test_sample_metrics_keys(self):
        rng = np.random.default_rng(4)
        metrics = evaluation.sample_metrics(rng.standard_normal((100, 3)),
                                            rng.standard_normal((100, 3)), kid_subsets=5,
                                            kid_subset_size=50)
        self.assertEqual(set(metrics),
                         {"fid", "kid", "kid_std", "precision", "recall", "coverage"})

    def test_coverage_hand_computed(self):
        real = np.array([[0.0], [1.0], [3.0], [7.0]])
        # k = 1 squared radii [1, 1, 4, 16] (test_radii_hand_computed): balls [−1, 1],
        # [0, 2], [1, 5], [3, 11]. Fakes 1.5 and 20: 1.5 lies in the balls of 1 and 3;
        # 0's ball ends at 1 and 7's at 11 → coverage 2/4.
        self.assertAllClose(evaluation.coverage(real, np.array([[1.5], [20.0]]), k=1), 0.5)
        self.assertAllEqual(evaluation.covered(real, np.array([[1.5], [20.0]]), k=1),
                            [False, True, True, False])
        # A fake beside each real point covers all. Two far fakes: their balls
        # (radius 50) reach every real point, so recall is 1; no real ball holds
        # a fake, so coverage is 0.
        self.assertAllClose(evaluation.coverage(real, real + 0.1, k=1), 1.0)
        far = np.array([[50.0], [100.0]])
        self.assertAllClose(evaluation.precision_recall(real, far, k=1)[1], 1.0)
        self.assertAllClose(evaluation.coverage(real, far, k=1), 0.0)


class HoldOutTest(tf.test.TestCase):

    def test_last_images_are_held_out_in_order(self):
        images, labels = np.arange(5)[:, None], np.arange(5) * 10
        (kept, kept_labels), (held, held_labels) = evaluation.hold_out((images, labels), 2)
        self.assertAllEqual(kept[:, 0], [0, 1, 2])
        self.assertAllEqual(kept_labels, [0, 10, 20])
        self.assertAllEqual(held[:, 0], [3, 4])
        self.assertAllEqual(held_labels, [30, 40])
        (kept, none), (held, none_too) = evaluation.hold_out((images, None), 1)
        self.assertEqual((len(kept), len(held), none, none_too), (4, 1, None, None))

    def test_nothing_left_is_refused(self):
        for count in (0, 5, 6):
            with self.assertRaisesRegex(ValueError, "0 < count < 5"):
                evaluation.hold_out((np.zeros((5, 1)), None), count)


class PixelMetricsTest(tf.test.TestCase):

    def test_rms_distance(self):
        a = np.zeros((2, 2, 2, 1))
        b = np.stack([np.ones((2, 2, 1)), np.full((2, 2, 1), 2.0)])
        self.assertAllClose(evaluation.rms_distance(a, b), 1.5)

    def test_idempotence_gap(self):
        y = np.random.default_rng(5).uniform(-2, 2, (10, 4, 4, 1)).astype(np.float32)
        self.assertAllClose(evaluation.idempotence_gap(lambda x: np.clip(x, -1, 1), y, 3), 0.0)
        # f(x) = x/2: RMS(y/4, y/2) = RMS(y)/4.
        expected = evaluation.rms_distance(y / 4, np.zeros_like(y))
        self.assertAllClose(evaluation.idempotence_gap(lambda x: x / 2, y, 3), expected)
        # An outer f of its own: f(x) = x/2, again(x) = 3x: RMS(3y/2, y/2) = RMS(y).
        self.assertAllClose(evaluation.idempotence_gap(lambda x: x / 2, y, 3,
                                                       again=lambda x: 3 * x),
                            evaluation.rms_distance(y, np.zeros_like(y)))

    def test_label_agreement(self):
        x = np.random.default_rng(6).uniform(-1, 1, (50, 8, 8, 1)).astype(np.float32)
        classifier = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                       keras.layers.Dense(3)])
        self.assertEqual(evaluation.label_agreement(classifier, x, x), 1.0)
        flipped = evaluation.label_agreement(classifier, x, -x)
        self.assertLess(flipped, 1.0)


class FeatureTest(tf.test.TestCase):

    def test_classifier_features(self):
        classifier = evaluation.build_classifier(image_size=8)
        features = evaluation.embed(evaluation.classifier_features(classifier),
                                    np.zeros((3, 8, 8, 1)))
        self.assertEqual(features.shape, (3, 128))
        self.assertEqual(features.dtype, np.float64)

    def test_inception_needs_a_weights_file(self):
        with self.assertRaisesRegex(evaluation.EvaluationError, "cannot be downloaded"):
            evaluation.inception_features(None, 32, 1)
        with self.assertRaisesRegex(evaluation.EvaluationError, "not found"):
            evaluation.inception_features("/nonexistent/inception.h5", 32, 1)


class EvaluateModelTest(tf.test.TestCase):
    """Every model kind goes through evaluate_model with the metrics that apply."""

    def setUp(self):
        rng = np.random.default_rng(7)
        self.x = rng.uniform(-1, 1, (40, 28, 28, 1)).astype(np.float32)
        self.y = np.arange(40) % 4
        self.classifier = evaluation.build_classifier(image_size=28, num_classes=4)
        self.features = evaluation.classifier_features(self.classifier)

    def evaluate(self, model):
        return evaluation.evaluate_model(model, self.features, self.classifier,
                                         (self.x, self.y), (self.x, self.y), num_samples=30,
                                         probe_examples=40, kid_subsets=2, kid_subset_size=20)

    def test_gan_ogan_ign_and_bare_generator(self):
        generator = networks.dcgan_generator(28, 1, z_dim=8, width=8)
        gan_metrics = self.evaluate(SingleLossGAN(generator, networks.dcgan_encoder(
            28, 1, 1, 8, name="critic")))
        self.assertContainsSubset({"fid", "kid", "precision", "recall", "effective_classes"},
                                  gan_metrics)
        self.assertNotIn("recon_agreement", gan_metrics)
        self.assertNotIn("idem_gap", gan_metrics)
        bare = self.evaluate(generator)
        self.assertAllClose(bare["fid"], gan_metrics["fid"])  # same noise, same generator

        ogan_metrics = self.evaluate(OGAN(networks.dcgan_encoder(28, 1, 8, 8),
                                          networks.dcgan_generator(28, 1, 8, 8)))
        self.assertContainsSubset({"probe_encoder", "probe_untrained", "probe_pixels",
                                   "recon_agreement", "recon_rms"}, ogan_metrics)
        self.assertNotIn("idem_gap", ogan_metrics)

        f = networks.dcgan_autoencoder(28, 1, latent=8, width=8)
        model = ign.IGN(f, noise="gaussian")
        ign_metrics = self.evaluate(model)
        self.assertContainsSubset({"idem_gap", "idem_gap_data", "recon_agreement", "recon_rms",
                                   "ff_fid", "ff_recall", "ff_coverage", "ff_effective_classes"},
                                  ign_metrics)
        self.assertNotIn("probe_encoder", ign_metrics)
        self.assertNotIn("ff_fid", ogan_metrics)
        self.assertAllClose(ign_metrics["recon_l1"],
                            np.mean(np.abs(model.project(self.x).numpy() - self.x)), rtol=1e-5)
        # f(f(z)) scored as the samples are: FID of the refiner applied to the samples.
        samples = evaluation.generate_samples(model, 30, 0)
        twice = model.refine(samples).numpy()
        self.assertAllClose(ign_metrics["ff_fid"], evaluation.frechet_distance(
            evaluation.embed(self.features, self.x), evaluation.embed(self.features, twice)),
            rtol=1e-4)
        self.assertNotAllClose(ign_metrics["ff_fid"], ign_metrics["fid"])
        for metrics in (gan_metrics, ogan_metrics, ign_metrics):
            self.assertTrue(all(np.isfinite(v) for v in metrics.values()))

    def test_floor_of_identical_sets(self):
        metrics = evaluation.evaluate_data(self.features, self.classifier, (self.x, self.y),
                                           (self.x, self.y), probe_examples=40, kid_subsets=2,
                                           kid_subset_size=20)
        self.assertAllClose(metrics["fid"], 0.0, atol=1e-6)
        self.assertAllClose((metrics["precision"], metrics["recall"]), (1.0, 1.0))
        self.assertIn("probe_pixels", metrics)


class EncoderProbesTest(tf.test.TestCase):

    def test_untrained_copy_has_the_shape_and_fresh_weights(self):
        encoder = networks.dcgan_encoder(28, 1, 8, 8)
        for w in encoder.weights:
            w.assign(tf.ones_like(w))
        fresh = evaluation.untrained_copy(encoder, seed=3)
        again = evaluation.untrained_copy(encoder, seed=3)
        self.assertEqual([w.shape for w in fresh.weights], [w.shape for w in encoder.weights])
        kernel = [w for w in fresh.weights if "kernel" in w.path][0]
        self.assertNotAllClose(kernel, tf.ones_like(kernel))  # not the trained weights
        for a, b in zip(fresh.weights, again.weights):  # seeded
            self.assertAllEqual(a, b)

    def test_the_three_probes(self):
        rng = np.random.default_rng(2)
        labels = np.arange(60) % 3
        # Images whose class is written in their mean brightness: pixels separate them.
        x = (labels[:, None, None, None] - 1) * 0.5 + 0.1 * rng.normal(size=(60, 28, 28, 1))
        model = OGAN(networks.dcgan_encoder(28, 1, 8, 8), networks.dcgan_generator(28, 1, 8, 8))
        probes = evaluation.encoder_probes(model, (x[:40], labels[:40]), (x[40:], labels[40:]),
                                           examples=40)
        self.assertEqual(set(probes), {"probe_encoder", "probe_untrained", "probe_pixels"})
        self.assertEqual(probes["probe_pixels"], 1.0)
        ridge = evaluation.encoder_probes(model, (x[:40], labels[:40]), (x[40:], labels[40:]),
                                          examples=40, probe="ridge")
        self.assertEqual(ridge["probe_pixels"],
                         evaluation.linear_probe(x[:40], labels[:40], x[40:], labels[40:]))


class RunClassifierTest(tf.test.TestCase):

    def test_each_split_is_resolved_once(self):
        """Resolving a folder decodes it whole: run_classifier does it once per split."""
        resolved = []

        def resolve(dataset, *, split="train", **kwargs):
            resolved.append(split)
            return types.SimpleNamespace(name=dataset, image_size=kwargs["image_size"],
                                         channels=1, labelled=dataset == "labelled", split=split)

        def load_arrays(spec, limit=None):
            del limit
            return np.zeros((2, 8, 8, 1)), np.array([0, 1]) if spec.split == "train" else None

        config = types.SimpleNamespace(dataset="labelled", data_dir=None, image_size=8,
                                       channels=None)
        with mock.patch("ogan_ign.data.Catalog.resolve",
                        lambda catalog, dataset, **kwargs: resolve(dataset, **kwargs)), \
                mock.patch("ogan_ign.data.load_arrays", load_arrays), \
                mock.patch("ogan_ign.evaluation.classifier.load_or_train_classifier",
                           lambda path, train, test: (path, test)):
            path, test = evaluation.run_classifier(config)
            self.assertEqual(resolved, ["train", "test"])
            self.assertEqual(path, evaluation.default_classifier_path(resolve("labelled",
                                                                              image_size=8)))
            self.assertEqual(test[0].shape, (2, 8, 8, 1))
            resolved.clear()
            config.dataset = "folder"
            self.assertEqual(evaluation.run_classifier(config), (None, None))
            self.assertEqual(resolved, ["train"])


@pytest.mark.slow
class EvaluateScriptTest(tf.test.TestCase):

    def run_script(self, *args):
        return run_evaluate(*args)

    @staticmethod
    def errors(result):
        return [line for line in result.stderr.splitlines() if line.startswith("error:")]

    def test_bad_input_is_one_line(self):
        with tempfile.TemporaryDirectory() as tmp:
            result = self.run_script(f"--run_dir={tmp}")
            self.assertEqual(result.returncode, 2)
            # TensorFlow's own start-up lines may precede ours.
            self.assertEqual(self.errors(result),
                             [f"error: {tmp} is not a run folder: no config.json"])
            with open(os.path.join(tmp, "config.json"), "w") as f:
                json.dump({"dataset": "fashion_mnist"}, f)
            result = self.run_script(f"--run_dir={tmp}")
            self.assertEqual(result.returncode, 2)
            self.assertEqual(len(self.errors(result)), 1)
            self.assertIn("no model.keras", self.errors(result)[0])
            self.assertNotIn("Traceback", result.stderr)
            result = self.run_script(f"--run_dir={tmp}", "--temperature=0")
            self.assertEqual(self.errors(result), ["error: --temperature needs an IGN to sample "
                                                   "from and must be > 0, got 0.0"])
            # A model other than an IGN: refused once opened, before any data is read.
            generator = networks.dcgan_generator(28, 1, z_dim=8, width=8)
            gan = SingleLossGAN(generator, networks.dcgan_encoder(28, 1, 1, 8, name="critic"))
            gan.compile()
            gan.save(os.path.join(tmp, "gan.keras"))
            result = self.run_script(f"--model={tmp}/gan.keras", "--dataset=no_such_data",
                                     "--temperature=1.1")
            self.assertEqual(self.errors(result), [f"error: --temperature is IGN's; "
                                                   f"{tmp}/gan.keras holds a SingleLossGAN"])

    def test_saved_model_to_merged_json(self):
        from ogan_ign import data  # pylint: disable=import-outside-toplevel
        try:
            data.resolve("fashion_mnist", image_size=28)
        except data.DataError:
            self.skipTest("Fashion-MNIST is not installed")
        with tempfile.TemporaryDirectory() as tmp:
            # An untrained tiny classifier stands in for the cached one.
            evaluation.build_classifier(image_size=28).save(os.path.join(tmp, "c.keras"))
            generator = networks.dcgan_generator(28, 1, z_dim=8, width=8)
            model = SingleLossGAN(generator, networks.dcgan_encoder(28, 1, 1, 8, name="critic"))
            model.compile()
            model.save(os.path.join(tmp, "gan.keras"))
            output = os.path.join(tmp, "metrics.json")
            with open(output, "w") as f:
                json.dump({"steps": 7}, f)
            result = self.run_script(
                f"--model={tmp}/gan.keras", "--dataset=fashion_mnist", "--image_size=28",
                f"--classifier={tmp}/c.keras", "--num_samples=40", "--num_real=40",
                "--probe_examples=0", "--kid_subsets=2", "--kid_subset_size=20",
                f"--output={output}")
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertIn("fid", result.stdout.strip().splitlines()[-1])
            with open(output) as f:
                stored = json.load(f)
            self.assertEqual(stored["steps"], 7)  # the training script's keys stay
            self.assertEqual(stored["evaluation"]["kind"], "SingleLossGAN")
            self.assertEqual(stored["evaluation"]["num_samples"], 40)
            self.assertTrue(np.isfinite(stored["evaluation"]["fid"]))
            self.assertEqual(stored["evaluation"]["reference"], "test")
            # The validation reference: the last --num_real training images.
            result = self.run_script(
                f"--model={tmp}/gan.keras", "--dataset=fashion_mnist", "--image_size=28",
                f"--classifier={tmp}/c.keras", "--num_samples=40", "--num_real=40",
                "--probe_examples=0", "--kid_subsets=2", "--kid_subset_size=20",
                "--reference=validation", f"--output={tmp}/validation.json")
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            with open(os.path.join(tmp, "validation.json")) as f:
                validation = json.load(f)["evaluation"]
            self.assertEqual(validation["reference"], "validation")
            # Same samples, other reference images: another FID.
            self.assertNotAlmostEqual(validation["fid"], stored["evaluation"]["fid"], places=6)
