"""Two runs never write one folder: a second run into a locked folder stops at
once naming the holder's pid (the holder is a second process, then SIGKILLed),
and a session or a script holds the lock until its last write."""

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from unittest import mock

import tensorflow as tf

from ogan_ign import cli, training
from ogan_ign.training import run_folder
from tests.tiny_runs import REPO, SafetyCase, build_tiny, exit_of, subprocess_env


class RunLockTest(SafetyCase):

    prefix = "test_run_lock_"

    # ----------------------------------------------------- #16.5 the lock

    def test_a_second_run_into_a_locked_folder_stops_at_once_naming_the_pid(self):
        config = self.config("locked", steps=2)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import sys, time\n"
             "from ogan_ign import training\n"
             "training.lock_run_dir(sys.argv[1])\n"
             "print('locked', flush=True)\n"
             "time.sleep(600)\n", config.out_dir],
            cwd=REPO, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        try:
            self.assertEqual(holder.stdout.readline().strip(), "locked")
            built = []
            with self.assertRaisesRegex(
                    training.RunFolderError,
                    rf"^{config.out_dir} is in use by another run \(pid {holder.pid}\); wait"):
                training.train(config, lambda c, s: built.append(1) or build_tiny(c, s))
            self.assertEqual(built, [])  # stopped before the model was built
            self.assertEqual(os.listdir(config.out_dir), [training.LOCK_FILE])
            status, _, stderr = exit_of(lambda: cli.train_or_exit(config, build_tiny))
            self.assertEqual(status, 2)
            self.assert_one_error_line(stderr, f"(pid {holder.pid})")
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=60)
            holder.stdout.close()
        # The kernel dropped the lock with the killed process; the file stays.
        self.assertEqual(holder.returncode, -signal.SIGKILL)
        fd = training.lock_run_dir(config.out_dir)
        with open(os.path.join(config.out_dir, training.LOCK_FILE)) as f:
            self.assertEqual(f.read().strip(), str(os.getpid()))
        # Held here, a run of this process is refused too, until it is released.
        with self.assertRaisesRegex(training.RunFolderError, rf"pid {os.getpid()}"):
            training.lock_run_dir(config.out_dir)
        training.unlock_run_dir(fd)
        training.unlock_run_dir(training.lock_run_dir(config.out_dir))

    def test_a_session_holds_the_lock_until_its_last_write(self):
        config = self.config("session", steps=2, ckpt_every=2, sample_every=0, log_every=2)
        with contextlib.redirect_stdout(io.StringIO()), \
                training.session(config, build_tiny) as trained:
            self.assertEqual(training.global_step(trained.model), 2)
            with self.assertRaisesRegex(training.RunFolderError, "in use by another run"):
                training.train(config, build_tiny)
            trained.folder.merge_json("metrics.json", {"steps": 2})
        with open(os.path.join(config.out_dir, "metrics.json")) as f:
            self.assertEqual(json.load(f), {"steps": 2})
        training.unlock_run_dir(training.lock_run_dir(config.out_dir))  # released at the end

    def test_the_lock_is_held_through_a_scripts_last_write(self):
        # metrics.json, written after training by the scripts, is the run's last
        # write: a second run must not be able to start before it is done.
        config = self.config("held", steps=2)
        merge, held = run_folder.RunFolder.merge_json, []

        def merge_checking_the_lock(folder, name, values):
            try:
                run_folder.unlock_run_dir(run_folder.lock_run_dir(config.out_dir))
                held.append((name, False))
            except training.RunFolderError:
                held.append((name, True))
            return merge(folder, name, values)

        def script():
            with cli.training_run(config, build_tiny) as run:
                run.metrics = {"final_metric": 2.5}

        with mock.patch.object(run_folder.RunFolder, "merge_json", merge_checking_the_lock):
            status, stdout, stderr = exit_of(script)
        self.assertIsNone(status, stderr)
        self.assertEqual(held, [("metrics.json", True)])
        with open(os.path.join(config.out_dir, "metrics.json")) as f:
            self.assertEqual(json.load(f)["final_metric"], 2.5)
        self.assertIn("final_metric 2.5", stdout)
        # ... and released once the script is done.
        run_folder.unlock_run_dir(run_folder.lock_run_dir(config.out_dir))


if __name__ == "__main__":
    tf.test.main()
