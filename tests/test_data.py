"""Tests for ogan_ign.data: Fashion-MNIST, TFDS, resolve's checks and messages, the
one image fitting (folders, archives and the faces' forms: test_data_files.py)."""

import contextlib
import gzip
import importlib
import os
import pkgutil
import struct
from unittest import mock

import numpy as np
import tensorflow as tf

from image_files import png_bytes, tempdir
from ogan_ign import data


def _write_idx(path, array):
    """LeCun's IDX format: zero, zero, type 0x08 (uint8), rank, big-endian dims."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


class FashionMnistTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempdir(self)
        # Bright 28x28 squares on a black background, labels 0..9.
        self.images = np.zeros([20, 28, 28], np.uint8)
        self.images[:, 4:24, 4:24] = 255
        self.labels = np.arange(20) % 10
        for split, n in (("train", 20), ("t10k", 10)):
            _write_idx(os.path.join(self.dir, f"{split}-images-idx3-ubyte.gz"), self.images[:n])
            _write_idx(os.path.join(self.dir, f"{split}-labels-idx1-ubyte.gz"), self.labels[:n])

    def test_native_28_values_and_labels(self):
        spec = data.resolve("fashion_mnist", data_dir=self.dir, image_size=28)
        self.assertEqual((spec.kind, spec.channels, spec.num_examples), ("fashion_mnist", 1, 20))
        images, labels = data.load_arrays(spec)
        self.assertEqual(images.shape, (20, 28, 28, 1))
        self.assertEqual(images.dtype, np.float32)
        self.assertAllEqual(labels, self.labels)
        self.assertAllClose(images[..., 0], self.images / 127.5 - 1.0)

    def test_32_is_padded_with_background(self):
        spec = data.resolve("FMNIST", data_dir=self.dir, image_size=32, split="test")
        images, labels = data.load_arrays(spec, limit=4)
        self.assertEqual(images.shape, (4, 32, 32, 1))
        self.assertLen(labels, 4)
        self.assertAllEqual(images[:, :2], -np.ones([4, 2, 32, 1]))
        self.assertAllEqual(images[:, 2:30, 2:30, 0], self.images[:4] / 127.5 - 1.0)

    def test_pipeline_shapes_range_and_rgb(self):
        spec = data.resolve("fashion_mnist", data_dir=self.dir, image_size=64, channels=3)
        batch = next(iter(data.make_dataset(spec, 8))).numpy()
        self.assertEqual(batch.shape, (8, 64, 64, 3))
        self.assertEqual(batch.dtype, np.float32)
        self.assertBetween(batch.min(), -1.0, -0.99)
        self.assertBetween(batch.max(), 0.99, 1.0)
        self.assertAllEqual(batch[..., 0], batch[..., 2])

    def test_missing_files_message(self):
        empty = tempdir(self)
        with mock.patch.object(data.idx, "FASHION_MNIST_DIR", "/nonexistent/fashion-mnist"):
            with self.assertRaisesRegex(data.DataError, "apt-get install dataset-fashion-mnist") as cm:
                data.resolve("fashion_mnist", data_dir=empty)
        self.assertIn(empty, str(cm.exception))
        self.assertIn("train-images-idx3-ubyte", str(cm.exception))
        self.assertNotIn("\n", str(cm.exception))


    def test_idx_files_are_parsed_once_per_catalog(self):
        catalog = data.Catalog()
        spec = catalog.resolve("fashion_mnist", data_dir=self.dir, image_size=32)
        with mock.patch.object(data.idx, "_open", wraps=data.idx._open) as opened:
            data.load_arrays(spec)
            data.load_arrays(catalog.resolve("fmnist", data_dir=self.dir, image_size=28),
                             limit=3)
            next(iter(data.make_dataset(spec, 4)))
        # The second resolve reads one header; the images and labels are parsed once.
        self.assertEqual(opened.call_count, 1 + 2)

    def test_aliases_share_one_identity(self):
        names = ("fmnist", "FMNIST", "fashion-mnist", "fashion_mnist", "FashionMNIST")
        specs = [data.resolve(n, data_dir=self.dir, image_size=28) for n in names]
        self.assertEqual({s.identity for s in specs}, {"fashion_mnist"})
        self.assertEqual({data.canonical_dataset(n) for n in names}, {"fashion_mnist"})
        self.assertNotEqual(data.canonical_dataset("tfds:fashion_mnist"), "fashion_mnist")
        self.assertEqual(data.canonical_dataset("CelebA_HQ"), "celeb_a_hq")


class ResolveTest(tf.test.TestCase):

    def test_rejects_bad_size_and_channels(self):
        with self.assertRaisesRegex(data.DataError, "image size 48"):
            data.resolve("fashion_mnist", image_size=48)
        with self.assertRaisesRegex(data.DataError, "channels"):
            data.resolve("fashion_mnist", channels=4)

    def test_no_module_holds_mutable_state(self):
        # Caches belong to objects (a Source, a Catalog), never to a module.
        names = [f"{data.__name__}.{m.name}" for m in pkgutil.iter_modules(data.__path__)]
        for name in [data.__name__] + names:
            for attr, value in vars(importlib.import_module(name)).items():
                if attr.startswith("__"):
                    continue
                with self.subTest(module=name, attr=attr):
                    self.assertNotIsInstance(value, (dict, list, set, bytearray))
                    self.assertFalse(hasattr(value, "cache_info"))  # functools caches

    def test_error_is_a_value_error_on_one_line(self):
        error = data.DataError("first\nsecond   third")
        self.assertIsInstance(error, ValueError)
        self.assertEqual(str(error), "first second third")

    def test_to_unit_range(self):
        pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
        array = data.to_unit_range(pixels)
        tensor = data.to_unit_range(tf.constant(pixels))
        self.assertIsInstance(array, np.ndarray)
        self.assertTrue(tf.is_tensor(tensor))
        self.assertEqual(array.dtype, np.float32)
        self.assertAllEqual(array, tensor.numpy())
        self.assertEqual((array.min(), array.max()), (-1.0, 1.0))
        self.assertAllClose(array, pixels / 127.5 - 1.0)


class TfdsTest(tf.test.TestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
        cls.tfds = tfds

    @contextlib.contextmanager
    def _mocked(self, num_examples=6):
        """TFDS's own mock, plus a prepared flag: the mock replaces reading, not the
        on-disk check that resolve makes first."""
        with self.tfds.testing.mock_data(num_examples=num_examples), \
                mock.patch.object(self.tfds.core.DatasetBuilder, "is_prepared",
                                  return_value=True):
            yield

    def test_mnist_shapes_labels_and_range(self):
        with self._mocked():
            spec = data.resolve("mnist", image_size=32)
            self.assertEqual((spec.kind, spec.channels, spec.label_key), ("tfds", 1, "label"))
            batch = next(iter(data.make_dataset(spec, 4))).numpy()
            images, labels = data.load_arrays(spec, limit=5)
        self.assertEqual(batch.shape, (4, 32, 32, 1))
        self.assertEqual(batch.dtype, np.float32)
        self.assertBetween(batch.min(), -1.0, 1.0)
        self.assertBetween(batch.max(), -1.0, 1.0)
        self.assertEqual(images.shape, (5, 32, 32, 1))
        self.assertEqual(labels.shape, (5,))
        self.assertEqual(labels.dtype, np.int64)

    def test_rgb_to_grey_in_memory_and_streamed(self):
        with self._mocked():
            spec = data.resolve("CIFAR10", image_size=28, channels=1)
            for budget in (data.DEFAULT_MEMORY_BUDGET, 0):
                ds = data.make_dataset(spec, 3, memory_budget=budget)
                self.assertEqual(next(iter(ds)).shape, (3, 28, 28, 1))

    def test_celeba_hq_alias_picks_resolution_config(self):
        with self._mocked():
            spec = data.resolve("CelebA_HQ", image_size=64)
            self.assertEqual(spec.name, "celeb_a_hq/64")
            self.assertEqual(spec.channels, 3)
            self.assertIsNone(spec.label_key)
            self.assertEqual(data.resolve("celeba_hq", image_size=28).name, "celeb_a_hq/32")
            batch = next(iter(data.make_dataset(spec, 2)))
        self.assertEqual(batch.shape, (2, 64, 64, 3))

    def test_rgba_png_gives_the_pixels_a_folder_gives(self):
        # Alpha that changes from pixel to pixel: resizing before compositing would
        # blend the colours of transparent pixels into their neighbours.
        rgba = np.random.default_rng(5).integers(0, 256, [64, 48, 4], dtype=np.uint8)
        png = png_bytes(rgba)
        folder = tempdir(self)
        with open(os.path.join(folder, "x.png"), "wb") as f:
            f.write(png)
        want = data.load_arrays(data.resolve(folder, image_size=32))[0]
        decoded = self.tfds.features.Image(shape=(None, None, 4)).decode_example(png)

        def as_dataset(*args, **kwargs):  # TFDS reading a one-example split
            del args, kwargs
            return tf.data.Dataset.from_tensors({"image": decoded,
                                                 "label": tf.constant(0, tf.int64)})

        with self.tfds.testing.mock_data(as_dataset_fn=as_dataset), \
                mock.patch.object(self.tfds.core.DatasetBuilder, "is_prepared",
                                  return_value=True):
            spec = data.resolve("cifar10", image_size=32)
            held = data.load_arrays(spec)[0]
            streamed = next(iter(data.make_dataset(spec, 1, shuffle=False,
                                                   memory_budget=0))).numpy()
        self.assertEqual(want.shape, (1, 32, 32, 3))
        self.assertAllEqual(held, want)
        self.assertAllEqual(streamed, want)

    def test_unknown_config_lists_the_known_ones(self):
        with self.assertRaisesRegex(data.DataError, "no config '999'; it has 1024, 512"):
            data.resolve("celeb_a_hq/999", data_dir=tempdir(self))

    def test_missing_generic_and_lsun_messages(self):
        data_dir = tempdir(self)
        with self.assertRaisesRegex(data.DataError, f"mnist.*{data_dir}.*tfds build mnist"):
            data.resolve("mnist", data_dir=data_dir)
        with self.assertRaisesRegex(data.DataError, "tensorflow-io.*folder"):
            data.resolve("lsun/bedroom", data_dir=data_dir)
        with self.assertRaisesRegex(data.DataError, "unknown dataset 'no_such_set'"):
            data.resolve("no_such_set", data_dir=data_dir)


if __name__ == "__main__":
    tf.test.main()
