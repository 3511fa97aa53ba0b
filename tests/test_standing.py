"""Tests of standing statistics (ogan_ign/standing.py): the moving statistics
against the mean of the batch statistics computed by hand in numpy, the restore,
generate's option on the three models, the weight average, and no change when off
(the export's copies as evaluation scores them: test_standing_export.py)."""

import os
import shutil
import tempfile

import keras
import imageio.v3 as iio
import numpy as np
import tensorflow as tf

from ogan_ign import averaging, data, evaluation, ign, images, networks, standing, training
from replicas import mirrored
from tiny_models import three_models
from tiny_runs import build_tiny, tiny_config, write_folder


def dense_bn(depth=1):
    """Dense → BatchNorm, `depth` times, on 3 inputs."""
    inputs = keras.Input((3,))
    h = inputs
    for i in range(depth):
        h = keras.layers.Dense(4 - i, name=f"dense{i}")(h)
        h = keras.layers.BatchNormalization(name=f"bn{i}")(h)
    return keras.Model(inputs, h)


def randomise(net, seed=0):
    """Weights away from their initial values (γ ≠ 1, β ≠ 0 included)."""
    rng = np.random.default_rng(seed)
    for w in net.trainable_weights:
        w.assign(rng.normal(0.5, 0.4, w.shape).astype(np.float32))


def hand_statistics(net, batches):
    """[(mean over k of μ_k, mean over k of σ²_k)] per BatchNorm layer, in float64:
    each layer sees the output of the layers before it in training mode (normalised
    by their batch statistics); σ² biased, as Keras's."""
    per_layer = {}
    for z in batches:
        h = np.asarray(z, np.float64)
        for layer in net.layers[1:]:
            w = [np.asarray(v, np.float64) for v in layer.weights]
            if isinstance(layer, keras.layers.Dense):
                h = h @ w[0] + w[1]
                continue
            gamma, beta = w[0], w[1]
            mu, var = h.mean(0), h.var(0)
            per_layer.setdefault(layer.name, []).append((mu, var))
            h = gamma * (h - mu) / np.sqrt(var + layer.epsilon) + beta
    return [tuple(np.mean(np.stack(v), 0) for v in zip(*moments))
            for moments in per_layer.values()]


def build_tiny_ign(config, spec):
    f = networks.dcgan_autoencoder(spec.image_size, spec.channels, latent=8,
                                   width=config.model["width"])
    return ign.IGN(f, noise="gaussian", seed=config.seed)


def statistics(net):
    return [(bn.moving_mean.numpy(), bn.moving_variance.numpy())
            for bn in standing.measured_layers(net)]


def noise_batches(n_batches, batch_size=5, dim=3, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(batch_size, dim)).astype(np.float32) for _ in range(n_batches)]


class StandingStatisticsTest(tf.test.TestCase):

    def assert_statistics(self, got, expected, atol=1e-6):
        self.assertLen(got, len(expected))
        for (mean, var), (mean_e, var_e) in zip(got, expected):
            self.assertAllClose(mean, mean_e, atol=atol, rtol=0)
            self.assertAllClose(var, var_e, atol=atol, rtol=0)

    def test_moving_statistics_are_the_mean_of_the_batch_statistics(self):
        for depth, n in ((1, 1), (1, 7), (2, 5)):
            net = dense_bn(depth)
            randomise(net)
            z = noise_batches(n)
            with standing.standing_statistics(net, lambda k: z[k], n):
                self.assert_statistics(statistics(net), hand_statistics(net, z))

    def test_conv_maps_reduce_over_batch_and_space(self):
        inputs = keras.Input((3, 3, 2))
        net = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(inputs))
        z = [np.random.default_rng(k).normal(k, 1.0 + k, (4, 3, 3, 2)).astype(np.float32)
             for k in range(3)]
        with standing.standing_statistics(net, lambda k: z[k], 3):
            mean, var = statistics(net)[0]
        self.assertAllClose(mean, np.mean([x.mean((0, 1, 2)) for x in z], 0), atol=1e-6)
        self.assertAllClose(var, np.mean([x.var((0, 1, 2)) for x in z], 0), atol=1e-5)

    def test_bf16_layers_keep_float32_statistics_of_their_bf16_inputs(self):
        inputs = keras.Input((3,))
        net = keras.Model(inputs, keras.layers.BatchNormalization(dtype="mixed_bfloat16")(inputs))
        z = [np.random.default_rng(k).normal(0.1 * k, 1.0, (6, 3)).astype(np.float32)
             for k in range(3)]
        seen = [tf.cast(tf.cast(x, tf.bfloat16), tf.float64).numpy() for x in z]
        with standing.standing_statistics(net, lambda k: z[k], 3):
            (mean, var), = statistics(net)
        self.assertEqual(mean.dtype, np.float32)
        self.assertAllClose(mean, np.mean([x.mean(0) for x in seen], 0), atol=1e-6, rtol=0)
        self.assertAllClose(var, np.mean([x.var(0) for x in seen], 0), atol=1e-6, rtol=0)

    def test_a_model_made_under_a_mirrored_strategy(self):
        z = noise_batches(3)
        with mirrored(["/cpu:0", "/cpu:1"]).scope():
            net = dense_bn(2)
        randomise(net)
        plain = dense_bn(2)
        plain.set_weights(net.get_weights())
        for each in (net, plain):
            with standing.standing_statistics(each, lambda k: z[k], 3):
                self.assert_statistics(statistics(each), hand_statistics(plain, z))

    def test_own_statistics_and_momentum_are_back_after_the_block(self):
        net = dense_bn(2)
        randomise(net)
        before = statistics(net)
        z = noise_batches(3)
        with standing.standing_statistics(net, lambda k: z[k], 3):
            self.assertNotAllClose(statistics(net)[0][0], before[0][0])
        self.assert_statistics(statistics(net), before, atol=0)
        with self.assertRaises(RuntimeError):
            with standing.standing_statistics(net, lambda k: z[k], 3):
                raise RuntimeError("inside")
        self.assert_statistics(statistics(net), before, atol=0)
        self.assertEqual([bn.momentum for bn in standing.measured_layers(net)], [0.99, 0.99])

    def test_off_changes_nothing(self):
        net = dense_bn()
        calls = []
        with standing.standing_statistics(net, lambda k: calls.append(k), 0):
            pass
        self.assertEqual(calls, [])

    def test_bad_arguments(self):
        net = dense_bn()
        for batches in (-1, 2.0, True):
            with self.assertRaisesRegex(ValueError, "standing statistics need a whole number"):
                with standing.standing_statistics(net, lambda k: None, batches):
                    pass
        model = three_models(width=4, z_dim=8)[0]
        for batch_size in (1, 2.0):
            with self.assertRaisesRegex(ValueError, "need batches of at least 2"):
                model.generate(4, standing_stats=2, standing_batch=batch_size)
        with self.assertRaisesRegex(ValueError, "for inference"):
            model.generate(4, seed=0, training=True, standing_stats=2)

    def test_the_statistics_of_the_averaged_weights(self):
        net = dense_bn()
        randomise(net, seed=0)
        average = averaging.WeightAverage(net, decay=0.5)
        randomise(net, seed=1)
        average.update()
        own_weights = [w.numpy() for w in net.weights]
        z = noise_batches(4)
        with average.swapped():
            averaged_kernel = net.layers[1].kernel.numpy()
            with standing.standing_statistics(net, lambda k: z[k], 4):
                self.assert_statistics(statistics(net), hand_statistics(net, z))
        self.assertNotAllClose(averaged_kernel, own_weights[0])
        for w, own in zip(net.weights, own_weights):
            self.assertAllEqual(w.numpy(), own)


class GenerateTest(tf.test.TestCase):

    def test_generate_with_standing_statistics_on_the_three_models(self):
        for model in three_models(width=4, z_dim=8):
            for bn in standing.measured_layers(model.sampler):  # away from the initial 0, 1
                bn.moving_mean.assign(bn.moving_mean + 0.3)
            before = statistics(model.sampler)
            plain = model.generate(6, seed=2)
            stood = model.generate(6, seed=2, standing_stats=3, standing_batch=4)
            self.assertGreater(float(tf.reduce_max(tf.abs(stood - plain))), 1e-3)
            # The same draws as the block with the same seed; the statistics are back.
            with standing.standing(model, 3, 4, seed=2):
                self.assertAllClose(stood, model.generate(6, seed=2), atol=0)
                self.assertNotAllClose(statistics(model.sampler)[0][0], before[0][0])
            for (m, v), (m0, v0) in zip(statistics(model.sampler), before):
                self.assertAllEqual(m, m0)
                self.assertAllEqual(v, v0)

    def test_off_is_the_plain_generate(self):
        for model in three_models(width=4, z_dim=8):
            weights = [w.numpy() for w in model.weights]
            plain = model.generate(5, seed=3)
            self.assertAllEqual(model.generate(5, seed=3, standing_stats=0), plain)
            for w, value in zip(model.weights, weights):
                self.assertAllEqual(w.numpy(), value)

    def test_fixed_seed_fixes_the_statistics_and_fresh_noise_does_not(self):
        model = three_models(width=4, z_dim=8)[0]
        z = model.make_noise(4, seed=0)
        a = model.generate(z, seed=5, standing_stats=2, standing_batch=4)
        self.assertAllEqual(a, model.generate(z, seed=5, standing_stats=2, standing_batch=4))
        self.assertNotAllClose(a, model.generate(z, seed=6, standing_stats=2, standing_batch=4))
        self.assertNotAllClose(a, model.generate(z, standing_stats=2, standing_batch=4))

    def test_a_savedmodel_exported_in_the_block_keeps_the_standing_statistics(self):
        model = three_models(width=4, z_dim=8)[2]
        for bn in standing.measured_layers(model.sampler):
            bn.moving_mean.assign(bn.moving_mean + 0.3)
        path = os.path.join(tempfile.mkdtemp(prefix="test_standing_"), "ign")
        self.addCleanup(shutil.rmtree, os.path.dirname(path), ignore_errors=True)
        with standing.standing(model, 2, 4, seed=0):
            model.export(path)
            want = model.generate(4, seed=1)
        served = tf.saved_model.load(path)
        self.assertAllClose(served.sample(tf.constant(4), tf.constant(1, tf.int64)), want,
                            atol=1e-6)
        self.assertNotAllClose(model.generate(4, seed=1), want)


class SamplingTest(tf.test.TestCase):

    def test_evaluation_samples_with_standing_statistics(self):
        model = three_models(width=4, z_dim=8)[0]
        plain = evaluation.generate_samples(model, 6, seed=1)
        self.assertAllEqual(
            evaluation.generate_samples(model, 6, seed=1, batch_size=4, standing_stats=0), plain)
        stood = evaluation.generate_samples(model, 6, seed=1, batch_size=4, standing_stats=2,
                                            standing_batch=4)
        with standing.standing(model, 2, 4, seed=1):
            again = evaluation.generate_samples(model, 6, seed=1)
        self.assertAllClose(stood, again, atol=0)
        self.assertGreater(np.abs(stood - plain).max(), 1e-3)
        # A bare generator z → x: N(0, I) noise of its input size.
        generator = model.generator
        bare = evaluation.generate_samples(generator, 6, seed=1, standing_stats=2,
                                           standing_batch=4)
        self.assertEqual(bare.shape, plain.shape)
        self.assertGreater(np.abs(bare - plain).max(), 1e-3)

    def test_a_training_run_exports_standing_statistics_on_the_averaged_weights(self):
        root = tempfile.mkdtemp(prefix="test_standing_")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        folder = write_folder(os.path.join(root, "images"), n=16)
        out = os.path.join(root, "run")
        config = tiny_config(folder, out, steps=2, ckpt_every=2, ema=0.5, standing_stats=3)
        model = training.train(config, build_tiny)
        exported = keras.saving.load_model(os.path.join(out, "model.keras"))
        stored = statistics(exported.sampler)
        self.assert_equal_statistics(statistics(model.sampler), stored)
        # They are the standing statistics of the exported (averaged) weights:
        # batches of --batch_size noise seeded by --seed …
        before = statistics(exported.sampler)
        with standing.standing(exported, 3, config.batch_size, seed=config.seed):
            self.assert_equal_statistics(statistics(exported.sampler), stored)
        # … not the moving averages the run kept.
        reader = tf.train.load_checkpoint(os.path.join(out, "checkpoints", "ckpt-2"))
        averaged = [reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
                    if name.startswith("average/values/")]
        self.assertFalse(any(any(np.array_equal(mean, a) for a in averaged)
                             for mean, _ in stored))
        self.assert_equal_statistics(statistics(exported.sampler), before)
        # The run's last sample grid was sampled so too: it is what model.keras generates.
        last = iio.imread(os.path.join(out, "samples", "00000002.png"))
        fixed = len(data.load_arrays(data.resolve(folder, image_size=32),
                                     limit=config.num_samples)[0])
        again = images.save_grid(os.path.join(root, "again.png"),
                                 np.asarray(exported.generate(fixed, seed=config.seed)))
        self.assertAllEqual(last, iio.imread(again))

    def test_an_ign_export_samples_with_noise_statistics_and_projects_with_image_statistics(self):
        root = tempfile.mkdtemp(prefix="test_standing_")
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        folder = write_folder(os.path.join(root, "images"), n=16)
        out = os.path.join(root, "run")
        config = tiny_config(folder, out, steps=2, ckpt_every=2, ema=0.5, standing_stats=3,
                             batch_size=4)
        model = training.train(config, build_tiny_ign)
        self.assertIsNot(model.sampler, model.f)
        exported = keras.saving.load_model(os.path.join(out, "model.keras"))
        self.assertIsNot(exported.sampler, exported.f)
        self.assert_equal_statistics(statistics(exported.sampler), statistics(model.sampler))
        self.assert_equal_statistics(statistics(exported.f), statistics(model.f))
        for a, b in zip(exported.sampler.weights, exported.f.weights, strict=True):
            if "moving" not in a.path:  # one set of weights, two of statistics
                self.assertAllEqual(a.numpy(), b.numpy())
        # The sampler's: noise batches, as a generator's are.
        before = statistics(exported.sampler)
        with standing.standing(exported, 3, config.batch_size, seed=config.seed):
            self.assert_equal_statistics(statistics(exported.sampler), before)
        # f's: batches of the training images in the run's seeded order.
        spec = data.resolve(folder, image_size=32)
        batches = iter(data.make_dataset(spec, 4, shuffle=True, repeat=True, seed=config.seed))
        with standing.standing_statistics(exported.f, lambda k: next(batches), 3):
            self.assert_equal_statistics(statistics(exported.f), statistics(model.f))
        # Sampling and projecting the same input now differ, by the statistics only.
        z = exported.make_noise(4, seed=0)
        self.assertGreater(np.abs(exported.generate(z) - exported.project(z)).max(), 1e-3)
        with standing.standing_statistics(exported.f, lambda k: exported.make_noise(
                4, config.seed, stream=standing.one_loss.STANDING - k), 3):
            self.assertAllClose(exported.project(z), exported.generate(z), atol=1e-5)

    def test_a_negative_count_is_a_config_error(self):
        config = tiny_config("some_folder", "some_run", standing_stats=-1)
        with self.assertRaisesRegex(training.ConfigError, "--standing_stats must be >= 0"):
            training.validate(config)
        config = tiny_config("some_folder", "some_run", standing_stats=2, batch_size=1)
        with self.assertRaisesRegex(training.ConfigError, "needs a --batch_size of at least 2"):
            training.validate(config)

    def assert_equal_statistics(self, got, expected):
        for (m, v), (m0, v0) in zip(got, expected, strict=True):
            self.assertAllClose(m, m0, atol=1e-6)
            self.assertAllClose(v, v0, atol=1e-6)
