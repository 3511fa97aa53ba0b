"""The run folder's writes and lock (ogan_ign/training/run_folder.py), without training."""

import contextlib
import errno
import io
import json
import os
import tempfile
from unittest import mock

import tensorflow as tf

from ogan_ign import atomic, images
from ogan_ign.training import run_folder


class AtomicWriteTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = tempfile.mkdtemp(prefix="test_run_folder_")

    def test_one_temporary_name_beside_the_target_keeping_its_suffix(self):
        self.assertEqual(atomic.temporary_path("/r/config.json"), "/r/config.tmp.json")
        self.assertEqual(atomic.temporary_path("/r/model.keras"), "/r/model.tmp.keras")
        for name in ("config.tmp.json", "model.tmp.keras", "config.json.tmp",
                     ".00000012.png.a1b2c3.tmp"):
            self.assertTrue(atomic.is_temporary(name), name)
        for name in ("config.json", "model.keras", "00000012.png", ".lock", "tmp"):
            self.assertFalse(atomic.is_temporary(name), name)

    def test_pngs_and_every_other_write_go_through_the_same_temporary(self):
        # images.save_png uses the one writer too: a failing write leaves the old
        # file and no temporary, and a whole one is readable by all.
        import numpy as np  # pylint: disable=import-outside-toplevel
        path = os.path.join(self.dir, "grid.png")
        images.save_png(path, np.zeros((4, 4, 3), np.uint8))
        with open(path, "rb") as f:
            before = f.read()
        with mock.patch("imageio.v3.imwrite", side_effect=OSError(errno.ENOSPC, "full")), \
                self.assertRaises(OSError):
            images.save_png(path, np.ones((4, 4, 3), np.uint8))
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(os.listdir(self.dir), ["grid.png"])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)

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


class LockTest(tf.test.TestCase):

    def setUp(self):
        super().setUp()
        self.dir = os.path.join(tempfile.mkdtemp(prefix="test_run_folder_"), "a", "run")

    def flock_fails(self, number):
        return mock.patch.object(run_folder.fcntl, "flock",
                                 side_effect=OSError(number, os.strerror(number)))

    def test_a_file_system_that_cannot_lock_is_said_in_one_line_and_the_run_goes_on(self):
        for number in (errno.ENOLCK, errno.EOPNOTSUPP):
            out = io.StringIO()
            with self.subTest(errno=errno.errorcode[number]), self.flock_fails(number), \
                    contextlib.redirect_stdout(out):
                run_folder.unlock_run_dir(run_folder.lock_run_dir(self.dir))
            (line,) = out.getvalue().splitlines()
            self.assertStartsWith(line, f"warning: {self.dir} cannot be locked "
                                        f"({os.strerror(number)}: the file system does not "
                                        "support flock); continuing unlocked")

    def test_a_lock_held_elsewhere_is_refused(self):
        with self.flock_fails(errno.EWOULDBLOCK), \
                self.assertRaisesRegex(run_folder.RunFolderError, "is in use by another run"):
            run_folder.lock_run_dir(self.dir)

    def test_a_refused_start_leaves_nothing_and_releases_the_lock(self):
        with self.assertRaisesRegex(run_folder.ConfigError, "bad flag"):
            with run_folder.RunFolder(self.dir):
                self.assertTrue(os.path.exists(os.path.join(self.dir, run_folder.LOCK_FILE)))
                raise run_folder.ConfigError("bad flag")
        self.assertFalse(os.path.exists(os.path.dirname(self.dir)))
        with run_folder.RunFolder(self.dir) as folder:
            folder.begin_writes()
            folder.write_json("config.json", {})
        self.assertEqual(sorted(os.listdir(self.dir)), [run_folder.LOCK_FILE, "config.json"])

    def test_a_failed_write_after_the_start_names_the_last_checkpoint(self):
        with self.assertRaisesRegex(run_folder.RunFolderError,
                                    r"^cannot write x: No space left on device; no checkpoint "
                                    r"was written yet$"):
            with run_folder.RunFolder(self.dir) as folder:
                folder.begin_writes()
                raise run_folder.RunFolderError("cannot write x: No space left on device")
        self.assertTrue(os.path.isdir(self.dir))  # what was written stays
        run_folder.unlock_run_dir(run_folder.lock_run_dir(self.dir))
