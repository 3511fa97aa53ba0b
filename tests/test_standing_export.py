"""Tests of the export's standing statistics (ogan_ign/standing.py's exported_copy
and set_for_export) as evaluation scores a model: each network copy's statistics
against statistics set by hand, the model scored left as it was, and evaluate.py's
--standing_stats and --temperature."""

import json
import os
import shutil
import tempfile

import keras
import pytest
import numpy as np
import tensorflow as tf

from ogan_ign import evaluation, ign, standing
from test_evaluation import run_evaluate
from test_standing import randomise, statistics
from tiny_models import three_models


class ExportedCopyTest(tf.test.TestCase):

    def test_image_batches_walk_one_seeded_permutation_then_start_again(self):
        images = np.arange(10, dtype=np.float32).reshape(10, 1)
        make = standing.image_batches(images, 3, seed=4)
        drawn = np.concatenate([make(k).numpy()[:, 0] for k in range(3)])
        self.assertAllEqual(drawn, np.random.default_rng(4).permutation(10)[:9])
        self.assertAllEqual(make(3), make(0))
        with self.assertRaisesRegex(ValueError, "at least one batch of 3"):
            standing.image_batches(images[:2], 3)

    def scored_export(self, model, net):
        """(evaluation's export of `model` — standing statistics of 2 batches of 4,
        seed 5 — and the training images it read), `net`'s statistics checked
        untouched in `model`."""
        randomise(net)
        before = statistics(net)
        rng = np.random.default_rng(3)
        train = (rng.uniform(-1, 1, (12, 28, 28, 1)).astype(np.float32), None)
        settings = evaluation.ScoreSettings(standing_stats=2, standing_batch=4, seed=5)
        copy = evaluation.scores.exported(model, settings, train)
        self.assert_statistics(statistics(net), before)
        return copy, train

    def test_an_ign_is_scored_as_its_export_and_is_left_as_it_was(self):
        model = three_models(width=2)[2]
        copy, train = self.scored_export(model, model.f)
        self.assertIsNone(model.f_sampling)  # the model scored is untouched
        want = hand_statistics_of(model.f, [standing.image_batches(train[0], 4, 5)(k)
                                            for k in range(2)])
        self.assert_statistics(statistics(copy.f), want)
        noise = standing.model_noise(model, 4, 5)
        self.assert_statistics(statistics(copy.sampler),
                               hand_statistics_of(model.f, [noise(k) for k in range(2)]))
        # The refiner's: batches of the sampler's samples, as the outer f saw in training.
        self.assertIsNone(model.f_refining)
        self.assertIs(model.refiner, model.f)
        samples = [copy.sampler(noise(k), training=False) for k in range(2)]
        self.assert_statistics(statistics(copy.refiner), hand_statistics_of(model.f, samples))
        # generate, project and refine read three sets of one f's weights; saved and
        # loaded, all three stay.
        z = copy.make_noise(3, seed=0)
        y = copy.generate(z)
        self.assertAllClose(copy.refine(y), copy.f_refining(y, training=False), atol=1e-6)
        self.assertGreater(np.abs(copy.refine(y) - copy.project(y)).max(), 1e-4)
        self.assertAllClose(copy.apply(train[0][:3], 2)[-1],
                            copy.refine(copy.project(train[0][:3])), atol=1e-6)
        path = os.path.join(tempfile.mkdtemp(), "ign.keras")
        copy.compile()
        copy.save(path)
        loaded = keras.saving.load_model(path)
        for method in ("generate", "refine", "project"):
            self.assertAllClose(getattr(loaded, method)(y), getattr(copy, method)(y), atol=1e-6)
        with self.assertRaisesRegex(evaluation.EvaluationError, "need the training images"):
            evaluation.scores.exported(model, evaluation.ScoreSettings(standing_stats=2), None)

    def test_a_tempered_ign_keeps_the_statistics_of_its_training_noise(self):
        # The temperature moves the noise samples are drawn from, not what standing
        # statistics are measured on: the export of τ = 2 holds τ = 1's three sets
        # and samples them at 2·z (gaussian noise: mean 0).
        model = three_models(width=2)[2]
        cold, train = self.scored_export(model, model.f)
        hot_model = ign.IGN.from_config({**model.get_config(), "temperature": 2.0})
        hot_model.set_weights(model.get_weights())
        hot, _ = self.scored_export(hot_model, hot_model.f)
        for net in ("sampler", "f", "refiner"):
            self.assert_statistics(statistics(getattr(hot, net)), statistics(getattr(cold, net)))
        z = cold.make_noise(3, seed=0)
        self.assertAllClose(hot.generate(3, seed=0), cold.generate(2.0 * z), atol=1e-6)
        self.assertGreater(np.abs(hot.generate(3, seed=0) - cold.generate(z)).max(), 1e-3)

    def test_an_ogan_samples_with_noise_statistics_and_reconstructs_with_code_statistics(self):
        model = three_models(width=2)[1]
        copy, train = self.scored_export(model, model.generator)
        self.assertIsNone(model.generator_sampling)  # the model scored is untouched
        self.assertIs(model.sampler, model.generator)
        self.assertIsNot(copy.sampler, copy.generator)
        images = standing.image_batches(train[0], 4, 5)
        codes = [model.recon_scale * model.latent(images(k)) for k in range(2)]
        self.assert_statistics(statistics(copy.generator),
                               hand_statistics_of(model.generator, codes))
        noise = standing.model_noise(model, 4, 5)
        self.assert_statistics(statistics(copy.sampler),
                               hand_statistics_of(model.generator, [noise(k) for k in range(2)]))
        # generate reads the sampler, reconstruct G; saved and loaded, both stay.
        z = copy.make_noise(3, seed=0)
        self.assertAllClose(copy.generate(z), copy.generator_sampling(z, training=False))
        self.assertAllClose(copy.reconstruct(train[0][:3]), copy.generator(
            copy.recon_scale * copy.latent(train[0][:3]), training=False))
        path = os.path.join(tempfile.mkdtemp(), "ogan.keras")
        copy.compile()
        copy.save(path)
        loaded = keras.saving.load_model(path)
        self.assertAllClose(loaded.generate(z), copy.generate(z), atol=1e-6)
        self.assertAllClose(loaded.reconstruct(train[0][:3]), copy.reconstruct(train[0][:3]),
                            atol=1e-6)
        self.assertGreater(np.abs(loaded.generate(z) - loaded.generator(z)).max(), 1e-4)

    def assert_statistics(self, got, expected):
        self.assertLen(got, len(expected))
        for (mean, var), (mean_e, var_e) in zip(got, expected):
            self.assertAllClose(mean, mean_e, atol=1e-4)
            self.assertAllClose(var, var_e, atol=1e-4)


def hand_statistics_of(net, batches):
    """Standing statistics of `net` on `batches`, measured on a copy of it."""
    copy = standing.network_copy(net)
    standing.set_standing_statistics(copy, lambda k: batches[k], len(batches))
    return statistics(copy)


@pytest.mark.slow
class EvaluateScriptTest(tf.test.TestCase):

    def evaluate(self, *args):
        return run_evaluate(*args)

    def test_standing_stats_flag_changes_the_samples_and_is_recorded(self):
        from ogan_ign import data  # pylint: disable=import-outside-toplevel
        try:
            data.resolve("fashion_mnist", image_size=28)
        except data.DataError:
            self.skipTest("Fashion-MNIST is not installed")
        tmp = tempfile.mkdtemp(prefix="test_standing_")
        self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
        evaluation.build_classifier(image_size=28).save(os.path.join(tmp, "c.keras"))
        model = three_models(width=4, z_dim=8)[0]
        for bn in standing.measured_layers(model.sampler):
            bn.moving_mean.assign(bn.moving_mean + 0.3)
        model.compile()
        model.save(os.path.join(tmp, "gan.keras"))
        common = [f"--model={tmp}/gan.keras", "--dataset=fashion_mnist", "--image_size=28",
                  f"--classifier={tmp}/c.keras", "--num_samples=40", "--num_real=40",
                  "--probe_examples=0", "--kid_subsets=2", "--kid_subset_size=20"]
        fids = {}
        for count in (0, 2):
            output = os.path.join(tmp, f"metrics_{count}.json")
            result = self.evaluate(*common, f"--standing_stats={count}", f"--output={output}")
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            with open(output) as f:
                stored = json.load(f)["evaluation"]
            self.assertEqual((stored["standing_stats"], stored["standing_batch"]),
                             (count, standing.BATCH_SIZE))
            fids[count] = stored["fid"]
        self.assertNotAlmostEqual(fids[0], fids[2], places=6)
        # An IGN at another temperature than its own (IGN's own tests check the
        # samples): recorded with the scores.
        ign_model = three_models(width=4)[2]
        ign_model.compile()
        ign_model.save(os.path.join(tmp, "ign.keras"))
        recorded = []
        for temperature in ([], ["--temperature=1.5"]):
            output = os.path.join(tmp, f"ign{len(temperature)}.json")
            result = self.evaluate(*common[1:], f"--model={tmp}/ign.keras", f"--output={output}",
                                   *temperature)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            with open(output) as f:
                recorded.append(json.load(f)["evaluation"]["temperature"])
        self.assertEqual(recorded, [1.0, 1.5])
        result = self.evaluate("--floor", "--dataset=fashion_mnist", "--standing_stats=2",
                               f"--output={tmp}/floor.json")
        self.assertEqual(result.returncode, 2)
        self.assertIn("error: --floor scores the data itself: --standing_stats",
                      result.stderr)
