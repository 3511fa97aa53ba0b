"""Tests for ogan_ign.data: every source on small data made here, every message."""

import contextlib
import gzip
import io
import os
import shutil
import struct
import tempfile
import time
from unittest import mock

import numpy as np
from PIL import Image
import tensorflow as tf

from ogan_ign import data


def _tempdir(test):
    """A fresh directory removed after the test (absl's create_tempdir needs parsed
    flags, which pytest does not provide)."""
    path = tempfile.mkdtemp(prefix="ogan_ign_data_")
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def _write_idx(path, array):
    """LeCun's IDX format: zero, zero, type 0x08 (uint8), rank, big-endian dims."""
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def _save(path, array, fmt=None, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, fmt)


class FashionMnistTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = _tempdir(self)
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
        empty = _tempdir(self)
        with mock.patch.object(data, "FASHION_MNIST_DIR", "/nonexistent/fashion-mnist"):
            with self.assertRaisesRegex(data.DataError, "apt-get install dataset-fashion-mnist") as cm:
                data.resolve("fashion_mnist", data_dir=empty)
        self.assertIn(empty, str(cm.exception))
        self.assertIn("train-images-idx3-ubyte", str(cm.exception))
        self.assertNotIn("\n", str(cm.exception))


class FolderTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = _tempdir(self)
        rng = np.random.default_rng(0)
        rgb = lambda h, w: rng.integers(0, 256, [h, w, 3], dtype=np.uint8)
        d = self.dir
        _save(f"{d}/a.png", rgb(40, 30))
        _save(f"{d}/sub/b.JPG", rgb(50, 50)[..., 0])  # grey JPEG, upper-case extension
        _save(f"{d}/sub/deeper/c.gif", rgb(17, 23), "GIF")
        _save(f"{d}/d.bmp", rgb(300, 200), "BMP")
        _save(f"{d}/e.webp", rgb(64, 64), "WEBP")
        _save(f"{d}/f.png", rgb(20, 20), mode="LA")
        _save(f"{d}/g.jpeg", rgb(5, 9))  # tiny: upsampled
        _save(f"{d}/h.png", np.full([8, 8], 40000, np.uint16), mode="I;16")
        self.valid = 8
        with open(f"{d}/zero.jpg", "wb"):
            pass
        with open(f"{d}/text.png", "w") as f:
            f.write("not an image")
        buffer = io.BytesIO()
        Image.fromarray(rgb(64, 64)).save(buffer, "PNG")
        with open(f"{d}/sub/truncated.png", "wb") as f:
            f.write(buffer.getvalue()[:200])
        self.bad = 3
        with open(f"{d}/notes.txt", "w") as f:  # not an image extension: ignored
            f.write("x")
        with open(f"{d}/._a.jpg", "w") as f:  # macOS resource fork: hidden, ignored
            f.write("x")

    def test_resolve_finds_images_recursively(self):
        spec = data.resolve(self.dir, image_size=32)
        self.assertEqual((spec.kind, spec.channels), ("folder", 3))
        self.assertEqual(spec.num_examples, self.valid + self.bad)
        self.assertTrue(any(p.endswith("deeper/c.gif") for p in spec.files))

    def test_bad_files_are_skipped_and_reported_once(self):
        spec = data.resolve(self.dir, image_size=32)
        with self.assertLogs(level="WARNING") as logs:
            ds = data.make_dataset(spec, 4, repeat=False, cache="memory")
        skipped = [r for r in logs.output if "Skipped" in r]
        self.assertLen(skipped, 1)
        self.assertIn(f"Skipped {self.bad} of {self.valid + self.bad}", skipped[0])
        batches = [b.numpy() for b in ds]
        self.assertLen(batches, self.valid // 4)
        for batch in batches:
            self.assertEqual(batch.shape, (4, 32, 32, 3))
            self.assertEqual(batch.dtype, np.float32)
            self.assertBetween(batch.min(), -1.0, 1.0)
            self.assertBetween(batch.max(), -1.0, 1.0)

    def test_load_arrays_counts_only_decodable(self):
        images, labels = data.load_arrays(data.resolve(self.dir, image_size=28, channels=1))
        self.assertIsNone(labels)
        self.assertEqual(images.shape, (self.valid, 28, 28, 1))
        self.assertGreaterEqual(images.min(), -1.0)
        self.assertLessEqual(images.max(), 1.0)
        images, _ = data.load_arrays(data.resolve(self.dir, image_size=28), limit=3)
        self.assertEqual(images.shape, (3, 28, 28, 3))

    def test_centre_crop_and_channel_conversions(self):
        d = _tempdir(self)
        wide = np.zeros([40, 80, 3], np.uint8)
        wide[:, :20] = [255, 0, 0]  # red margins are cropped away
        wide[:, 60:] = [255, 0, 0]
        wide[:, 20:60] = [0, 0, 255]
        _save(f"{d}/0_wide.png", wide)
        _save(f"{d}/1_grey.png", np.full([16, 16], 200, np.uint8))
        rgba = np.zeros([16, 16, 4], np.uint8)
        rgba[..., :3] = 255  # white but fully transparent → black background
        _save(f"{d}/2_rgba.png", rgba)
        rgb, _ = data.load_arrays(data.resolve(d, image_size=32))
        self.assertAllClose(rgb[0], np.broadcast_to([-1.0, -1.0, 1.0], [32, 32, 3]))
        self.assertAllClose(rgb[1], np.full([32, 32, 3], 200 / 127.5 - 1.0))
        self.assertAllClose(rgb[2], -np.ones([32, 32, 3]))
        grey, _ = data.load_arrays(data.resolve(d, image_size=32, channels=1))
        self.assertEqual(grey.shape, (3, 32, 32, 1))
        # ITU-R 601 luma of pure blue: 0.114 · 255 ≈ 29.
        self.assertAllClose(grey[0], np.full([32, 32, 1], 29 / 127.5 - 1.0), atol=1 / 127.5)

    def test_resize_is_antialiased(self):
        d = _tempdir(self)
        stripes = np.zeros([256, 256], np.uint8)
        stripes[:, ::2] = 255  # a 1 px pattern: aliasing would keep it, a filter averages
        _save(f"{d}/stripes.png", stripes)
        images, _ = data.load_arrays(data.resolve(d, image_size=32, channels=1))
        self.assertAllClose(images, np.full([1, 32, 32, 1], 0.0), atol=0.05)

    def test_file_cache_is_written_then_reused(self):
        cache_dir = _tempdir(self)
        spec = data.resolve(self.dir, image_size=32)
        first = next(iter(data.make_dataset(spec, 8, cache="file", cache_dir=cache_dir,
                                            shuffle=False)))
        self.assertNotEmpty([f for f in os.listdir(cache_dir) if f.endswith(".index")])
        with self.assertLogs(level="WARNING") as logs:
            again = next(iter(data.make_dataset(spec, 8, cache="file", cache_dir=cache_dir,
                                                shuffle=False)))
        self.assertIn("counted when the cache", "".join(logs.output))
        self.assertAllEqual(first, again)

    def test_auto_cache_goes_to_file_over_budget(self):
        cache_dir = _tempdir(self)
        spec = data.resolve(self.dir, image_size=28)
        ds = data.make_dataset(spec, 2, cache_dir=cache_dir, memory_budget=100)
        self.assertEqual(next(iter(ds)).shape, (2, 28, 28, 3))
        self.assertNotEmpty(os.listdir(cache_dir))

    def test_no_cache_streams(self):
        spec = data.resolve(self.dir, image_size=28)
        batches = list(data.make_dataset(spec, 2, cache="none", repeat=False))
        self.assertLen(batches, self.valid // 2)

    def test_input_context_shards_and_uses_per_replica_batch(self):
        spec = data.resolve(self.dir, image_size=28)
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
        ds = data.make_dataset(spec, 4, shuffle=False, repeat=False, cache="memory",
                               input_context=context)
        shapes = [b.shape for b in ds]
        self.assertEqual(shapes[0], (2, 28, 28, 3))
        bad = ("zero.jpg", "text.png", "truncated.png")
        mine = [f for f in spec.files[1::2] if not f.endswith(bad)]
        self.assertLess(len(mine), self.valid)
        self.assertLen(shapes, len(mine) // 2)

    def test_distribute_datasets_from_function(self):
        spec = data.resolve(self.dir, image_size=28)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        dist = strategy.distribute_datasets_from_function(
            lambda ctx: data.make_dataset(spec, 4, input_context=ctx, cache="memory"))
        batch = next(iter(dist))
        self.assertEqual(strategy.experimental_local_results(batch)[0].shape, (4, 28, 28, 3))

    def test_bare_dataset_name_wins_over_a_folder_of_that_name(self):
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(self.dir)
        os.makedirs("fmnist")
        _save("fmnist/x.png", np.zeros([8, 8, 3], np.uint8))
        with mock.patch.object(data, "FASHION_MNIST_DIR", "/nonexistent"):
            with self.assertRaisesRegex(data.DataError, "Fashion-MNIST not found"):
                data.resolve("fmnist")
        self.assertEqual(data.resolve("./fmnist").kind, "folder")
        self.assertEqual(data.resolve("sub").kind, "folder")

    def test_one_line_errors(self):
        empty = _tempdir(self)
        with self.assertRaisesRegex(data.DataError, "no image files"):
            data.resolve(empty)
        broken = _tempdir(self)
        with open(f"{broken}/x.png", "wb") as f:
            f.write(b"\x89PNG broken")
        with self.assertRaisesRegex(data.DataError, "none of the 1 image files"):
            data.resolve(broken)
        with self.assertRaisesRegex(data.DataError, "no such folder"):
            data.resolve(os.path.join(empty, "missing"))
        with self.assertRaisesRegex(data.DataError, "is a file"):
            data.resolve(f"{broken}/x.png")


class ResolveTest(tf.test.TestCase):

    def test_rejects_bad_size_and_channels(self):
        with self.assertRaisesRegex(data.DataError, "image size 48"):
            data.resolve("fashion_mnist", image_size=48)
        with self.assertRaisesRegex(data.DataError, "channels"):
            data.resolve("fashion_mnist", channels=4)

    def test_error_is_a_value_error_on_one_line(self):
        error = data.DataError("first\nsecond   third")
        self.assertIsInstance(error, ValueError)
        self.assertEqual(str(error), "first second third")


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
            batch = next(iter(data.make_dataset(spec, 4, cache="memory"))).numpy()
            images, labels = data.load_arrays(spec, limit=5)
        self.assertEqual(batch.shape, (4, 32, 32, 1))
        self.assertEqual(batch.dtype, np.float32)
        self.assertBetween(batch.min(), -1.0, 1.0)
        self.assertBetween(batch.max(), -1.0, 1.0)
        self.assertEqual(images.shape, (5, 32, 32, 1))
        self.assertEqual(labels.shape, (5,))
        self.assertEqual(labels.dtype, np.int64)

    def test_rgb_to_grey_and_file_cache(self):
        with self._mocked():
            spec = data.resolve("CIFAR10", image_size=28, channels=1)
            ds = data.make_dataset(spec, 3, cache="file",
                                   cache_dir=_tempdir(self))
            self.assertEqual(next(iter(ds)).shape, (3, 28, 28, 1))

    def test_celeba_hq_alias_picks_resolution_config(self):
        with self._mocked():
            spec = data.resolve("CelebA_HQ", image_size=64)
            self.assertEqual(spec.tfds_name, "celeb_a_hq/64")
            self.assertEqual(spec.channels, 3)
            self.assertIsNone(spec.label_key)
            self.assertEqual(data.resolve("celeba_hq", image_size=28).tfds_name, "celeb_a_hq/32")
            batch = next(iter(data.make_dataset(spec, 2, cache="memory")))
        self.assertEqual(batch.shape, (2, 64, 64, 3))

    def test_missing_celeba_hq_fails_fast_with_instructions(self):
        data_dir = _tempdir(self)
        start = time.time()
        with self.assertRaises(data.DataError) as cm:
            data.resolve("celeba_hq", data_dir=data_dir, image_size=128)
        self.assertLess(time.time() - start, 3.0)
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        for part in ("celeb_a_hq/128", "data128x128.tar",
                     os.path.join(data_dir, "downloads", "manual"), "folder of images"):
            self.assertIn(part, message)

    def test_celeba_hq_archive_present_but_not_built(self):
        data_dir = _tempdir(self)
        manual = os.path.join(data_dir, "downloads", "manual")
        os.makedirs(manual)
        with open(os.path.join(manual, "data64x64.tar"), "wb"):
            pass
        with self.assertRaisesRegex(data.DataError, "data64x64.tar is there.*tfds build"):
            data.resolve("celeba_hq", data_dir=data_dir, image_size=64)

    def test_unknown_config_lists_the_known_ones(self):
        with self.assertRaisesRegex(data.DataError, "no config '999'; it has 1024, 512"):
            data.resolve("celeb_a_hq/999", data_dir=_tempdir(self))

    def test_missing_generic_and_lsun_messages(self):
        data_dir = _tempdir(self)
        with self.assertRaisesRegex(data.DataError, f"mnist.*{data_dir}.*tfds build mnist"):
            data.resolve("mnist", data_dir=data_dir)
        with self.assertRaisesRegex(data.DataError, "tensorflow-io.*folder"):
            data.resolve("lsun/bedroom", data_dir=data_dir)
        with self.assertRaisesRegex(data.DataError, "unknown dataset 'no_such_set'"):
            data.resolve("no_such_set", data_dir=data_dir)


if __name__ == "__main__":
    tf.test.main()
