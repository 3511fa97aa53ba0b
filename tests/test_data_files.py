"""Tests for ogan_ign.data's folders and archives, and CelebA-HQ / FFHQ in the forms
people hold them: every source on small data made here, every message."""

import os
import tarfile
import time
from unittest import mock
import warnings

from absl import logging
import numpy as np
import tensorflow as tf

from image_files import png_bytes, save, stderr_bytes, tempdir, write_tar
from ogan_ign import data


def _counted_loads():
    """Counts the images folders and archives read (usable or not)."""
    return mock.patch.object(data.FileSource, "load", autospec=True,
                             side_effect=data.FileSource.load)


class FolderTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempdir(self)
        rng = np.random.default_rng(0)
        rgb = lambda h, w: rng.integers(0, 256, [h, w, 3], dtype=np.uint8)
        d = self.dir
        save(f"{d}/a.png", rgb(40, 30))
        save(f"{d}/sub/b.JPG", rgb(50, 50)[..., 0])  # grey JPEG, upper-case extension
        save(f"{d}/sub/deeper/c.gif", rgb(17, 23), "GIF")
        save(f"{d}/d.bmp", rgb(300, 200), "BMP")
        save(f"{d}/e.webp", rgb(64, 64), "WEBP")
        save(f"{d}/f.png", rgb(20, 20), mode="LA")
        save(f"{d}/g.jpeg", rgb(5, 9))  # tiny: upsampled
        save(f"{d}/h.png", np.full([8, 8], 40000, np.uint16), mode="I;16")
        self.valid = 8
        with open(f"{d}/zero.jpg", "wb"):
            pass
        with open(f"{d}/text.png", "w") as f:
            f.write("not an image")
        with open(f"{d}/sub/truncated.png", "wb") as f:
            f.write(png_bytes(rgb(64, 64))[:200])
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
            again = data.resolve(self.dir, image_size=32)  # a catalog of its own: checked
            self.assertEqual(load.call_count, 4 * (self.valid + self.bad))
            self.assertEqual(again, catalog.resolve(self.dir, image_size=32))

    def test_load_arrays_counts_only_decodable(self):
        images, labels = data.load_arrays(data.resolve(self.dir, image_size=28, channels=1))
        self.assertIsNone(labels)
        self.assertEqual(images.shape, (self.valid, 28, 28, 1))
        self.assertGreaterEqual(images.min(), -1.0)
        self.assertLessEqual(images.max(), 1.0)
        images, _ = data.load_arrays(data.resolve(self.dir, image_size=28), limit=3)
        self.assertEqual(images.shape, (3, 28, 28, 3))

    def test_centre_crop_and_channel_conversions(self):
        d = tempdir(self)
        wide = np.zeros([40, 80, 3], np.uint8)
        wide[:, :20] = [255, 0, 0]  # red margins are cropped away
        wide[:, 60:] = [255, 0, 0]
        wide[:, 20:60] = [0, 0, 255]
        save(f"{d}/0_wide.png", wide)
        save(f"{d}/1_grey.png", np.full([16, 16], 200, np.uint8))
        rgba = np.zeros([16, 16, 4], np.uint8)
        rgba[..., :3] = 255  # white but fully transparent → black background
        save(f"{d}/2_rgba.png", rgba)
        save(f"{d}/3_deep.png", np.full([8, 8], 257 * 100, np.uint16), mode="I;16")
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
        d = tempdir(self)
        stripes = np.zeros([256, 256], np.uint8)
        stripes[:, ::2] = 255  # a 1 px pattern: aliasing would keep it, a filter averages
        save(f"{d}/stripes.png", stripes)
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
        save("fmnist/x.png", np.zeros([8, 8, 3], np.uint8))
        with mock.patch.object(data.idx, "FASHION_MNIST_DIR", "/nonexistent"):
            with self.assertRaisesRegex(data.DataError, "Fashion-MNIST not found"):
                data.resolve("fmnist")
        self.assertEqual(data.resolve("./fmnist").kind, "folder")
        self.assertEqual(data.resolve("sub").kind, "folder")
        self.assertEqual(data.canonical_dataset("fmnist"), "fashion_mnist")
        self.assertEqual(data.canonical_dataset("./fmnist"), os.path.realpath("fmnist"))

    def test_folder_identity_ignores_spelling(self):
        link = os.path.join(tempdir(self), "link")
        os.symlink(self.dir, link)
        spellings = (self.dir, self.dir + "/", self.dir + "/sub/..", link)
        self.assertLen({data.canonical_dataset(s) for s in spellings}, 1)
        self.assertEqual(data.resolve(link).identity, os.path.realpath(self.dir))

    def test_one_line_errors(self):
        empty = tempdir(self)
        with self.assertRaisesRegex(data.DataError, "no image files"):
            data.resolve(empty)
        broken = tempdir(self)
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
        d = tempdir(self)
        save(f"{d}/plain.png", np.full([8, 8, 3], 10, np.uint8))
        with open(os.path.join(os.fsencode(d), b"\xff odd.png"), "wb") as f:
            f.write(png_bytes(np.full([8, 8, 3], 250, np.uint8)))
        spec = data.resolve(d, image_size=28)
        self.assertEqual(spec.num_examples, 2)
        batch = next(iter(data.make_dataset(spec, 2, shuffle=False))).numpy()
        images, _ = data.load_arrays(spec)
        self.assertAllEqual(batch, images)
        self.assertAllClose(sorted(images.max(axis=(1, 2, 3))), [10 / 127.5 - 1, 250 / 127.5 - 1])

    def test_non_utf8_names_of_junk_are_shown_escaped(self):
        d = tempdir(self)
        with open(os.path.join(os.fsencode(d), b"bad\xfe.png"), "wb") as f:
            f.write(b"junk")
        with self.assertRaises(data.DataError) as cm:
            data.resolve(d)
        self.assertIn("bad\\xfe.png", str(cm.exception))
        str(cm.exception).encode("utf-8")  # printable: no lone surrogates

    def test_symlinked_directories_are_followed_once(self):
        d = tempdir(self)
        for i in range(5):
            save(f"{d}/{i}.png", np.full([8, 8, 3], i, np.uint8))
        os.symlink(".", f"{d}/self")  # a loop
        elsewhere = tempdir(self)
        save(f"{elsewhere}/far.png", np.zeros([8, 8, 3], np.uint8))
        os.symlink(elsewhere, f"{d}/far")  # reachable only through the link
        os.symlink(elsewhere, f"{d}/far_again")  # a second link to it adds nothing
        spec = data.resolve(d, image_size=28)
        self.assertEqual(spec.num_examples, 6)
        self.assertLen({os.path.realpath(p) for p in spec.files}, 6)

    def test_junk_is_summarised_without_decoder_output(self):
        d = tempdir(self)
        rng = np.random.default_rng(1)
        jpeg = png_bytes(rng.integers(0, 256, [64, 64, 3], dtype=np.uint8), "JPEG")
        for i in range(3):
            # Garbage inside the entropy-coded data: libjpeg warns on stderr.
            with open(f"{d}/garbled{i}.jpg", "wb") as f:
                f.write(jpeg[:600] + rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
                        + jpeg[900:])
            with open(f"{d}/truncated{i}.jpg", "wb") as f:
                f.write(jpeg[:len(jpeg) // 2])
        with stderr_bytes() as stderr, self.assertRaises(data.DataError) as cm:
            data.resolve(d)
        self.assertEqual(stderr, [""])
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        self.assertRegex(message, r"none of the 6 image files under .* can be decoded: \d")
        save(f"{d}/good.png", np.zeros([8, 8, 3], np.uint8))
        with stderr_bytes() as stderr:
            spec = data.resolve(d, image_size=28)
            data.load_arrays(spec)
        self.assertEqual(spec.num_examples, 1)
        self.assertNotIn("JPEG", stderr[0])

    def test_decoder_warnings_go_to_the_summary(self):
        d = tempdir(self)
        for i in range(2):
            save(f"{d}/{i}.png", np.zeros([8, 8, 3], np.uint8))
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
        clean = tempdir(self)  # all usable: the warnings are still summarised
        for i in range(2):
            save(f"{clean}/{i}.png", np.zeros([8, 8, 3], np.uint8))
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
        return png_bytes(self.rng.integers(0, 256, [side, side, 3], dtype=np.uint8), fmt)

    def _celeba_archive(self, path, side, count=3, fmt="PNG"):
        """Like TFDS's data{R}x{R}.tar: R×R images, here under a folder of the same
        name, beside a directory entry and a non-image member that are passed over."""
        members = {f"data{side}x{side}": None, f"data{side}x{side}/README.txt": b"x"}
        for i in range(count):
            members[f"data{side}x{side}/{i:05d}.{fmt.lower()}"] = self._image(side, fmt)
        write_tar(path, members)

    def test_manual_archive_is_read_directly(self):
        data_dir = tempdir(self)
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
        data_dir = tempdir(self)
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
        data_dir = tempdir(self)
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
        path = os.path.join(tempdir(self), "faces.tar")
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
        data_dir = tempdir(self)
        start = time.time()
        with stderr_bytes() as stderr, self.assertRaises(data.DataError) as cm:
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
        empty = tempdir(self)
        with self.assertRaisesRegex(data.DataError, "holds no image files"):
            data.resolve("ffhq", data_dir=empty)


if __name__ == "__main__":
    tf.test.main()
