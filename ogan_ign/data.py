"""Every dataset → a `tf.data` pipeline of float32 images in [-1, 1].

Three sources, chosen by `resolve(dataset, ...)`:

* ``fashion_mnist`` — the four IDX files of Fashion-MNIST (Xiao et al. 2017), as
  Debian's package ``dataset-fashion-mnist`` installs them under
  /usr/share/datasets/fashion-mnist, or in ``data_dir``. Native 28 px; at 32 px the
  images are padded with 2 px of background (value -1), as DCGAN-style 32 px models
  expect, so strokes stay pixel-exact; at 64 px and above the padded 32 px image is
  resized, so the garment fills the same fraction of the frame at every size.
* a folder of images, searched recursively (png, jpg/jpeg, bmp, gif — first frame —
  and webp). Each image is centre-cropped to a square and resized with an antialiased
  bilinear filter; grey ↔ RGB as requested, alpha composited over black (the -1
  background). Files that fail to decode are skipped, counted and logged once.
* any TFDS dataset with an image feature (``celeb_a_hq``, ``celeb_a``, ``mnist``,
  ``cifar10``, ...), read from ``data_dir``. Nothing is ever downloaded: a dataset
  that is not prepared is a `DataError` within seconds, because TFDS itself retries
  for minutes on a machine without internet.

`make_dataset` decodes and resizes every image once (the first epoch) into a cache —
memory when it fits `memory_budget`, else a tf.data cache file under `cache_dir` —
and then serves shuffled, repeated, batched epochs from it.

The library never reads flags; every user-facing problem is a one-line `DataError`.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import json
import os
import re
import struct
import tempfile
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf

SUPPORTED_SIZES = (28, 32, 64, 128, 256)
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Below 2 GiB on purpose: a tf.data graph holding a larger constant cannot be
# serialised, which tf.distribute does when it clones a dataset onto devices.
DEFAULT_MEMORY_BUDGET = 1536 * 2**20
# Shuffle buffers hold copies of elements; bound them in bytes, not elements.
SHUFFLE_BUFFER_BYTES = 256 * 2**20

_ALIASES = {
    "celeba_hq": "celeb_a_hq",
    "celebahq": "celeb_a_hq",
    "celeba": "celeb_a",
    "fmnist": "fashion_mnist",
    "fashion-mnist": "fashion_mnist",
    "fashionmnist": "fashion_mnist",
}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FOLDER_HINT = "a plain folder of images works too: pass its path as the dataset"


class DataError(ValueError):
    """A data problem the user can fix; the message is always one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What `resolve` found; everything `make_dataset` needs, nothing opened yet.

    num_examples: images in the split (folders: image files found, before any
      undecodable ones are skipped); None when TFDS does not say.
    location: the folder, the directory holding the IDX files, or TFDS's data_dir.
    files: folder sources only, sorted paths.
    """

    name: str
    kind: str  # "fashion_mnist" | "folder" | "tfds"
    image_size: int
    channels: int
    num_examples: Optional[int]
    split: str = "train"
    location: str = ""
    files: tuple = dataclasses.field(default=(), repr=False)
    tfds_name: str = ""
    image_key: str = "image"
    label_key: Optional[str] = None

    @property
    def labelled(self):
        """Whether `load_arrays` returns labels (known without reading any image)."""
        return self.kind == "fashion_mnist" or self.label_key is not None


# --------------------------------------------------------------------------- resolve


def resolve(dataset, *, data_dir=None, image_size=32, channels=None, split="train"):
    """Checks that `dataset` can be read and returns its `DataSpec`; fast, no decoding
    beyond one image. Raises `DataError` with a one-line message otherwise.

    dataset: a folder path, ``fashion_mnist``, or a TFDS name (``celeb_a_hq``,
      ``celeb_a_hq/128``, ``mnist``, ...); aliases celeba_hq, celeba, fmnist; case
      does not matter. ``tfds:fashion_mnist`` forces TFDS for Fashion-MNIST.
    channels: 1 or 3, or None for the source's own (1 for (Fashion-)MNIST, 3 else).
    split: ``train`` / ``test`` (any TFDS split string for TFDS; ignored by folders,
      which are one split).
    """
    if image_size not in SUPPORTED_SIZES:
        raise DataError(
            f"image size {image_size} is not supported; use one of {SUPPORTED_SIZES}"
        )
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3, not {channels}")
    text = str(dataset).strip()
    if not text:
        raise DataError("no dataset given: name fashion_mnist, a TFDS dataset or a folder")
    path = os.path.expanduser(text)
    if os.path.isdir(path) and not _names_a_dataset(text):
        return _resolve_folder(path, image_size, channels)
    if os.path.isfile(path):
        raise DataError(f"dataset {text} is a file; give a folder of images or a name")

    name = text.lower()
    force_tfds = name.startswith("tfds:")
    if force_tfds:
        name = name[len("tfds:"):]
    base, slash, config = name.partition("/")
    base = _ALIASES.get(base, base)
    if text[0] in "/.~\\" or not re.fullmatch(r"[a-z0-9_]+(:[0-9.*]+)?", base):
        raise DataError(f"no such folder: {path}")
    name = base + slash + config
    if name == "fashion_mnist" and not force_tfds:
        return _resolve_fashion_mnist(data_dir, image_size, channels, split)
    return _resolve_tfds(name, data_dir, image_size, channels, split)


def _names_a_dataset(text):
    """A bare word that is also a folder in the working directory ('mnist') still
    means the dataset; anything with a separator or a leading . or ~ is a path."""
    if os.sep in text or "/" in text or text[0] in ".~":
        return False
    base = _ALIASES.get(text.lower(), text.lower())
    if base == "fashion_mnist":
        return True
    try:
        return _import_tfds().builder_cls(base) is not None
    except Exception:  # pylint: disable=broad-except  # not a registered name
        return False


def _resolve_fashion_mnist(data_dir, image_size, channels, split):
    if split not in _IDX_FILES:
        raise DataError(f"Fashion-MNIST has splits train and test, not {split!r}")
    candidates = [os.path.expanduser(data_dir)] if data_dir else []
    candidates.append(FASHION_MNIST_DIR)
    for directory in candidates:
        paths = [_idx_path(directory, stem) for stem in _IDX_FILES[split]]
        if all(paths):
            num_examples = _idx_header(paths[0])[0]
            return DataSpec(
                name="fashion_mnist", kind="fashion_mnist", image_size=image_size,
                channels=channels or 1, num_examples=num_examples, split=split,
                location=directory)
    if data_dir:
        # A TFDS data_dir with fashion_mnist prepared is as good as the IDX files.
        try:
            return _resolve_tfds("fashion_mnist", data_dir, image_size, channels, split)
        except DataError:
            pass
    stems = ", ".join(stem + "[.gz]" for stem in _IDX_FILES[split])
    raise DataError(
        f"Fashion-MNIST not found: looked for {stems} in {' and '.join(candidates)}; "
        "install it with `apt-get install dataset-fashion-mnist` or put the four IDX "
        "files in a directory given as data_dir")


def _idx_path(directory, stem):
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _open_idx(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _idx_header(path):
    """Dimensions of an IDX file (LeCun's MNIST format: magic, then big-endian sizes)."""
    try:
        with _open_idx(path) as f:
            magic = f.read(4)
            if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
                raise DataError(f"{path} is not an IDX file of unsigned bytes")
            ndim = magic[3]
            return struct.unpack(f">{ndim}I", f.read(4 * ndim))
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None


def _read_idx(path):
    dims = _idx_header(path)
    with _open_idx(path) as f:
        f.seek(4 + 4 * len(dims))
        data = np.frombuffer(f.read(), dtype=np.uint8)
    if data.size != int(np.prod(dims)):
        raise DataError(f"{path} is truncated: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def _resolve_folder(root, image_size, channels):
    root = os.path.abspath(root)
    files = _scan_folder(root)
    if not files:
        raise DataError(
            f"no image files ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) under {root}")
    if not any(_decodes(path) for path in files):
        raise DataError(f"none of the {len(files)} image files under {root} can be decoded")
    return DataSpec(
        name=os.path.basename(root.rstrip(os.sep)) or root, kind="folder",
        image_size=image_size, channels=channels or 3, num_examples=len(files),
        location=root, files=tuple(files))


def _scan_folder(root):
    """Image files under root, recursively, sorted; hidden files (macOS '._x.jpg'
    resource forks and the like) are not images and are left out."""
    found = []
    for directory, subdirs, names in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in sorted(names):
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(directory, name))
    return found


def _decodes(path):
    try:
        with open(path, "rb") as f:
            tf.io.decode_image(f.read(), expand_animations=False)
        return True
    except (OSError, tf.errors.OpError):
        return False


def _import_tfds():
    try:
        import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise DataError(
            "TFDS datasets need tensorflow-datasets: pip install tensorflow-datasets; "
            + _FOLDER_HINT) from None
    return tfds


def _resolve_tfds(name, data_dir, image_size, channels, split):
    tfds = _import_tfds()
    data_dir = os.path.expanduser(data_dir) if data_dir else None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
        if "/" not in name:
            config = _config_for_size(builder, image_size)
            if config and config != builder.builder_config.name:
                builder = tfds.builder(f"{name}/{config}", data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"unknown dataset {name!r}: no folder at that path, not fashion_mnist, and "
            "no TFDS dataset of that name (e.g. celeb_a_hq, celeb_a, mnist, cifar10)"
        ) from None
    except Exception as e:  # TFDS raises many types for bad configs; all are user errors.
        raise DataError(f"TFDS cannot open {name!r}: {_config_hint(tfds, name, e)}") from None
    full_name = builder.name + (f"/{builder.builder_config.name}" if builder.builder_config else "")
    if not builder.is_prepared():
        raise DataError(_not_prepared_message(builder, full_name))

    image_key, native_channels = _image_feature(tfds, builder, full_name)
    features = builder.info.features
    label_key = ("label" if "label" in features
                 and isinstance(features["label"], tfds.features.ClassLabel) else None)
    try:
        num_examples = int(builder.info.splits[split].num_examples) or None
    except Exception:  # pylint: disable=broad-except  # unknown split sizes
        num_examples = None
    return DataSpec(
        name=full_name, kind="tfds", image_size=image_size,
        channels=channels or (1 if native_channels == 1 else 3),
        num_examples=num_examples, split=split, location=str(builder.data_dir_root),
        tfds_name=full_name, image_key=image_key, label_key=label_key)


def _config_hint(tfds, name, error):
    """TFDS's own message for an unknown config spans lines; name the configs."""
    base, _, config = name.partition("/")
    try:
        configs = [c.name for c in (tfds.builder_cls(base).BUILDER_CONFIGS or [])]
    except Exception:  # pylint: disable=broad-except
        configs = []
    if config and configs and config not in configs:
        return f"no config {config!r}; it has {', '.join(configs)}"
    return str(error).splitlines()[0]


def _config_for_size(builder, image_size):
    """For builders whose configs are resolutions (celeb_a_hq): the one equal to the
    requested size, else the smallest larger one, else the largest."""
    names = [c.name for c in (builder.BUILDER_CONFIGS or [])]
    if not names or not all(n.isdigit() for n in names):
        return None
    sizes = sorted(int(n) for n in names)
    larger = [s for s in sizes if s >= image_size]
    return str(larger[0] if larger else sizes[-1])


def _not_prepared_message(builder, full_name):
    root = str(builder.data_dir_root)
    where = f"TFDS dataset {full_name} is not prepared: looked in {builder.data_dir}"
    build = f"`tfds build {full_name} --data_dir={root}` (needs pip install importlib_resources)"
    manual = os.path.join(root, "downloads", "manual") + os.sep
    if builder.name == "lsun":
        how = ("LSUN through TFDS needs tensorflow-io, which does not load on "
               "TensorFlow 2.21; export the LSUN images to a folder instead")
        return f"{where}; {how} and pass that folder as the dataset"
    if builder.name == "celeb_a_hq":
        res = builder.builder_config.name
        archive = f"data{res}x{res}.tar"
        if os.path.exists(os.path.join(manual, archive)):
            how = f"{manual}{archive} is there but not converted yet: run {build}"
        else:
            how = (f"it needs a manual download: put the archive {archive} (from the "
                   f"progressive_growing_of_gans CelebA-HQ recipe) in {manual} and run "
                   f"{build}")
    elif getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
        how = (f"it needs a manual download: put its files in {manual} (see the TFDS "
               f"catalog page for {builder.name}) and run {build}")
    else:
        how = (f"nothing is downloaded here; on a machine with internet run "
               f"`tfds build {full_name} --data_dir=DIR`, then copy DIR/{builder.name} "
               f"into {root}/")
    return f"{where}; {how}; {_FOLDER_HINT}"


def _image_feature(tfds, builder, full_name):
    """The image feature: 'image' if present, else the first top-level Image."""
    features = builder.info.features
    images = {k: f for k, f in features.items() if isinstance(f, tfds.features.Image)}
    if not images:
        raise DataError(f"TFDS dataset {full_name} has no image feature")
    key = "image" if "image" in images else sorted(images)[0]
    shape = images[key].shape
    return key, (shape[-1] if shape and shape[-1] else 3)


# ----------------------------------------------------------------- image transforms


def _fit_image(image, image_size, channels):
    """uint8 HxWxC (any C in 1..4) → uint8 SxSxchannels: centre-crop to a square,
    antialiased resize, composite alpha over black, convert grey ↔ RGB."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    x = tf.cast(image[top:top + side, left:left + side], tf.float32)
    # Resize first: every step after it then works on the small image.
    x = tf.image.resize(x, [image_size, image_size], method="bilinear", antialias=True)
    has_alpha = tf.equal(shape[2] % 2, 0)  # 2 = grey+alpha, 4 = RGBA
    x = tf.cond(has_alpha, lambda: x[..., :-1] * (x[..., -1:] / 255.0), lambda: x)
    if channels == 3:
        x = tf.cond(tf.equal(tf.shape(x)[2], 1), lambda: tf.tile(x, [1, 1, 3]), lambda: x)
    else:
        x = tf.cond(tf.equal(tf.shape(x)[2], 3), lambda: tf.image.rgb_to_grayscale(x),
                    lambda: x)
    x = tf.ensure_shape(x, [image_size, image_size, channels])
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)


def _decode_file(path, image_size, channels):
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    return _fit_image(image, image_size, channels)


def _fit_fashion_mnist(x, image_size, channels):
    """uint8 Bx28x28x1 → float32 BxSxSxC in [-1, 1] (see the module docstring)."""
    x = tf.cast(x, tf.float32) / 127.5 - 1.0
    if image_size != 28:
        x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], constant_values=-1.0)
    if image_size not in (28, 32):
        x = tf.image.resize(x, [image_size, image_size], method="bilinear", antialias=True)
    if channels == 3:
        x = tf.tile(x, [1, 1, 1, 3])
    return x


def _to_unit_range(x):
    return tf.cast(x, tf.float32) / 127.5 - 1.0


# ---------------------------------------------------------------- decoding once


def _indexed_images(spec, *, shuffle, seed, shard):
    """A dataset of (index, uint8 SxSxC) pairs, parallel-decoded, and the file list
    it indexes (None for TFDS); undecodable items are dropped, so the missing
    indices are the skipped files."""
    size, channels = spec.image_size, spec.channels
    num_shards, shard_id = shard
    if spec.kind == "folder":
        files = list(spec.files)[shard_id::num_shards]
        if shuffle:
            # The cache keeps this order, so a bounded shuffle buffer later still
            # mixes the whole folder, not runs of neighbouring files.
            np.random.default_rng(seed).shuffle(files)
        ds = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), files))
        ds = ds.map(lambda i, f: (i, _decode_file(f, size, channels)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.ignore_errors(), files
    tfds = _import_tfds()
    builder = tfds.builder(spec.tfds_name, data_dir=spec.location)
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    ds = builder.as_dataset(split=spec.split, shuffle_files=shuffle, read_config=read_config)
    if num_shards > 1:
        ds = ds.shard(num_shards, shard_id)
    ds = ds.enumerate().map(lambda i, ex: (i, _fit_image(ex[spec.image_key], size, channels)),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.ignore_errors(), None


def _report_skipped(spec, files, kept_indices, total):
    """Logs once which files could not be decoded; returns how many."""
    missing = sorted(set(range(total)) - set(int(i) for i in kept_indices))
    if missing:
        where = spec.location if spec.kind == "folder" else spec.name
        names = ", ".join(os.path.relpath(files[i], spec.location) for i in missing[:5]) \
            if files else ""
        logging.warning(
            "Skipped %d of %d images in %s that could not be decoded (truncated, empty, "
            "not an image or unreadable)%s", len(missing), total, where,
            f", e.g. {names}" if names else "")
    return len(missing)


def _decode_to_memory(spec, *, shuffle, seed, shard, limit=None):
    ds, files = _indexed_images(spec, shuffle=shuffle, seed=seed, shard=shard)
    if limit is not None:
        ds = ds.take(limit)
    indices, images = [], []
    for i, x in ds.batch(64).prefetch(2):
        indices.append(i.numpy())
        images.append(x.numpy())
    indices = np.concatenate(indices) if indices else np.zeros([0], np.int64)
    if files is not None:
        # With a limit, only files up to the last one kept were looked at.
        looked_at = len(files) if limit is None or len(indices) < limit else int(indices[-1]) + 1
        _report_skipped(spec, files, indices, looked_at)
    if not images:
        raise DataError(f"no image of {spec.name} could be decoded")
    return np.concatenate(images)


def _cache_path(spec, cache, cache_dir, *, shuffle, seed, shard):
    if cache not in (None, "auto", "file"):
        path = os.path.expanduser(cache)
        return path if shard[0] == 1 else f"{path}.shard{shard[1]}of{shard[0]}"
    key = {"kind": spec.kind, "name": spec.name, "location": spec.location,
           "split": spec.split, "size": spec.image_size, "channels": spec.channels,
           "shard": list(shard), "order": seed if shuffle else None}
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode())
    for path in spec.files:
        # Size and mtime: a folder whose files changed gets a new cache.
        stat = os.stat(path) if os.path.exists(path) else None
        digest.update(f"{path}\0{stat and stat.st_size}\0{stat and stat.st_mtime_ns}\n".encode())
    directory = os.path.expanduser(cache_dir or os.path.join(tempfile.gettempdir(), "ogan_ign_cache"))
    return os.path.join(directory, f"{spec.kind}-{spec.image_size}px-{digest.hexdigest()[:16]}")


def _decode_to_file(spec, path, *, shuffle, seed, shard):
    """A tf.data cache file holding every decoded image, written on first use."""
    ds, files = _indexed_images(spec, shuffle=shuffle, seed=seed, shard=shard)
    cached = ds.cache(path)
    summary = path + ".json"
    if not (os.path.exists(path + ".index") and os.path.exists(summary)):
        # An interrupted run leaves a lock file and partial data that tf.data
        # refuses to overwrite; nothing in them is reusable.
        for stale in glob.glob(glob.escape(path) + "*"):
            os.remove(stale)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        indices = np.concatenate(
            [i.numpy() for i in cached.map(lambda i, x: i).batch(1024).prefetch(2)]
            or [np.zeros([0], np.int64)])
        total = len(files) if files is not None else len(indices)
        skipped = _report_skipped(spec, files, indices, total) if files else 0
        with open(summary, "w") as f:
            json.dump({"kept": int(len(indices)), "skipped": skipped}, f)
    else:
        with open(summary) as f:
            skipped = json.load(f)["skipped"]
        if skipped:
            logging.warning("Skipped %d images of %s that could not be decoded (counted "
                            "when the cache %s was written)", skipped, spec.name, path)
    with open(summary) as f:
        if not json.load(f)["kept"]:
            raise DataError(f"no image of {spec.name} could be decoded")
    return cached.map(lambda i, x: x)


# ---------------------------------------------------------------- public pipelines


def make_dataset(spec, batch_size, *, shuffle=True, repeat=True, seed=0, cache=None,
                 input_context=None, cache_dir=None, memory_budget=DEFAULT_MEMORY_BUDGET):
    """A tf.data.Dataset of float32 (batch, S, S, C) images in [-1, 1].

    Folders and TFDS sets are decoded and resized once, here, before the dataset is
    returned (that is the first epoch's work), into a cache:
      cache=None or "auto": memory when the images take at most `memory_budget`
        bytes as uint8, else "file";
      "memory": a uint8 array in memory;
      "file": a tf.data cache file under `cache_dir` (default
        <tempdir>/ogan_ign_cache), named by a hash of the source, size, channels,
        shard, order and — for folders — every file's path, size and mtime, so a
        changed folder gets a fresh cache and an unchanged one is reused across runs;
      any other string: that file path prefix;
      "none": decode every epoch; undecodable files are then dropped uncounted.
    Fashion-MNIST is small and always held in memory.

    input_context: a tf.distribute.InputContext (from
      `strategy.distribute_datasets_from_function`): this pipeline reads its own
      shard and batches by the per-replica batch size.
    """
    shard = (1, 0)
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        shard = (input_context.num_input_pipelines, input_context.input_pipeline_id)
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, not {batch_size}")

    element_bytes = spec.image_size**2 * spec.channels
    if spec.kind == "fashion_mnist":
        images, _ = _read_fashion_mnist(spec)
        ds = tf.data.Dataset.from_tensor_slices(images[shard[1]::shard[0], ..., None])
        to_float = lambda x: _fit_fashion_mnist(x, spec.image_size, spec.channels)
        element_bytes = images[0].size
    else:
        mode = "auto" if cache is None else cache
        if mode == "auto":
            estimate = (spec.num_examples or float("inf")) * element_bytes / shard[0]
            mode = "memory" if estimate <= memory_budget else "file"
        if mode == "memory":
            ds = tf.data.Dataset.from_tensor_slices(
                _decode_to_memory(spec, shuffle=shuffle, seed=seed, shard=shard))
        elif mode == "none":
            ds = _indexed_images(spec, shuffle=shuffle, seed=seed, shard=shard)[0]
            ds = ds.map(lambda i, x: x)
        else:
            path = _cache_path(spec, mode, cache_dir, shuffle=shuffle, seed=seed, shard=shard)
            ds = _decode_to_file(spec, path, shuffle=shuffle, seed=seed, shard=shard)
        to_float = _to_unit_range

    if shuffle:
        buffer = max(1, SHUFFLE_BUFFER_BYTES // element_bytes)
        if spec.num_examples:
            buffer = min(buffer, spec.num_examples)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _read_fashion_mnist(spec):
    image_stem, label_stem = _IDX_FILES[spec.split]
    images = _read_idx(_idx_path(spec.location, image_stem))
    labels = _read_idx(_idx_path(spec.location, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files in {spec.location} do not match: "
                        f"images {images.shape}, labels {labels.shape}")
    return images, labels.astype(np.int64)


def load_arrays(spec, limit=None):
    """(images, labels): float32 NHWC numpy in [-1, 1], in the source's order, and
    int64 labels for Fashion-MNIST / labelled TFDS sets (None otherwise). For
    evaluation and Fourier statistics; `limit` caps the number of images."""
    if spec.kind == "fashion_mnist":
        images, labels = _read_fashion_mnist(spec)
        images, labels = images[:limit, ..., None], labels[:limit]
        out = [_fit_fashion_mnist(images[i:i + 1024], spec.image_size, spec.channels).numpy()
               for i in range(0, len(images), 1024)]
        return np.concatenate(out), labels
    if spec.kind == "folder":
        images = _decode_to_memory(spec, shuffle=False, seed=0, shard=(1, 0), limit=limit)
        return images.astype(np.float32) / 127.5 - 1.0, None

    tfds = _import_tfds()
    builder = tfds.builder(spec.tfds_name, data_dir=spec.location)
    ds = builder.as_dataset(split=spec.split, shuffle_files=False)
    if limit is not None:
        ds = ds.take(limit)
    label_key = spec.label_key
    ds = ds.map(lambda ex: (_fit_image(ex[spec.image_key], spec.image_size, spec.channels),
                            ex[label_key] if label_key else tf.zeros([], tf.int64)),
                num_parallel_calls=tf.data.AUTOTUNE)
    images, labels = [], []
    for x, y in ds.batch(256).prefetch(2):
        images.append(x.numpy())
        labels.append(y.numpy())
    if not images:
        raise DataError(f"split {spec.split} of {spec.name} has no images")
    images = np.concatenate(images).astype(np.float32) / 127.5 - 1.0
    return images, (np.concatenate(labels).astype(np.int64) if label_key else None)
