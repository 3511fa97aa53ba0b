"""The run folder: its lock, its writes, and what an interrupted run left in it.

`RunFolder` is the folder while a run uses it: the chief's OS lock
(`lock_run_dir`) from the checks to the last write, so a second run stops at
once, naming the holder's PID (where the file system cannot lock, one line says
so and the run goes on). A write failing for room or rights is a one-line
RunFolderError (`writing`). config.json, metrics.json and model.keras go through
one atomic helper (`atomic_write`: a temporary beside the target, then a
rename), so a kill leaves the previous version; the next start removes what an
interrupted write left (`remove_stale_temporaries`).
"""

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile

import tensorflow as tf

from ogan_ign import atomic
from ogan_ign.atomic import is_temporary
from ogan_ign.training.config import ConfigError

LOCK_FILE = ".lock"
# flock's answers when another open file holds the lock; any other error means
# the file system cannot lock at all.
HELD_ERRNOS = {errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES}
# A write that failed for want of room or rights (OSError numbers; TensorFlow's
# errors carry the same words in their message).
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EFBIG}
WRITE_REASONS = ("No space left on device", "Disk quota exceeded", "Permission denied",
                 "Read-only file system", "File too large")


class RunFolderError(ConfigError):
    """The run folder cannot be written (disk full, no permission, in use by
    another run); the message is one line and says what stays intact."""


def check_out_dir(out_dir):
    """ConfigError unless a run folder can be made or written at `out_dir`.

    Checked before anything is built: the folder (or its nearest existing
    parent) must be a folder in which a sub-folder can be created; the probe is
    removed at once, so nothing stays behind.
    """
    path = os.path.abspath(out_dir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(f"--out_dir {out_dir} is a file, not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(f"--out_dir {out_dir}: {parent} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ogan_ign-probe-", dir=parent))
    except OSError as e:
        raise ConfigError(f"--out_dir {out_dir} is not usable: cannot create a folder in "
                          f"{parent} ({e.strerror or e})") from None


def missing_ancestor(path):
    """The outermost folder of `path` that does not exist yet (None if it does)."""
    path, missing = os.path.abspath(path), None
    while not os.path.exists(path):
        path, missing = os.path.dirname(path), path
    return missing


def undo_created(run_dir, created):
    """Removes the lock file and the folders this run made before it failed its checks."""
    if created is None:
        return
    with contextlib.suppress(OSError):
        os.remove(os.path.join(run_dir, LOCK_FILE))
    path = os.path.abspath(run_dir)
    while True:
        try:
            os.rmdir(path)
        except OSError:
            return
        if path == created:
            return
        path = os.path.dirname(path)


def lock_run_dir(out_dir):
    """Takes the run folder's lock; returns the open lock file's descriptor.

    An OS-level lock (flock on out_dir/.lock), held while the descriptor is open:
    closing it, the process ending, or the process being killed (even by
    SIGKILL: the kernel drops the lock) releases it. The holder's PID is written
    into the file. Raises RunFolderError naming that PID when another process
    holds it. Creates out_dir. (flock is per open file: a second call in the same
    process, before `unlock_run_dir`, is refused too.) Where the file system
    cannot lock (flock fails with ENOLCK, EOPNOTSUPP ..., as some network file
    systems do) the run goes on unlocked, after a one-line warning: refusing
    would leave such a folder no way to train.
    """
    try:
        os.makedirs(out_dir, exist_ok=True)
        fd = os.open(os.path.join(out_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise RunFolderError(f"cannot write {out_dir}: {e.strerror or e}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno not in HELD_ERRNOS:
            print(f"warning: {out_dir} cannot be locked ({e.strerror or e}: the file system "
                  "does not support flock); continuing unlocked, so make sure no other run "
                  "uses this folder", flush=True)
            return fd
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"{out_dir} is in use by another run (pid {holder}); wait for it "
                             "to end or choose another --out_dir") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_run_dir(fd):
    """Releases a lock of `lock_run_dir` (the file stays; the lock is the flock)."""
    os.close(fd)


class RunFolder:
    """A run's folder while a run uses it, as a context manager.

    On entry the lock is taken when `lock` (the chief's part; other workers write
    nothing); it is held until exit, so every write made through the folder
    before then (the driver's and its caller's final ones, e.g. metrics.json) is
    the locked run's. On exit with an error: before `begin_writes`, the folders
    and the lock file this run created are removed (a refused start leaves
    nothing); after it, a RunFolderError gains where the last good checkpoint
    is (`last_checkpoint_note`).
    """

    def __init__(self, path, lock=True):
        self.path, self.lock = path, lock
        self.fd = self.created = None
        self.writes_started = False

    def __enter__(self):
        self.created = missing_ancestor(self.path)
        if self.lock:
            self.fd = lock_run_dir(self.path)
        return self

    def __exit__(self, kind, error, traceback):
        try:
            if isinstance(error, Exception) and not self.writes_started:
                undo_created(self.path, self.created)
            elif isinstance(error, RunFolderError):
                raise RunFolderError(f"{error}; {last_checkpoint_note(self.path)}") from None
        finally:
            if self.fd is not None:
                unlock_run_dir(self.fd)
                self.fd = None
        return False

    def begin_writes(self):
        """From here on a failure keeps what was written; on the chief, removes
        what an interrupted write left first (`remove_stale_temporaries`)."""
        self.writes_started = True
        if self.lock:
            removed = remove_stale_temporaries(self.path)
            if removed:
                print(f"removed {len(removed)} temporary file(s) left by an interrupted write "
                      f"in {self.path}", flush=True)

    def join(self, *names):
        return os.path.join(self.path, *names)

    def write_json(self, name, value):
        write_json(self.join(name), value)

    def merge_json(self, name, values):
        merge_json(self.join(name), values)


def checkpoint_step(path):
    """The step of a checkpoint path ckpt-<step> (the driver numbers them so)."""
    return int(path.rsplit("-", 1)[1])


def remove_stale_temporaries(run_dir):
    """Removes what an interrupted write left (a kill, a full disk); returns the
    paths. Only with the run folder's lock held: another run's files in flight
    look the same.

    checkpoints/: TensorFlow's ckpt-N_temp* staging and the files of a
    checkpoint newer than the latest one the index names (written, never
    committed); elsewhere every `is_temporary` name (`atomic_write`,
    images.save_png).
    """
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    removed = remove_uncommitted_checkpoints(ckpt_dir)
    for root, dirs, files in os.walk(run_dir):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != ckpt_dir]
        removed += [remove(os.path.join(root, name)) for name in files if is_temporary(name)]
    return removed


def remove(path):
    """Removes a file or a folder tree (errors ignored); returns `path`."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)
    return path


def remove_uncommitted_checkpoints(ckpt_dir):
    """Removes TensorFlow's ckpt-N_temp* staging and the files of checkpoints
    newer than the latest one the index names; returns the paths."""
    removed = []
    if not os.path.isdir(ckpt_dir):
        return removed
    latest = tf.train.latest_checkpoint(ckpt_dir)
    newest = checkpoint_step(latest) if latest else -1
    for name in sorted(os.listdir(ckpt_dir)):
        match = re.match(r"ckpt-(\d+)(_temp.*|\.index|\.data-.*)$", name)
        if match and (match.group(2).startswith("_temp") or int(match.group(1)) > newest):
            removed.append(remove(os.path.join(ckpt_dir, name)))
    return removed


def write_failure(error):
    """The reason when `error` is a write that failed for room or rights, else None."""
    if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
        return os.strerror(error.errno)
    if isinstance(error, tf.errors.OpError):
        for reason in WRITE_REASONS:
            if reason.lower() in str(error.message).lower():
                return reason
    return None


@contextlib.contextmanager
def writing(what):
    """Turns a write failing for room or rights into a one-line RunFolderError
    ("cannot write <what>: <reason>"); other errors pass."""
    try:
        yield
    except (OSError, tf.errors.OpError) as e:
        reason = write_failure(e)
        if reason is None:
            raise
        raise RunFolderError(f"cannot write {what}: {reason}") from None


def last_checkpoint_note(run_dir):
    """What a stopped run leaves to resume from, for its error line."""
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest:
        return f"the last good checkpoint (step {checkpoint_step(latest)}) is intact in {ckpt_dir}"
    return "no checkpoint was written yet"


def diverged_advice(config, run_dir):
    """How to go on after a NaN / Inf: rescue from the last good checkpoint with
    a lower learning rate, or start again when there is none."""
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    latest = tf.train.latest_checkpoint(ckpt_dir)
    lower = f"{config.lr / 10:g}"
    if latest:
        return (f"stopped, the last good checkpoint is step {checkpoint_step(latest)} in "
                f"{ckpt_dir}: to resume from it with a lower learning rate, run the same "
                f"command with --lr {lower} --allow_change lr")
    return (f"stopped, no checkpoint was written yet (the first is at step "
            f"{min(config.ckpt_every, config.steps)}): rerun with a lower --lr, e.g. "
            f"--lr {lower}")


@contextlib.contextmanager
def atomic_write(path):
    """`atomic.replacing` for the run folder: a failure for room or rights is a
    RunFolderError (`writing`); a kill or a failure leaves `path` as it was."""
    with writing(path), atomic.replacing(path) as tmp:
        yield tmp


def write_json(path, value):
    """Writes JSON atomically (`atomic_write`)."""
    with atomic_write(path) as tmp, open(tmp, "w") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def merge_json(path, values):
    """Updates the JSON object at `path` with `values`, keeping its other keys."""
    stored = {}
    if os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
    write_json(path, {**stored, **values})


def export(model, path):
    """Saves the model to a .keras `path` atomically (`atomic_write`)."""
    with atomic_write(path) as tmp:
        model.save(tmp)
    return path
