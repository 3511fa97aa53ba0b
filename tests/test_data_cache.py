"""Tests for the cache of folders and archives over the memory budget: written once,
read without decoding by later epochs and runs, the same pixels, invalidated by a
changed source, never trusted half-written, and a clear line when it cannot be
written. Small generated sources and a lowered budget."""

import json
import os
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from image_files import png_bytes, save, tempdir, write_tar
from ogan_ign import data, networks, training
from ogan_ign.data import cache
from ogan_ign.gan import SingleLossGAN

BUDGET = 1000  # bytes: every source here is over it (one 32 px RGB image is 3072)


def _counted_loads():
    """Counts the images folders and archives decode (usable or not)."""
    return mock.patch.object(data.FileSource, "load", autospec=True,
                             side_effect=data.FileSource.load)


def _epochs(spec, epochs, **kwargs):
    """`epochs` epochs of make_dataset at batch 1, each as uint8-valued floats."""
    ds = data.make_dataset(spec, 1, repeat=True, seed=5, memory_budget=BUDGET, **kwargs)
    it = iter(ds)
    return [np.concatenate([next(it).numpy() for _ in range(spec.num_examples)])
            for _ in range(epochs)]


class CacheTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempdir(self)
        self.cache_dir = os.path.join(tempdir(self), "cache")
        rng = np.random.default_rng(0)
        for i in range(6):
            save(f"{self.dir}/{i}.png", rng.integers(0, 256, [40, 36, 3], dtype=np.uint8))
        with open(f"{self.dir}/bad.png", "w") as f:
            f.write("not an image")

    def resolve(self, cache_dir="default", budget=BUDGET):
        cache_dir = self.cache_dir if cache_dir == "default" else cache_dir
        return data.Catalog(memory_budget=budget).resolve(self.dir, image_size=32,
                                                          cache_dir=cache_dir)

    def cache_files(self):
        return sorted(os.listdir(self.cache_dir)) if os.path.isdir(self.cache_dir) else []

    def test_first_run_writes_the_cache_once_later_epochs_and_runs_do_not_decode(self):
        with _counted_loads() as loads:
            spec = self.resolve()
        self.assertEqual(loads.call_count, 7)  # 6 images and the bad file, once
        self.assertTrue(spec.cached)
        names = self.cache_files()
        self.assertLen(names, 2)
        rows = np.load(os.path.join(self.cache_dir, names[1]))
        self.assertEqual(rows.shape, (7, 32, 32, 3))  # a row per listed file
        with open(os.path.join(self.cache_dir, names[0]), encoding="utf-8") as f:
            self.assertEqual(json.load(f)["count"], 6)
        with _counted_loads() as loads:
            _epochs(spec, 2)
            again = self.resolve()  # a later run
            self.assertEqual(again.num_examples, 6)
            _epochs(again, 1)
        self.assertEqual(loads.call_count, 0)
        self.assertTrue(again.cached)

    def test_cached_pixels_and_order_equal_the_decoded_ones(self):
        in_memory = self.resolve(budget=data.DEFAULT_MEMORY_BUDGET)
        self.assertFalse(in_memory.cached)
        self.assertEqual(self.cache_files(), [])  # under the budget: no cache
        self.resolve()
        cached = self.resolve()
        self.assertAllEqual(cached.images(), in_memory.images())
        self.assertAllEqual(cached.images(limit=2), in_memory.images()[:2])
        self.assertEqual(cached.files, in_memory.files)
        # in_memory is not cached: over the stream budget it decodes in every epoch,
        # in the order the cache is read in.
        decoded, from_cache = _epochs(in_memory, 2), _epochs(cached, 2)
        self.assertAllEqual(decoded, from_cache)
        self.assertNotAllEqual(from_cache[0], from_cache[1])  # a new order per epoch
        self.assertAllEqual(np.sort(from_cache[0], axis=0), np.sort(from_cache[1], axis=0))

    def test_shards_of_the_cache_split_it(self):
        spec = self.resolve()
        shards = []
        for shard in range(2):
            context = tf.distribute.InputContext(2, shard, 2)
            ds = data.make_dataset(spec, 2, shuffle=False, repeat=False,
                                   input_context=context, memory_budget=BUDGET)
            shards.append(np.concatenate([b.numpy() for b in ds]))
        expected = data.to_unit_range(spec.images())
        self.assertAllEqual(shards[0], expected[0::2])
        self.assertAllEqual(shards[1], expected[1::2])

    def test_the_check_warning_is_repeated_from_the_cache(self):
        self.resolve()
        with _counted_loads() as loads, self.assertLogs(level="WARNING") as logs:
            self.resolve()
        self.assertEqual(loads.call_count, 0)
        self.assertIn("Skipped 1 of 7 files", logs.output[0])
        self.assertIn("1 not an image (e.g. bad.png)", logs.output[0])

    def assert_stale(self, changed, usable):
        with _counted_loads() as loads, self.assertLogs(level="WARNING") as logs:
            spec = self.resolve()
        stale = [line for line in logs.output if "stale" in line]
        self.assertLen(stale, 1)
        self.assertIn(f"cache of {self.dir} is stale ({changed} files changed): "
                      "decoding again", stale[0])
        self.assertGreater(loads.call_count, 0)
        self.assertEqual(spec.num_examples, usable)
        with _counted_loads() as loads:
            self.resolve()  # written again, trusted again
        self.assertEqual(loads.call_count, 0)
        self.assertLen(self.cache_files(), 2)  # replaced, not added

    def test_touching_a_file_invalidates_the_cache(self):
        self.resolve()
        stat = os.stat(f"{self.dir}/3.png")
        os.utime(f"{self.dir}/3.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        self.assert_stale(changed=1, usable=6)

    def test_adding_and_removing_files_invalidates_the_cache(self):
        self.resolve()
        save(f"{self.dir}/new1.png", np.zeros([8, 8, 3], np.uint8))
        save(f"{self.dir}/new2.png", np.zeros([8, 8, 3], np.uint8))
        os.remove(f"{self.dir}/0.png")
        self.assert_stale(changed=3, usable=7)

    def test_a_write_killed_while_decoding_leaves_no_trusted_cache(self):
        calls = []

        def dies(source, item):
            calls.append(item)
            if len(calls) == 4:
                raise KeyboardInterrupt  # as a kill would stop it, mid-file
            return data.FileSource.load(source, item)

        with mock.patch.object(data.FileSource, "load", autospec=True, side_effect=dies):
            with self.assertRaises(KeyboardInterrupt):
                self.resolve()
        self.assertEqual(self.cache_files(), [])  # the temporary is gone too
        with _counted_loads() as loads:
            self.assertTrue(self.resolve().cached)
        self.assertEqual(loads.call_count, 7)

    def test_a_write_killed_before_its_record_leaves_no_trusted_cache(self):
        self.resolve()
        os.utime(f"{self.dir}/1.png", ns=(0, 0))
        with mock.patch.object(cache.json, "dump", side_effect=KeyboardInterrupt), \
                self.assertRaises(KeyboardInterrupt):
            self.resolve()  # the new .npy is written, the stale record removed
        self.assertLen(self.cache_files(), 1)
        with _counted_loads() as loads:
            self.resolve()
        self.assertEqual(loads.call_count, 7)

    def test_a_cache_dir_that_cannot_be_written_is_one_error_before_decoding(self):
        blocker = os.path.join(tempdir(self), "a_file")
        with open(blocker, "w") as f:
            f.write("x")
        with _counted_loads() as loads, self.assertRaisesRegex(
                data.DataError, r"^cannot write the image cache in .*a_file/sub \(.*\); "
                                r"give a writable cache folder$"):
            self.resolve(cache_dir=os.path.join(blocker, "sub"))
        self.assertEqual(loads.call_count, 0)

    def test_the_default_place_is_beside_the_data_else_the_user_cache(self):
        home = tempdir(self)
        with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": home}):
            self.assertTrue(self.resolve(cache_dir=None).cached)
            beside = os.path.join(self.dir, cache.CACHE_FOLDER)
            self.assertLen(os.listdir(beside), 2)
            self.assertEqual(data.resolve(self.dir, image_size=32).num_examples, 6)
            for name in os.listdir(beside):
                os.remove(os.path.join(beside, name))
            os.rmdir(beside)
            with open(beside, "w") as f:  # the data folder cannot hold it now
                f.write("x")
            self.assertTrue(self.resolve(cache_dir=None).cached)
            self.assertLen(os.listdir(os.path.join(home, "ogan_ign", "data")), 2)

    def test_no_writable_default_place_decodes_in_every_epoch_with_one_line(self):
        home = os.path.join(tempdir(self), "a_file")
        with open(home, "w") as f:
            f.write("x")
        with open(os.path.join(self.dir, cache.CACHE_FOLDER), "w") as f:
            f.write("x")
        with mock.patch.dict(os.environ, {"XDG_CACHE_HOME": home}), \
                self.assertLogs(level="WARNING") as logs:
            spec = self.resolve(cache_dir=None)
        lines = [line for line in logs.output if "cannot write" in line]
        self.assertLen(lines, 1)
        self.assertIn("its images will be decoded in every epoch", lines[0])
        self.assertFalse(spec.cached)
        with _counted_loads() as loads:
            self.assertLen(_epochs(spec, 1)[0], 6)
        self.assertGreaterEqual(loads.call_count, 6)  # decoded again (and read ahead)


    @pytest.mark.slow
    def test_a_training_run_writes_the_cache_in_its_cache_dir_and_the_next_reads_it(self):
        def build(config, spec):
            generator = networks.dcgan_generator(spec.image_size, spec.channels, 8, 8)
            critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, 8,
                                            name="critic")
            return SingleLossGAN(generator, critic, seed=config.seed)

        def run(name):
            config = training.Config(dataset=self.dir, out_dir=os.path.join(self.dir, name),
                                     cache_dir=self.cache_dir, image_size=32, batch_size=2,
                                     steps=1, sample_every=0, num_samples=4,
                                     mixed_precision="fp32")
            training.train(config, build, catalog=data.Catalog(memory_budget=BUDGET))

        run(".first")  # hidden: not images of the folder
        self.assertLen(self.cache_files(), 2)
        with _counted_loads() as loads:
            run(".second")
        self.assertEqual(loads.call_count, 0)


class ArchiveCacheTest(tf.test.TestCase):

    def test_an_archive_is_cached_and_a_touched_archive_is_stale(self):
        root = tempdir(self)
        rng = np.random.default_rng(1)
        path = os.path.join(root, "faces.tar")
        write_tar(path, {f"img/{i}.png": png_bytes(rng.integers(0, 256, [20, 20, 3],
                                                                dtype=np.uint8))
                         for i in range(4)})
        resolve = lambda: data.Catalog(memory_budget=BUDGET).resolve(path, image_size=32)
        first = resolve()
        self.assertTrue(first.cached)
        self.assertLen(os.listdir(os.path.join(root, cache.CACHE_FOLDER)), 2)
        with _counted_loads() as loads:
            self.assertAllEqual(resolve().images(), first.images())
        self.assertEqual(loads.call_count, 0)
        os.utime(path, ns=(0, 0))
        with self.assertLogs(level="WARNING") as logs:
            resolve()
        self.assertIn("is stale (4 files changed)", logs.output[0])
