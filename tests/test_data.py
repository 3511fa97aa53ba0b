"""Tests for ogan_ign.data: every source on small data made here, every message."""

import contextlib
import gzip
import importlib
import io
import os
import pkgutil
import shutil
import struct
import sys
import tarfile
import tempfile
import time
from unittest import mock
import warnings

from absl import logging
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


def _png_bytes(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def _write_tar(path, members):
    """An uncompressed tar holding `members` (name → bytes; None makes a directory),
    as TFDS's celeb_a_hq manual archives are."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            if payload is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))


def _counted_loads():
    """Counts the images folders and archives read (usable or not)."""
    return mock.patch.object(data.FileSource, "load", autospec=True,
                             side_effect=data.FileSource.load)


@contextlib.contextmanager
def _stderr_bytes():
    """Everything written to file descriptor 2 inside the block, by Python or by C
    libraries (libjpeg, TensorFlow's logging), as a list holding one string."""
    out = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))


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
        with open(f"{d}/sub/truncated.png", "wb") as f:
            f.write(_png_bytes(rgb(64, 64))[:200])
        self.bad = 3
        with open(f"{d}/notes.txt", "w") as f:  # not an image extension: ignored
            f.write("x")
        with open(f"{d}/._a.jpg", "w") as f:  # macOS resource fork: hidden, ignored
            f.write("x")

    def test_resolve_counts_usable_images_recursively(self):
        spec = data.resolve(self.dir, image_size=32)
        self.assertEqual((spec.kind, spec.channels), ("folder", 3))
        self.assertEqual(spec.num_examples, self.valid)
        self.assertLen(spec.files, self.valid)
        self.assertTrue(any(p.endswith("deeper/c.gif") for p in spec.files))
        self.assertFalse(any(p.endswith(("zero.jpg", "text.png")) for p in spec.files))

    def test_bad_files_are_reported_once_per_catalog(self):
        catalog = data.Catalog()
        with self.assertLogs(level="WARNING") as logs:
            spec = catalog.resolve(self.dir, image_size=32)
            catalog.resolve(self.dir, image_size=28, split="test")
            ds = data.make_dataset(spec, 4, repeat=False)
            data.load_arrays(spec)
            logging.warning("end")  # assertLogs needs one record at least
        skipped = [r for r in logs.output if "Skipped" in r]
        self.assertLen(skipped, 1)
        self.assertIn(f"Skipped {self.bad} of {self.valid + self.bad}", skipped[0])
        self.assertIn("1 empty", skipped[0])
        self.assertIn("1 not an image", skipped[0])
        self.assertIn("1 truncated or corrupt", skipped[0])
        batches = [b.numpy() for b in ds]
        self.assertLen(batches, self.valid // 4)
        for batch in batches:
            self.assertEqual(batch.shape, (4, 32, 32, 3))
            self.assertEqual(batch.dtype, np.float32)
            self.assertBetween(batch.min(), -1.0, 1.0)
            self.assertBetween(batch.max(), -1.0, 1.0)

    def test_resolve_is_the_only_decoding_pass(self):
        with _counted_loads() as load:
            spec = data.resolve(self.dir, image_size=32)
            self.assertEqual(load.call_count, self.valid + self.bad)
            data.load_arrays(spec, limit=3)
            list(data.make_dataset(spec, 4, repeat=False))
            self.assertEqual(load.call_count, self.valid + self.bad)

    def test_an_unchanged_source_is_checked_once_per_catalog(self):
        # The scripts resolve their data again after training (to look for labels).
        catalog = data.Catalog()
        with _counted_loads() as load:
            first = catalog.resolve(self.dir, image_size=32)
            self.assertIs(catalog.resolve(self.dir, image_size=32), first)
            self.assertEqual(load.call_count, self.valid + self.bad)
            catalog.resolve(self.dir, image_size=28)  # another size is another check
            self.assertEqual(load.call_count, 2 * (self.valid + self.bad))
            os.utime(first.files[0], ns=(0, 0))  # a file changed: checked again
            catalog.resolve(self.dir, image_size=32)
            self.assertEqual(load.call_count, 3 * (self.valid + self.bad))
            data.resolve(self.dir, image_size=32)  # a catalog of its own: checked again
            self.assertEqual(load.call_count, 4 * (self.valid + self.bad))

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
        _save(f"{d}/3_deep.png", np.full([8, 8], 257 * 100, np.uint16), mode="I;16")
        rgb, _ = data.load_arrays(data.resolve(d, image_size=32))
        self.assertAllClose(rgb[0], np.broadcast_to([-1.0, -1.0, 1.0], [32, 32, 3]))
        self.assertAllClose(rgb[1], np.full([32, 32, 3], 200 / 127.5 - 1.0))
        self.assertAllClose(rgb[2], -np.ones([32, 32, 3]))
        self.assertAllClose(rgb[3], np.full([32, 32, 3], 100 / 127.5 - 1.0))  # 16 → 8 bit
        grey, _ = data.load_arrays(data.resolve(d, image_size=32, channels=1))
        self.assertEqual(grey.shape, (4, 32, 32, 1))
        # ITU-R 601 luma of pure blue: 0.114 · 255 ≈ 29.
        self.assertAllClose(grey[0], np.full([32, 32, 1], 29 / 127.5 - 1.0), atol=1 / 127.5)

    def test_resize_is_antialiased(self):
        d = _tempdir(self)
        stripes = np.zeros([256, 256], np.uint8)
        stripes[:, ::2] = 255  # a 1 px pattern: aliasing would keep it, a filter averages
        _save(f"{d}/stripes.png", stripes)
        images, _ = data.load_arrays(data.resolve(d, image_size=32, channels=1))
        self.assertAllClose(images, np.full([1, 32, 32, 1], 0.0), atol=0.05)

    def test_over_budget_decodes_every_epoch_in_a_new_order(self):
        spec = data.resolve(self.dir, image_size=28)
        held = data.load_arrays(spec)[0]
        ds = data.make_dataset(spec, 1, repeat=False, seed=3, memory_budget=100)
        with _counted_loads() as load:
            first = np.concatenate([b.numpy() for b in ds])
            second = np.concatenate([b.numpy() for b in ds])
        self.assertEqual(load.call_count, 2 * self.valid)
        self.assertEqual(first.shape, (self.valid, 28, 28, 3))
        key = lambda images: sorted(x.tobytes() for x in images)
        self.assertEqual(key(first), key(held))
        self.assertEqual(key(second), key(held))
        self.assertNotAllEqual(first, second)

    def test_input_context_shards_and_uses_per_replica_batch(self):
        spec = data.resolve(self.dir, image_size=28)
        context = tf.distribute.InputContext(
            num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
        ds = data.make_dataset(spec, 4, shuffle=False, repeat=False, input_context=context)
        batches = [b.numpy() for b in ds]
        self.assertEqual(batches[0].shape, (2, 28, 28, 3))
        mine = data.load_arrays(spec)[0][1::2]
        self.assertLess(len(mine), self.valid)
        self.assertLen(batches, len(mine) // 2)
        self.assertAllEqual(np.concatenate(batches), mine[:len(mine) // 2 * 2])

    def test_distribute_datasets_from_function(self):
        spec = data.resolve(self.dir, image_size=28)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        dist = strategy.distribute_datasets_from_function(
            lambda ctx: data.make_dataset(spec, 4, input_context=ctx))
        batch = next(iter(dist))
        self.assertEqual(strategy.experimental_local_results(batch)[0].shape, (4, 28, 28, 3))

    def test_bare_dataset_name_wins_over_a_folder_of_that_name(self):
        cwd = os.getcwd()
        self.addCleanup(os.chdir, cwd)
        os.chdir(self.dir)
        os.makedirs("fmnist")
        _save("fmnist/x.png", np.zeros([8, 8, 3], np.uint8))
        with mock.patch.object(data.idx, "FASHION_MNIST_DIR", "/nonexistent"):
            with self.assertRaisesRegex(data.DataError, "Fashion-MNIST not found"):
                data.resolve("fmnist")
        self.assertEqual(data.resolve("./fmnist").kind, "folder")
        self.assertEqual(data.resolve("sub").kind, "folder")
        self.assertEqual(data.canonical_dataset("fmnist"), "fashion_mnist")
        self.assertEqual(data.canonical_dataset("./fmnist"), os.path.realpath("fmnist"))

    def test_folder_identity_ignores_spelling(self):
        link = os.path.join(_tempdir(self), "link")
        os.symlink(self.dir, link)
        spellings = (self.dir, self.dir + "/", self.dir + "/sub/..", link)
        self.assertLen({data.canonical_dataset(s) for s in spellings}, 1)
        self.assertEqual(data.resolve(link).identity, os.path.realpath(self.dir))

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


class OddFolderTest(tf.test.TestCase):
    """Folders as users have them (issue 16): odd names, link loops, junk."""

    def test_non_utf8_file_names_are_read(self):
        d = _tempdir(self)
        _save(f"{d}/plain.png", np.full([8, 8, 3], 10, np.uint8))
        with open(os.path.join(os.fsencode(d), b"\xff odd.png"), "wb") as f:
            f.write(_png_bytes(np.full([8, 8, 3], 250, np.uint8)))
        spec = data.resolve(d, image_size=28)
        self.assertEqual(spec.num_examples, 2)
        batch = next(iter(data.make_dataset(spec, 2, shuffle=False))).numpy()
        images, _ = data.load_arrays(spec)
        self.assertAllEqual(batch, images)
        self.assertAllClose(sorted(images.max(axis=(1, 2, 3))), [10 / 127.5 - 1, 250 / 127.5 - 1])

    def test_non_utf8_names_of_junk_are_shown_escaped(self):
        d = _tempdir(self)
        with open(os.path.join(os.fsencode(d), b"bad\xfe.png"), "wb") as f:
            f.write(b"junk")
        with self.assertRaises(data.DataError) as cm:
            data.resolve(d)
        self.assertIn("bad\\xfe.png", str(cm.exception))
        str(cm.exception).encode("utf-8")  # printable: no lone surrogates

    def test_symlinked_directories_are_followed_once(self):
        d = _tempdir(self)
        for i in range(5):
            _save(f"{d}/{i}.png", np.full([8, 8, 3], i, np.uint8))
        os.symlink(".", f"{d}/self")  # a loop
        elsewhere = _tempdir(self)
        _save(f"{elsewhere}/far.png", np.zeros([8, 8, 3], np.uint8))
        os.symlink(elsewhere, f"{d}/far")  # reachable only through the link
        os.symlink(elsewhere, f"{d}/far_again")  # a second link to it adds nothing
        spec = data.resolve(d, image_size=28)
        self.assertEqual(spec.num_examples, 6)
        self.assertLen({os.path.realpath(p) for p in spec.files}, 6)

    def test_junk_is_summarised_without_decoder_output(self):
        d = _tempdir(self)
        rng = np.random.default_rng(1)
        jpeg = _png_bytes(rng.integers(0, 256, [64, 64, 3], dtype=np.uint8), "JPEG")
        for i in range(3):
            # Garbage inside the entropy-coded data: libjpeg warns on stderr.
            with open(f"{d}/garbled{i}.jpg", "wb") as f:
                f.write(jpeg[:600] + rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
                        + jpeg[900:])
            with open(f"{d}/truncated{i}.jpg", "wb") as f:
                f.write(jpeg[:len(jpeg) // 2])
        with _stderr_bytes() as stderr, self.assertRaises(data.DataError) as cm:
            data.resolve(d)
        self.assertEqual(stderr, [""])
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertRegex(message, r"none of the 6 image files under .* can be decoded: \d")
        _save(f"{d}/good.png", np.zeros([8, 8, 3], np.uint8))
        with _stderr_bytes() as stderr:
            spec = data.resolve(d, image_size=28)
            data.load_arrays(spec)
        self.assertEqual(spec.num_examples, 1)
        self.assertNotIn("JPEG", stderr[0])

    def test_decoder_warnings_go_to_the_summary(self):
        d = _tempdir(self)
        for i in range(2):
            _save(f"{d}/{i}.png", np.zeros([8, 8, 3], np.uint8))
        with open(f"{d}/junk.png", "wb") as f:
            f.write(b"junk")
        fit = data.files.fit_encoded

        def noisy(*args):
            warnings.warn("decoder says hello")
            return fit(*args)

        with mock.patch.object(data.files, "fit_encoded", noisy), \
                self.assertLogs(level="WARNING") as logs:
            data.resolve(d, image_size=28)
        self.assertIn("1 not an image (e.g. junk.png); 3 decoder warning(s), e.g. decoder "
                      "says hello", "".join(logs.output))
        clean = _tempdir(self)  # all usable: the warnings are still summarised
        for i in range(2):
            _save(f"{clean}/{i}.png", np.zeros([8, 8, 3], np.uint8))
        with mock.patch.object(data.files, "fit_encoded", noisy), \
                self.assertLogs(level="WARNING") as logs:
            data.resolve(clean, image_size=32)
        self.assertIn(f"Decoded 2 files under {clean} with 2 decoder warning(s)",
                      "".join(logs.output))


class ArchiveAndFaceDataTest(tf.test.TestCase):
    """CelebA-HQ and FFHQ in the forms people have them (issue 14)."""

    def setUp(self):
        super().setUp()
        self.rng = np.random.default_rng(2)

    def _image(self, side, fmt="PNG"):
        return _png_bytes(self.rng.integers(0, 256, [side, side, 3], dtype=np.uint8), fmt)

    def _celeba_archive(self, path, side, count=3, fmt="PNG"):
        """Like TFDS's data{R}x{R}.tar: R×R images, here under a folder of the same
        name, beside a directory entry and a non-image member that are passed over."""
        members = {f"data{side}x{side}": None, f"data{side}x{side}/README.txt": b"x"}
        for i in range(count):
            members[f"data{side}x{side}/{i:05d}.{fmt.lower()}"] = self._image(side, fmt)
        _write_tar(path, members)

    def test_manual_archive_is_read_directly(self):
        data_dir = _tempdir(self)
        manual = os.path.join(data_dir, "downloads", "manual")
        self._celeba_archive(os.path.join(manual, "data64x64.tar"), 64, count=5)
        spec = data.resolve("celeba_hq", data_dir=data_dir, image_size=32)
        self.assertEqual((spec.kind, spec.name, spec.num_examples), ("tar", "celeb_a_hq/64", 5))
        self.assertEqual(spec.identity, "celeb_a_hq")
        self.assertEqual(spec.files[0], "data64x64/00000.png")
        images, labels = data.load_arrays(spec)
        self.assertIsNone(labels)
        self.assertEqual(images.shape, (5, 32, 32, 3))
        batch = next(iter(data.make_dataset(spec, 4))).numpy()
        self.assertEqual(batch.shape, (4, 32, 32, 3))
        streamed = [b.numpy() for b in data.make_dataset(spec, 1, shuffle=False, repeat=False,
                                                          memory_budget=0)]
        self.assertAllEqual(np.concatenate(streamed), images)

    def test_archive_closest_above_the_size_is_picked(self):
        data_dir = _tempdir(self)
        for side in (16, 64, 128):  # in data_dir itself, JPEG members
            self._celeba_archive(os.path.join(data_dir, f"data{side}x{side}.tar"), side,
                                 count=1, fmt="JPEG")
        picked = lambda size: data.resolve("CelebA_HQ", data_dir=data_dir,
                                           image_size=size).name
        self.assertEqual(picked(32), "celeb_a_hq/64")
        self.assertEqual(picked(64), "celeb_a_hq/64")
        self.assertEqual(picked(128), "celeb_a_hq/128")
        self.assertEqual(picked(256), "celeb_a_hq/128")  # none larger: the largest
        self.assertEqual(data.resolve("celeb_a_hq/16", data_dir=data_dir).name,
                         "celeb_a_hq/16")

    def test_folder_of_images_any_depth_and_size(self):
        data_dir = _tempdir(self)
        for i, (side, fmt) in enumerate([(256, "JPEG"), (100, "PNG"), (48, "JPEG")]):
            path = os.path.join(data_dir, "part", str(i), f"{i}.{fmt.lower()}")
            os.makedirs(os.path.dirname(path))
            with open(path, "wb") as f:
                f.write(self._image(side, fmt))
        spec = data.resolve("celeba_hq", data_dir=data_dir, image_size=64)
        self.assertEqual((spec.kind, spec.name, spec.num_examples), ("folder", "celeb_a_hq", 3))
        self.assertEqual(data.load_arrays(spec)[0].shape, (3, 64, 64, 3))
        spec = data.resolve("ffhq", data_dir=data_dir, image_size=32)
        self.assertEqual((spec.kind, spec.name, spec.num_examples), ("folder", "ffhq", 3))

    def test_tar_given_as_dataset_or_data_dir(self):
        path = os.path.join(_tempdir(self), "faces.tar")
        self._celeba_archive(path, 32, count=2)
        self.assertEqual(data.resolve(path, image_size=28).num_examples, 2)
        self.assertEqual(data.resolve("ffhq", data_dir=path, image_size=28).kind, "tar")
        gz = path + ".gz"
        with tarfile.open(gz, "w:gz") as archive:
            archive.add(path, "inner.tar")
        os.replace(gz, path[:-4] + "_gz.tar")
        with self.assertRaisesRegex(data.DataError, "not an uncompressed tar archive"):
            data.resolve(path[:-4] + "_gz.tar")

    def test_missing_celeba_hq_names_all_three_forms(self):
        data_dir = _tempdir(self)
        start = time.time()
        with _stderr_bytes() as stderr, self.assertRaises(data.DataError) as cm:
            data.resolve("celeba_hq", data_dir=data_dir, image_size=128)
        self.assertLess(time.time() - start, 3.0)
        self.assertNotIn("dataset_info", stderr[0])  # TFDS's own warning is held back
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        manual = os.path.join(data_dir, "downloads", "manual")
        for part in ("folder of images", "--data_dir ~/data/celeba_hq_256",
                     "data128x128.tar", f"mkdir -p {manual} && mv data128x128.tar {manual}/",
                     "no tfds build", "celeb_a_hq/128 is built"):
            self.assertIn(part, message)

    def test_missing_ffhq_says_how(self):
        with self.assertRaisesRegex(data.DataError, "FFHQ is read from a folder.*no data_dir"):
            data.resolve("ffhq")
        empty = _tempdir(self)
        with self.assertRaisesRegex(data.DataError, "holds no image files"):
            data.resolve("ffhq", data_dir=empty)


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
        png = _png_bytes(rgba)
        folder = _tempdir(self)
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
