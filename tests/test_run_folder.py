"""The run folder's writes and lock (ogan_ign/training/run_folder.py), without training."""

import errno
import fcntl
import json
import os
import tempfile
from unittest import mock

import tensorflow as tf

from ogan_ign.training import run_folder


class AtomicWriteTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="test_run_folder_")

    def test_one_temporary_name_beside_the_target_keeping_its_suffix(self):
        self.assertEqual(run_folder.temporary_path("/r/config.json"), "/r/config.tmp.json")
        self.assertEqual(run_folder.temporary_path("/r/model.keras"), "/r/model.tmp.keras")
        for name in ("config.tmp.json", "model.tmp.keras", "config.json.tmp",
                     ".00000012.png.a1b2c3.tmp"):
            self.assertTrue(run_folder.is_temporary(name), name)
        for name in ("config.json", "model.keras", "00000012.png", ".lock", "tmp"):
            self.assertFalse(run_folder.is_temporary(name), name)

    def test_a_write_replaces_whole_or_leaves_the_old_file(self):
        path = os.path.join(self.dir, "metrics.json")
        run_folder.write_json(path, {"a": 1})
        run_folder.merge_json(path, {"b": 2})
        with open(path) as f:
            self.assertEqual(json.load(f), {"a": 1, "b": 2})
        for error, raised in ((OSError(errno.ENOSPC, "No space left on device"),
                               run_folder.RunFolderError),
                              (ValueError("not JSON"), ValueError)):
            with self.subTest(error=type(error).__name__), \
                    mock.patch.object(run_folder.json, "dump", side_effect=error), \
                    self.assertRaises(raised):
                run_folder.write_json(path, {"c": 3})
            with open(path) as f:
                self.assertEqual(json.load(f), {"a": 1, "b": 2})
            self.assertEqual(sorted(os.listdir(self.dir)), ["metrics.json"])

    def test_stale_temporaries_are_removed_and_nothing_else(self):
        keep = ["config.json", "samples/00000004.png", "samples/real.png"]
        stale = ["config.tmp.json", "model.tmp.keras", "samples/.00000008.png.x1.tmp"]
        for name in keep + stale:
            os.makedirs(os.path.dirname(os.path.join(self.dir, name)), exist_ok=True)
            with open(os.path.join(self.dir, name), "w") as f:
                f.write("x")
        removed = run_folder.remove_stale_temporaries(self.dir)
        self.assertCountEqual(removed, [os.path.join(self.dir, n) for n in stale])
        for name in keep:
            self.assertTrue(os.path.exists(os.path.join(self.dir, name)), name)
