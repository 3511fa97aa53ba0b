"""Tests of the moving average of every weight (ogan_ign/averaging.py): the
update against the formula computed by hand in float64, BatchNorm statistics
included, the swap, fit() with and without a strategy."""

import pytest
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import averaging
from replicas import mirrored


class Counted(keras.layers.Layer):
    """The identity, holding an integer weight (state an average leaves alone)."""

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), dtype="int32", initializer="zeros",
                                     trainable=False, name="calls")

    def call(self, x):
        return x


def tiny_model(counted=True, synchronized=False):
    """Dense → BatchNorm: four trainable weights and two moving statistics
    (plus, counted, an integer weight that is not averaged)."""
    inputs = keras.Input((3,))
    h = keras.layers.Dense(2, name="dense")(inputs)
    if counted:
        h = Counted()(h)
    outputs = keras.layers.BatchNormalization(synchronized=synchronized, name="bn")(h)
    return keras.Model(inputs, outputs)


def set_weights(weights, value):
    for i, w in enumerate(weights):
        w.assign(np.full(w.shape, value + i, np.float32))


class WeightAverageTest(tf.test.TestCase):

    def test_every_float_weight_is_averaged_batchnorm_statistics_included(self):
        model = tiny_model()
        names = [w.path.rsplit("/", 1)[-1] for w in averaging.averaged_weights(model)]
        self.assertCountEqual(names, ["kernel", "bias", "gamma", "beta", "moving_mean",
                                      "moving_variance"])
        self.assertLen(model.weights, len(names) + 1)  # the integer one is left out

    def test_update_matches_the_formula_with_warm_up_and_cap(self):
        model = tiny_model()
        weights = averaging.averaged_weights(model)
        # decay 0.2: d_1 = min(0.2, 2/11) is the warm-up, d_2 = min(0.2, 3/12) the cap.
        set_weights(weights, 1.0)
        average = averaging.WeightAverage(model, decay=0.2)   # ā_0 = the weights now
        expected = [np.full(w.shape, 1.0 + i) for i, w in enumerate(weights)]
        for t, value in ((1, 3.0), (2, -5.0), (3, 0.5)):
            set_weights(weights, value)
            average.update()
            d = min(0.2, (1.0 + t) / (10.0 + t))
            expected = [d * e + (1.0 - d) * (value + i) for i, e in enumerate(expected)]
            self.assertEqual(average.count, t)
        self.assertAllClose(expected[0], np.full((3, 2), 0.2 * (0.2 * (2 / 11 * 1 + 9 / 11 * 3)
                                                                   + 0.8 * -5) + 0.8 * 0.5))
        for e, got in zip(expected, average.state.values):
            self.assertAllClose(got, e, rtol=1e-6, atol=1e-6)

    def test_swapped_puts_the_average_in_and_restores_the_weights(self):
        model = tiny_model()
        weights = averaging.averaged_weights(model)
        average = averaging.WeightAverage(model, decay=0.9)
        set_weights(weights, 4.0)
        average.update()
        own = [w.numpy().copy() for w in weights]
        x = np.ones((2, 3), np.float32)
        with average.swapped():
            for w, a in zip(weights, average.state.values):
                self.assertAllEqual(w.numpy(), a.numpy())
            inside = model(x, training=False).numpy()
        for w, value in zip(weights, own):
            self.assertAllEqual(w.numpy(), value)
        self.assertNotAllClose(model(x, training=False).numpy(), inside)
        average.reset()
        self.assertEqual(average.count, 0)
        for w, a in zip(weights, average.state.values):
            self.assertAllEqual(w.numpy(), a.numpy())

    def test_fit_updates_once_per_step_and_the_moving_statistics_follow(self):
        model = tiny_model()
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        average = averaging.WeightAverage(model, decay=0.99)
        before = [a.numpy().copy() for a in average.state.values]
        x = np.random.default_rng(0).normal(2.0, 3.0, (32, 3)).astype(np.float32)
        model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0, callbacks=[average])
        self.assertEqual(average.count, 4)
        changed = {w.path.rsplit("/", 1)[-1] for w, a, b in zip(
            average.weights, average.state.values, before) if not np.array_equal(a.numpy(), b)}
        self.assertContainsSubset({"kernel", "moving_mean", "moving_variance"}, changed)

    def test_refuses_steps_per_execution_above_one_and_a_bad_decay(self):
        model = tiny_model()
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
        average = averaging.WeightAverage(model, decay=0.9)
        x = np.zeros((8, 3), np.float32)
        with self.assertRaisesRegex(ValueError, "needs steps_per_execution=1"):
            model.fit(x, x[:, :2], batch_size=4, verbose=0, callbacks=[average])
        for decay in (0.0, 1.0, -0.5):
            with self.assertRaisesRegex(ValueError, r"decay must be in \(0, 1\)"):
                averaging.WeightAverage(model, decay)

    @pytest.mark.slow
    def test_under_a_mirrored_strategy_the_average_is_the_one_device_average(self):
        devices = [d.name for d in tf.config.list_logical_devices("CPU")][:2]
        self.assertLen(devices, 2, "tests/conftest.py makes two logical CPUs")
        x = np.random.default_rng(1).normal(size=(16, 3)).astype(np.float32)
        results = []
        for strategy in (tf.distribute.get_strategy(), mirrored(devices)):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                # With global batch moments the two compute the same step.
                model = tiny_model(synchronized=True)
                model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
                average = averaging.WeightAverage(model, decay=0.5)
            model.fit(x, x[:, :2], batch_size=8, epochs=1, verbose=0, shuffle=False,
                      callbacks=[average])
            self.assertEqual(average.count, 2)
            results.append([tf.convert_to_tensor(a).numpy() for a in average.state.values])
        for one, two in zip(*results):
            self.assertAllClose(one, two, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    tf.test.main()
