"""Images in files: a folder, searched recursively (png, jpg/jpeg, bmp, gif — first
frame — and webp; file names may hold any bytes; a symlinked directory is entered
once, so a link loop adds nothing), or an uncompressed ``.tar`` of images, whose
members are read in place, by offset.

Both are checked whole when resolved: every image is decoded (with Pillow, in
threads; nothing is printed per file), the unusable ones are left out and summarised
in one warning, and `num_examples` counts the usable ones. When the decoded images fit
the memory budget (`DEFAULT_MEMORY_BUDGET`) the source keeps them, so its pipelines do
not decode again; larger sources write them to a cache file as they are checked
(`cache`), and later epochs and later runs read that file in place."""

import collections
import concurrent.futures
import dataclasses
import os
import tarfile
import time
import warnings

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from ogan_ign.data import cache
from ogan_ign.data.common import (DEFAULT_MEMORY_BUDGET, IMAGE_EXTENSIONS, DataError,
                                  Source, base_name, shown, to_unit_range)
from ogan_ign.data.fit import fit_encoded

_LOG_EVERY_SECONDS = 10.0
_EXTENSION_LIST = ", ".join(e[1:] for e in IMAGE_EXTENSIONS)


class FileSource(Source):
    """Images in files, each read by `read(item)` and fitted by `fit_encoded`.

    files: the usable images' paths (a folder) or member names (an archive), in order.
    preposition: how a message places the images at the location (under a folder,
      in an archive).
    images: the decoded usable images held in memory, or read-only rows of the cache
      (a memory map), or None.
    """

    def __init__(self, spec, names, items, images=None):
        super().__init__(spec)
        self.files, self._items, self._images = tuple(names), tuple(items), images

    @property
    def cached(self):
        """Whether the images are read from a cache file."""
        return isinstance(self._images, np.memmap)

    def read(self, item):
        """The encoded bytes of one item."""
        raise NotImplementedError

    def watched_paths(self):
        """The files whose sizes and modification times decide whether a check of
        this source still holds."""
        raise NotImplementedError

    def check_key(self):
        """What decides whether a check of this source still holds."""
        spec = self.spec
        return (spec.kind, spec.name, spec.location, self._items, spec.image_size,
                spec.channels, tuple(_stat(p) for p in self.watched_paths()))

    def load(self, item):
        """(uint8 S×S×C, None) for a usable item, else (None, why)."""
        try:
            raw = self.read(item)
        except OSError:
            return None, "unreadable"
        if not raw:
            return None, "empty"
        try:
            return fit_encoded(raw, self.spec.image_size, self.spec.channels), None
        except Image.DecompressionBombError:
            return None, "too large"
        except Image.UnidentifiedImageError:
            return None, "not an image"
        except Exception:  # pylint: disable=broad-except  # Pillow raises many types on bad data
            return None, "truncated or corrupt"

    def entries(self):
        """{file name: what must stay the same for its decoded image to hold}."""
        raise NotImplementedError

    def checked(self, reported, cache_dir=None, memory_budget=DEFAULT_MEMORY_BUDGET):
        """This source narrowed to the items that decode, holding their images when
        they take at most `memory_budget` bytes, else reading them from its cache
        (`cache.find(cache_dir)`: written here if there is none, read without
        decoding if there is); one warning about the unusable files unless the
        location is in `reported` (it is added)."""
        spec, items = self.spec, self._items
        if len(items) * spec.image_size**2 * spec.channels <= memory_budget:
            images, kept, reasons, chatter = _decode_all(self, items, keep=True)
        else:
            images, kept, reasons, chatter = self._decoded_once(cache_dir)
        summary = _skip_summary(self.files, reasons, chatter)
        where = f"{self.preposition} {shown(spec.location)}"
        if not kept:
            raise DataError(f"none of the {len(items)} image files {where} can be decoded: "
                            f"{summary}")
        if (reasons or chatter) and spec.location not in reported:
            reported.add(spec.location)
            if reasons:
                logging.warning("Skipped %d of %d files %s that are not usable images: %s",
                                len(reasons), len(items), where, summary)
            else:
                logging.warning("Decoded %d files %s with %s", len(items), where, summary)
        return type(self)(dataclasses.replace(spec, num_examples=len(kept)),
                          [self.files[i] for i in kept], [items[i] for i in kept], images)

    def _decoded_once(self, cache_dir):
        """`_decode_all` of every item, from the cache when it holds them, else
        decoded into a new cache (no images when none can be written)."""
        found, store = cache.find(self.spec, self.entries(), cache_dir)
        if found is not None:
            return found
        if store is None:
            return _decode_all(self, self._items, keep=False)
        print(f"caching {self.spec.name}: {len(self._items)} images of "
              f"{self.spec.image_size} px in {shown(store.npy)}", flush=True)
        try:
            return store.write(len(self._items),
                               lambda rows: _decode_all(self, self._items, keep=rows))
        except OSError as e:
            logging.warning("cannot write the image cache %s (%s); the images of %s will "
                            "be decoded in every epoch", shown(store.npy),
                            e.strerror or e, shown(self.spec.location))
            return _decode_all(self, self._items, keep=False)

    def images(self, limit=None):
        """uint8 N×S×S×C: kept from the check or read from the cache, else decoded
        now (files that stopped decoding since are left out and logged)."""
        if self._images is not None:
            return self._images[:limit]
        images, kept, reasons, _ = _decode_all(self, self._items[:limit], keep=True)
        if reasons:
            logging.warning("%d files of %s no longer decode: %s", len(reasons),
                            shown(self.spec.location), _skip_summary(self.files, reasons, []))
        if not kept:
            raise DataError(f"no image of {shown(self.spec.location)} can be decoded any more")
        if limit is None:
            self._images = images
        return images

    def arrays(self, limit=None):
        return to_unit_range(self.images(limit=limit)), None

    def stream(self, shard, *, shuffle, seed, memory_budget):
        num_shards, shard_id = shard
        if self.fits(num_shards, memory_budget):
            images = self.images()[shard_id::num_shards]
            if shuffle:
                # A bounded shuffle buffer after this still mixes the whole source.
                images = images[np.random.default_rng(seed).permutation(len(images))]
            return tf.data.Dataset.from_tensor_slices(images), True
        if self.cached:
            return _rows_every_epoch(self._images[shard_id::num_shards], shuffle, seed), False
        return self._decoded_every_epoch(self._items[shard_id::num_shards], shuffle, seed), \
            False

    def _decoded_every_epoch(self, items, shuffle, seed):
        """`items` decoded in every epoch, in a fresh order per epoch when shuffling;
        files that fail are dropped."""
        size, channels = self.spec.image_size, self.spec.channels

        def load(index):
            image, _ = self.load(items[int(index)])
            if image is None:
                return np.zeros([size, size, channels], np.uint8), False
            return image, True

        ds = tf.data.Dataset.range(len(items))
        if shuffle:
            ds = ds.shuffle(len(items), seed=seed, reshuffle_each_iteration=True)
        ds = ds.map(lambda i: tf.numpy_function(load, [i], (tf.uint8, tf.bool)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        ds = ds.filter(lambda x, ok: ok)
        return ds.map(lambda x, ok: tf.ensure_shape(x, [size, size, channels]))


class FolderSource(FileSource):
    """A folder of images; items are the files' paths."""

    preposition = "under"

    def read(self, item):
        with open(item, "rb") as f:
            return f.read()

    def watched_paths(self):
        return self._items

    def entries(self):
        return {path: _stat(path) for path in self._items}


class ArchiveSource(FileSource):
    """An uncompressed tar of images; items are the members' (byte offset, size)."""

    preposition = "in"

    @property
    def extents(self):
        return self._items

    def read(self, item):
        offset, size = item
        with open(self.spec.location, "rb") as f:
            f.seek(offset)
            return f.read(size)

    def watched_paths(self):
        return [self.spec.location]

    def entries(self):
        archive = _stat(self.spec.location)
        return {name: [list(item), archive] for name, item in zip(self.files, self._items)}


def folder(root, request, name=None):
    """The (unchecked) source of the images under `root`."""
    root = os.path.abspath(root)
    files = scan_folder(root)
    if not files:
        raise DataError(f"no image files ({_EXTENSION_LIST}) under {shown(root)}")
    return folder_of(files, root, request, name or base_name(root))


def folder_of(files, root, request, name):
    """The (unchecked) source of `files`, found under `root`."""
    spec = request.spec(name=name, kind="folder", channels=request.channels or 3,
                        num_examples=len(files), split="train", location=root)
    return FolderSource(spec, files, files)


def archive(path, name, request):
    """The (unchecked) source of the image members of the tar at `path`."""
    path = os.path.abspath(path)
    members = []
    try:
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if (member.isreg() and not member.issparse() and not base.startswith(".")
                        and base.lower().endswith(IMAGE_EXTENSIONS)):
                    members.append((member.name, (member.offset_data, member.size)))
    except tarfile.ReadError:
        raise DataError(
            f"{shown(path)} is not an uncompressed tar archive; unpack it (tar xf) and "
            "give the folder instead") from None
    except OSError as e:
        raise DataError(f"cannot read {shown(path)}: {e.strerror or e}") from None
    if not members:
        raise DataError(f"{shown(path)} holds no image files ({_EXTENSION_LIST})")
    members.sort(key=lambda m: os.fsencode(m[0]))
    spec = request.spec(name=name, kind="tar", channels=request.channels or 3,
                        num_examples=len(members), split="train", location=path)
    return ArchiveSource(spec, [m[0] for m in members], [m[1] for m in members])


def scan_folder(root):
    """Image files under root, recursively, sorted, each directory's files before its
    subdirectories. Symlinked directories are followed, each directory (by device and
    inode) once, so a link loop or a second link to one directory adds nothing.
    Hidden entries (macOS '._x.jpg' resource forks and the like) are left out;
    unreadable directories are passed over."""
    found, seen, stack = [], set(), [root]
    while stack:
        directory = stack.pop()
        try:
            stat = os.stat(directory)
            if (stat.st_dev, stat.st_ino) in seen:
                continue
            seen.add((stat.st_dev, stat.st_ino))
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()  # follows symlinks
            except OSError:
                continue
            if is_dir:
                subdirs.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(entry.path)
        stack.extend(reversed(subdirs))
    return found


def _stat(path):
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _skip_summary(names, reasons, chatter):
    """'2 empty, 1 not an image (e.g. a.jpg, b.jpg, c.jpg); 3 decoder warnings'."""
    counts = collections.Counter(reasons.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    examples = ", ".join(shown(os.path.basename(names[i])) for i in sorted(reasons)[:3])
    texts = [f"{parts} (e.g. {examples})"] if reasons else []
    if chatter:
        texts.append(f"{len(chatter)} decoder warning(s), e.g. {chatter[0]}")
    return "; ".join(texts)


def _rows_every_epoch(rows, shuffle, seed):
    """The uint8 images of `rows` (a memory map), read in chunks of about 16 MiB, in
    the order `_decoded_every_epoch` gives the same images: a fresh one per epoch
    when shuffling."""
    chunk = max(1, 2**24 // int(np.prod(rows.shape[1:])))
    ds = tf.data.Dataset.range(len(rows))
    if shuffle:
        ds = ds.shuffle(len(rows), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(chunk).map(
        lambda i: tf.numpy_function(lambda j: np.asarray(rows[j]), [i], tf.uint8),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.map(lambda x: tf.ensure_shape(x, [None, *rows.shape[1:]])).unbatch()


def _decode_all(source, items, *, keep):
    """Decodes items in threads (Pillow releases the GIL while it decodes and
    resizes). keep: True to return the images, an array of len(items) rows to
    fill and return, or False. Returns (uint8 N×S×S×C of the usable ones, or None;
    their indices; {index: reason} of the others; the decoders' warnings)."""
    size, channels = source.spec.image_size, source.spec.channels
    images = keep if isinstance(keep, np.ndarray) else (
        np.empty([len(items), size, size, channels], np.uint8) if keep else None)
    kept, reasons = [], {}
    start = last_log = time.monotonic()
    with warnings.catch_warnings(record=True) as caught, \
            concurrent.futures.ThreadPoolExecutor(min(16, 2 * (os.cpu_count() or 1))) as pool:
        warnings.simplefilter("always")
        for i, (image, reason) in enumerate(pool.map(source.load, items)):
            if image is None:
                reasons[i] = reason
            else:
                if images is not None:
                    images[len(kept)] = image
                kept.append(i)
            now = time.monotonic()
            if now - last_log >= _LOG_EVERY_SECONDS:
                last_log = now
                # Shown whatever the log level: a first pass over a large folder
                # takes minutes, and the user should see it move.
                print(f"checking {source.spec.name}: {i + 1} of {len(items)} images "
                      f"decoded in {now - start:.0f} s", flush=True)
    chatter = [str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
               for w in caught]
    return (None if images is None else images[:len(kept)]), kept, reasons, chatter
