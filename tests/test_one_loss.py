"""The shared one-loss step (ogan_ign/one_loss.py): the private Keras names it
relies on, its noise streams, and what every model's public methods return."""

import glob
import inspect
import json
import os
import tempfile
import textwrap

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import ign, one_loss, training
import private_use
from tiny_models import three_models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class KerasPrivateTest(tf.test.TestCase):
    """Fails when Keras renames or drops what one_loss.OneLossModel overrides."""

    def test_private_names_exist_where_expected(self):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(jit_compile=True)
        for name, owner in one_loss.KERAS_PRIVATE.items():
            self.assertTrue(hasattr(model, name), f"a compiled keras.{owner.__name__} has no {name}")
        # fit() calls _maybe_symbolic_build: the override is reached.
        fit_source = inspect.getsource(keras.src.backend.tensorflow.trainer.TensorFlowTrainer.fit)
        self.assertTrue("self._maybe_symbolic_build(" in fit_source, "fit() no longer calls it")
        # jit_compile is stored in _jit_compile, which make_train_function reads.
        self.assertIs(model._jit_compile, True)  # pylint: disable=protected-access
        model._jit_compile = False  # pylint: disable=protected-access
        self.assertFalse(model.jit_compile)


def checked_files():
    """The package and the top-level scripts. (bench/ is not checked: gpu_check reads
    MirroredStrategy._collective_key_base and flops.py patches Keras's BatchNormalization.)"""
    paths = glob.glob(os.path.join(ROOT, "ogan_ign", "**", "*.py"), recursive=True)
    return sorted(paths + glob.glob(os.path.join(ROOT, "*.py")))


class PrivateUseTest(tf.test.TestCase):
    """Private Keras / TensorFlow names are used in one module, each listed with why."""

    def test_only_one_loss_uses_private_names_and_lists_each(self):
        uses = private_use.private_uses(checked_files())
        home = os.path.join(ROOT, "ogan_ign", "one_loss.py")
        elsewhere = [f"{os.path.relpath(p, ROOT)}:{line} {name}"
                     for p, line, name in uses if p != home]
        self.assertEqual(elsewhere, [], "private Keras/TF use outside ogan_ign/one_loss.py")
        self.assertEqual({name for p, _, name in uses if p == home}, set(one_loss.KERAS_PRIVATE))

    def uses_in(self, source):
        path = os.path.join(self.get_temp_dir(), "example.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return [name for _, _, name in private_use.private_uses([path])]

    def test_the_check_finds_each_kind_of_use(self):
        self.assertEqual(self.uses_in("""
            import tensorflow as tf
            from keras.src import backend
            tf.distribute.MirroredStrategy._collective_key_base += 1
            print(tf.__version__, tf.nn.relu)
            """), ["keras.src", "tensorflow.distribute.MirroredStrategy._collective_key_base"])
        self.assertEqual(self.uses_in("""
            import keras
            class Base(keras.Model):
                pass
            class Step(Base):
                def _maybe_symbolic_build(self, **kwargs):
                    self._jit_compile = False
            def peek(model):
                return model._distribute_strategy
            """), ["_maybe_symbolic_build", "_jit_compile", "_distribute_strategy"])

    def test_our_own_private_names_are_not_uses(self):
        self.assertEqual(self.uses_in("""
            import keras
            from keras import layers
            class Norm(layers.BatchNormalization):
                def _fusable(self):
                    self._ours_only = 1
                    return self._ours_only
            class Plain:
                def __init__(self):
                    self._state = 1
            def read(plain, norm):
                return plain._state, norm._fusable()
            """), [])


class NoiseStreamTest(tf.test.TestCase):

    def test_streams_are_distinct_and_repeatable(self):
        a = one_loss.training_seed(3, 5, one_loss.NOISE).numpy()
        self.assertAllEqual(a, one_loss.training_seed(3, 5, one_loss.NOISE).numpy())
        self.assertNotAllEqual(a, one_loss.training_seed(3, 5, one_loss.PENALTY).numpy())
        self.assertNotAllEqual(a, one_loss.training_seed(4, 5, one_loss.NOISE).numpy())
        fixed = {one_loss.fixed_seed(3, s).numpy()[1] for s in (
            one_loss.SAMPLES, one_loss.FIGURES, one_loss.METRICS, one_loss.EVALUATION)}
        self.assertLen(fixed, 4)
        self.assertTrue(all(step < 0 for step in fixed))  # no training step (≥ 0) reaches them


class PublicMethodsTest(tf.test.TestCase):

    def test_generate_means_fresh_noise_unless_seeded_for_every_model(self):
        for model in three_models("bf16"):
            with self.subTest(type(model).__name__):
                if isinstance(model, ign.IGN):
                    self.assertEqual(model.noise, "gaussian")
                self.assertNotAllClose(model.make_noise(4), model.make_noise(4))
                self.assertAllClose(model.make_noise(4, seed=2), model.make_noise(4, seed=2))
                self.assertNotAllClose(model.make_noise(4, seed=2), model.make_noise(4, seed=3))
                self.assertAllClose(model.generate(4, seed=2),
                                    model.sampler(model.make_noise(4, seed=2), training=False))

    def test_every_public_output_is_float32_under_bf16(self):
        single, o, i = three_models("bf16")
        x = np.random.default_rng(0).uniform(-1, 1, (2, 28, 28, 1)).astype(np.float32)
        outputs = {
            "SingleLossGAN.generate": single.generate(2),
            "SingleLossGAN.score": single.score(x, training=False),
            "OGAN.generate": o.generate(2),
            "OGAN.encode": o.encode(x),
            "OGAN.latent": o.latent(x),
            "OGAN.reconstruct": o.reconstruct(x),
            "OGAN.interpolate": o.interpolate(x, x, steps=3),
            "IGN.generate": i.generate(2),
            "IGN.project": i.project(x),
            "IGN.apply": i.apply(x, 2)[-1],
        }
        for name, value in outputs.items():
            self.assertEqual(value.dtype, tf.float32, name)
        # The networks themselves do compute in bfloat16 here.
        self.assertEqual(o.encoder.layers[1].compute_dtype, "bfloat16")


class RecordedComputationTest(tf.test.TestCase):
    """XLA over several replicas computes per-replica batch statistics: a run may not
    be resumed across that change (training.check_resumed_computation)."""

    def run_folder(self, batch_statistics, replicas):
        out = tempfile.mkdtemp()
        manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)),
                                             os.path.join(out, "checkpoints"), 1)
        manager.save()
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump({"run": {"batch_statistics": batch_statistics, "replicas": replicas}}, f)
        return training.Config(dataset="fashion_mnist", out_dir=out)

    def test_switching_batch_statistics_is_refused(self):
        config = self.run_folder("per replica", 2)
        with self.assertRaisesRegex(training.ConfigError, "per replica batch statistics"):
            training.check_resumed_computation(
                config, {"batch_statistics": "global", "replicas": 1})
        with self.assertRaisesRegex(training.ConfigError, "change what a step computes"):
            training.check_resumed_computation(
                config, {"batch_statistics": "per replica", "replicas": 4})

    def test_same_computation_on_other_placement_is_allowed(self):
        # Global statistics: 1 device and 2 replicas compute the same step.
        config = self.run_folder("global", 1)
        training.check_resumed_computation(config, {"batch_statistics": "global", "replicas": 2})
        config = self.run_folder("per replica", 2)
        training.check_resumed_computation(
            config, {"batch_statistics": "per replica", "replicas": 2})

    def test_the_seam_names_what_it_computes(self):
        class TwoReplicas:  # what uses_xla_shards reads of a strategy
            num_replicas_in_sync = 2

        strategy = TwoReplicas()
        self.assertTrue(one_loss.uses_xla_shards(True, strategy))
        self.assertFalse(one_loss.uses_xla_shards(False, strategy))
        self.assertFalse(one_loss.uses_xla_shards(True, tf.distribute.get_strategy()))
        self.assertEqual(one_loss.XlaShards.batch_statistics, "per replica")
        self.assertEqual(one_loss.Replicas.batch_statistics, "global")


if __name__ == "__main__":
    tf.test.main()
