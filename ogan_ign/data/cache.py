"""The cache of a folder or archive too large to hold in memory: its usable images,
decoded once at the training size, in a file that later epochs and later runs read
in place (memory-mapped) instead of decoding the originals again.

One source at one size and channel count has one cache, two files in the cache
folder named by the source's kind, location, size and channels:

* ``<stem>.npy`` — uint8 (M, S, S, C), M the image files the source listed; row
  i < N is the i-th usable image in the source's order (N = the usable ones).
* ``<stem>.json`` — the fingerprint (every file's name with its size and
  modification time; an archive's members with their offsets and sizes and the
  archive's own size and time), N, which files were usable and why the others
  were not (so that a later run repeats the check's warning without decoding).

Both are written through `ogan_ign.atomic.replacing`, the .npy first; the .json
is what makes the pair trusted, and it is removed before a new .npy is written.
A run killed while writing leaves at most a temporary (``<stem>.tmp.npy``) and no
.json that vouches for it. A .json whose fingerprint differs from the source's
(files added, removed, rewritten or touched) is stale: one warning line says so and
how many files changed, and the cache is written again.

Where: `cache_dir` when given (an error if it cannot be written); by default a
``.ogan_ign_cache`` folder beside the data (inside a folder source, beside an
archive) — on the disk that already holds the data, found again by every run on
it, gone with it — else, when that cannot be written (read-only data),
``$XDG_CACHE_HOME/ogan_ign/data`` (``~/.cache/ogan_ign/data``).
"""

import contextlib
import hashlib
import json
import os
import re
import tempfile

from absl import logging
import numpy as np

from ogan_ign.atomic import replacing
from ogan_ign.data.common import DataError, shown

CACHE_FOLDER = ".ogan_ign_cache"
_FORMAT = 1  # bumped when the files' layout or the decoding changes


def default_dirs(location):
    """The default cache folders of a source at `location`, in order of preference."""
    base = location if os.path.isdir(location) else os.path.dirname(location)
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.join(base, CACHE_FOLDER), os.path.join(home, "ogan_ign", "data")]


def _writable(directory):
    """None when a file can be created in `directory` (made if missing), else why not."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def _jsonable(value):
    return json.loads(json.dumps(value))


class ImageCache:
    """The cache of one checked source (see the module docstring).

    spec: the source's `DataSpec`; entries: {file name: what must not change}.
    """

    def __init__(self, directory, spec, entries):
        self.spec, self.entries = spec, _jsonable(entries)
        identity = json.dumps([_FORMAT, spec.kind, spec.location, spec.image_size,
                               spec.channels])
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.name)[:60]
        stem = (f"{slug}-{spec.image_size}px-{spec.channels}ch-"
                f"{hashlib.sha256(identity.encode()).hexdigest()[:12]}")
        self.npy = os.path.join(directory, stem + ".npy")
        self.meta = os.path.join(directory, stem + ".json")
        text = json.dumps([identity, sorted(self.entries.items())])
        self.fingerprint = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def read(self):
        """(rows: read-only uint8 N×S×S×C memory map, kept, reasons, chatter) as the
        check found them, or None when there is no trusted cache here (a stale one
        is reported in one line)."""
        try:
            with open(self.meta, encoding="utf-8") as f:
                meta = json.load(f)
        except (OSError, ValueError):
            return None
        if meta.get("fingerprint") != self.fingerprint:
            old = meta.get("entries", {})
            changed = sum(old.get(k) != self.entries.get(k)
                          for k in old.keys() | self.entries.keys())
            logging.warning("cache of %s is stale (%d files changed): decoding again",
                            shown(self.spec.location), changed)
            return None
        size, channels = self.spec.image_size, self.spec.channels
        try:
            rows = np.load(self.npy, mmap_mode="r")
        except (OSError, ValueError):
            return None
        if rows.dtype != np.uint8 or rows.shape[1:] != (size, size, channels) \
                or rows.shape[0] < meta["count"]:
            return None
        reasons = {int(i): why for i, why in meta["reasons"].items()}
        return rows[:meta["count"]], meta["kept"], reasons, meta["chatter"]

    def write(self, num_items, decode):
        """Runs `decode(rows)` on a fresh uint8 num_items×S×S×C file-backed array
        (it fills rows and returns (rows, kept, reasons, chatter) as
        `files._decode_all`), then trusts the cache. Returns decode's result with
        the rows read back from the cache. OSError as raised (the cache is then
        not trusted); any other failure leaves no trusted cache either."""
        size, channels = self.spec.image_size, self.spec.channels
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.meta)  # from here on nothing vouches for the .npy
        with replacing(self.npy) as tmp:
            rows = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                             shape=(num_items, size, size, channels))
            _reserve(tmp)  # a full disk fails here, not with SIGBUS while filling
            _, kept, reasons, chatter = decode(rows)
            rows.flush()
            del rows
        meta = {"fingerprint": self.fingerprint, "count": len(kept), "kept": kept,
                "reasons": {str(i): why for i, why in reasons.items()},
                "chatter": chatter, "entries": self.entries}
        with replacing(self.meta) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(meta, f)
        return np.load(self.npy, mmap_mode="r")[:len(kept)], kept, reasons, chatter


def _reserve(path):
    """Allocates the whole file on disk where the OS can (posix_fallocate)."""
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.path.getsize(path))


def find(spec, entries, cache_dir):
    """(a trusted cache's `read()` or None, the `ImageCache` to write or None).

    cache_dir: the folder to use; None for `default_dirs`. A given folder that
    cannot be written raises DataError, unless it already holds a trusted cache;
    when no default folder can be written, one warning says the images will be
    decoded in every epoch."""
    candidates = [cache_dir] if cache_dir is not None else default_dirs(spec.location)
    caches = [ImageCache(os.path.expanduser(d), spec, entries) for d in candidates]
    for cache in caches:
        found = cache.read()
        if found is not None:
            return found, None
    why = None
    for cache in caches:
        why = _writable(os.path.dirname(cache.npy))
        if why is None:
            return None, cache
    where = shown(os.path.dirname(caches[0].npy))
    if cache_dir is not None:
        raise DataError(f"cannot write the image cache in {where} ({why}); give a "
                        "writable cache folder")
    logging.warning("cannot write an image cache for %s (%s: %s); its images will be "
                    "decoded in every epoch", shown(spec.location), where, why)
    return None, None
