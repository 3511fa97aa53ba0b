"""Every dataset → a `tf.data` pipeline of float32 images in [-1, 1].

Sources, chosen by `resolve(dataset, ...)`:

* ``fashion_mnist`` — the four IDX files of Fashion-MNIST (Xiao et al. 2017), as
  Debian's package ``dataset-fashion-mnist`` installs them under
  /usr/share/datasets/fashion-mnist, or in ``data_dir``; each file is parsed once per
  process. Native 28 px; at 32 px the images are padded with 2 px of background
  (value -1), as DCGAN-style 32 px models expect, so strokes stay pixel-exact; at 64 px
  and above the padded 32 px image is resized, so the garment fills the same fraction
  of the frame at every size.
* a folder of images, searched recursively (png, jpg/jpeg, bmp, gif — first frame —
  and webp); file names may hold any bytes; a symlinked directory is entered once, so
  a link loop adds nothing. An uncompressed ``.tar`` of images is read the same way.
* ``celeb_a_hq`` (alias ``celeba_hq``) in the three forms people hold it, tried in
  this order: a built TFDS dataset in ``data_dir``; TFDS's manual archives
  ``data{R}x{R}.tar`` in ``data_dir`` or ``data_dir/downloads/manual``, read directly
  (no ``tfds build``) — the smallest R ≥ image_size, else the largest; a folder of
  its images given as ``data_dir`` (any depth, any size). ``ffhq``: a folder (or a
  .tar) of its images given as ``data_dir``.
* any other TFDS dataset with an image feature (``celeb_a``, ``mnist``, ``cifar10``,
  ...), read from ``data_dir``. Nothing is ever downloaded: a dataset that is not
  prepared is a `DataError` within seconds, because TFDS itself retries for minutes
  on a machine without internet.

Images of folders, archives and TFDS go through one function, `fit_image`: 16-bit
samples scaled to 8 bits, alpha composited over black (the -1 background), grey ↔
RGB as requested (ITU-R 601 luma), centre-cropped to a square, resized with an
antialiased bilinear filter; so one PNG gives the same pixels from every source.
`to_unit_range` then maps uint8 v to v / 127.5 − 1.

Folders and archives are checked whole in `resolve`: every image is decoded (with
Pillow, in threads; nothing is printed per file), the unusable ones are left out of
the spec and summarised in one warning per source and process, and `num_examples`
counts the usable ones. When the decoded images fit `DEFAULT_MEMORY_BUDGET` they are
kept for the process, so `make_dataset` and `load_arrays` do not decode again; larger
sources are decoded again in every epoch.

The library never reads flags; every user-facing problem is a one-line `DataError`.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import gzip
import io
import os
import re
import struct
import tarfile
import time
from typing import Optional
import warnings

from absl import logging
import numpy as np
from PIL import Image
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
# TFDS's celeb_a_hq archive names; R is the side of every image inside.
_CELEBA_HQ_ARCHIVE = re.compile(r"data(\d+)x\1\.tar")
_LOG_EVERY_SECONDS = 10.0


class DataError(ValueError):
    """A data problem the user can fix; the message is always one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What `resolve` found; everything `make_dataset` needs.

    name: the dataset's name (``fashion_mnist``, ``celeb_a_hq/64``, a folder's name).
    kind: ``fashion_mnist`` | ``folder`` | ``tar`` | ``tfds``.
    num_examples: usable images in the split (folders and archives: those that
      decoded); None when TFDS does not say.
    location: the folder, the archive, the directory holding the IDX files, or
      TFDS's data_dir.
    files: folders: sorted paths of the usable images; archives: their member names.
    extents: archives only: (byte offset, size) of each member in `files`.
    identity: `canonical_dataset` of the `dataset` given to `resolve`.
    """

    name: str
    kind: str
    image_size: int
    channels: int
    num_examples: Optional[int]
    split: str = "train"
    location: str = ""
    files: tuple = dataclasses.field(default=(), repr=False)
    tfds_name: str = ""
    image_key: str = "image"
    label_key: Optional[str] = None
    extents: tuple = dataclasses.field(default=(), repr=False)
    identity: str = ""

    @property
    def labelled(self):
        """Whether `load_arrays` returns labels (known without reading any image)."""
        return self.kind == "fashion_mnist" or self.label_key is not None


def to_unit_range(images):
    """uint8 [0, 255] → float32 [-1, 1]: v / 127.5 − 1 (a tensor stays a tensor, an
    array an array; both give the same float32 values)."""
    if tf.is_tensor(images):
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return np.asarray(images, np.float32) / np.float32(127.5) - np.float32(1.0)


def canonical_dataset(dataset):
    """The spelling-independent identity of a `dataset` argument, for comparing two
    runs: names lower-cased and de-aliased (``FMNIST``, ``fashion-mnist`` →
    ``fashion_mnist``; ``CelebA_HQ`` → ``celeb_a_hq``), paths made absolute with
    symlinks resolved. Reads no data (a bare name may import TFDS to tell a dataset
    name from a folder of that name in the working directory, as `resolve` does)."""
    text = str(dataset).strip()
    if not text:
        return ""
    path = os.path.expanduser(text)
    if text[0] in "/.~\\" or os.path.isfile(path) or (
            os.path.isdir(path) and not _names_a_dataset(text)):
        return os.path.realpath(path)
    name = text.lower()
    prefix = "tfds:" if name.startswith("tfds:") else ""
    base, slash, config = name[len(prefix):].partition("/")
    return prefix + _ALIASES.get(base, base) + slash + config


# --------------------------------------------------------------------------- resolve


def resolve(dataset, *, data_dir=None, image_size=32, channels=None, split="train"):
    """Checks that `dataset` can be read and returns its `DataSpec`. Raises
    `DataError` with a one-line message otherwise. Folders and archives are decoded
    whole here (see the module docstring); other sources open one header.

    dataset: a folder or .tar path, ``fashion_mnist``, ``celeb_a_hq``, ``ffhq``, or a
      TFDS name (``celeb_a_hq/128``, ``mnist``, ...); aliases celeba_hq, celeba,
      fmnist, fashion-mnist; case does not matter. ``tfds:fashion_mnist`` forces TFDS
      for Fashion-MNIST.
    data_dir: where the named dataset is (see the module docstring).
    channels: 1 or 3, or None for the source's own (1 for (Fashion-)MNIST, 3 else).
    split: ``train`` / ``test`` (any TFDS split string for TFDS; ignored by folders
      and archives, which are one split).
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
    identity = canonical_dataset(text)
    path = os.path.expanduser(text)
    if os.path.isdir(path) and not _names_a_dataset(text):
        spec = _resolve_folder(path, image_size, channels)
    elif os.path.isfile(path):
        if not path.lower().endswith(".tar"):
            raise DataError(f"dataset {_shown(text)} is a file; give a folder of images, "
                            "a .tar of images or a name")
        spec = _resolve_archive(path, _base_name(path), image_size, channels)
    else:
        spec = _resolve_name(text, path, data_dir, image_size, channels, split)
    return dataclasses.replace(spec, identity=identity)


def _resolve_name(text, path, data_dir, image_size, channels, split):
    name = text.lower()
    force_tfds = name.startswith("tfds:")
    if force_tfds:
        name = name[len("tfds:"):]
    base, slash, config = name.partition("/")
    base = _ALIASES.get(base, base)
    if text[0] in "/.~\\" or not re.fullmatch(r"[a-z0-9_]+(:[0-9.*]+)?", base):
        raise DataError(f"no such folder: {_shown(path)}")
    name = base + slash + config
    if name == "fashion_mnist" and not force_tfds:
        return _resolve_fashion_mnist(data_dir, image_size, channels, split)
    if base == "celeb_a_hq" and not force_tfds:
        return _resolve_celeba_hq(config, data_dir, image_size, channels, split)
    if name == "ffhq" and not force_tfds:
        return _resolve_ffhq(data_dir, image_size, channels)
    return _resolve_tfds(name, data_dir, image_size, channels, split)


def _names_a_dataset(text):
    """A bare word that is also a folder in the working directory ('mnist') still
    means the dataset; anything with a separator or a leading . or ~ is a path."""
    if os.sep in text or "/" in text or text[0] in ".~":
        return False
    base = _ALIASES.get(text.lower(), text.lower())
    if base in ("fashion_mnist", "celeb_a_hq"):
        return True
    try:
        return _import_tfds().builder_cls(base) is not None
    except Exception:  # pylint: disable=broad-except  # not a registered name
        return False


def _shown(path):
    """A path or name printable on any terminal: bytes that are not UTF-8 (kept by
    Python as surrogate escapes) appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _base_name(path):
    return os.path.basename(os.path.normpath(path)) or path


# ------------------------------------------------------------------- Fashion-MNIST


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
        f"Fashion-MNIST not found: looked for {stems} in "
        f"{' and '.join(_shown(c) for c in candidates)}; install it with `apt-get "
        "install dataset-fashion-mnist` or put the four IDX files in a directory given "
        "as data_dir")


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
            return _parse_idx_header(f, path)
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"cannot read {_shown(path)}: {e}") from None


def _parse_idx_header(f, path):
    magic = f.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
        raise DataError(f"{_shown(path)} is not an IDX file of unsigned bytes")
    ndim = magic[3]
    return struct.unpack(f">{ndim}I", f.read(4 * ndim))


def _read_idx(path):
    """The IDX file as a read-only uint8 array; parsed once per process while the
    file keeps its size and modification time."""
    try:
        stat = os.stat(path)
    except OSError as e:
        raise DataError(f"cannot read {_shown(path)}: {e}") from None
    return _read_idx_once(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_idx_once(path, size, mtime_ns):
    del size, mtime_ns  # part of the cache key only
    try:
        with _open_idx(path) as f:
            dims = _parse_idx_header(f, path)
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"cannot read {_shown(path)}: {e}") from None
    if data.size != int(np.prod(dims)):
        raise DataError(f"{_shown(path)} is truncated: {data.size} bytes for shape {dims}")
    return data.reshape(dims)


def _read_fashion_mnist(spec):
    image_stem, label_stem = _IDX_FILES[spec.split]
    images = _read_idx(_idx_path(spec.location, image_stem))
    labels = _read_idx(_idx_path(spec.location, label_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"Fashion-MNIST files in {_shown(spec.location)} do not match: "
                        f"images {images.shape}, labels {labels.shape}")
    return images, labels.astype(np.int64)


def _fit_fashion_mnist(x, image_size, channels):
    """uint8 Bx28x28x1 → float32 BxSxSxC in [-1, 1] (see the module docstring)."""
    x = to_unit_range(tf.convert_to_tensor(x))
    if image_size != 28:
        x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], constant_values=-1.0)
    if image_size not in (28, 32):
        x = tf.image.resize(x, [image_size, image_size], method="bilinear", antialias=True)
    if channels == 3:
        x = tf.tile(x, [1, 1, 1, 3])
    return x


# ------------------------------------------------------------ folders and archives


def _resolve_folder(root, image_size, channels, name=None):
    root = os.path.abspath(root)
    files = _scan_folder(root)
    if not files:
        raise DataError(f"no image files ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) "
                        f"under {_shown(root)}")
    return _checked_spec("folder", name or _base_name(root), root, files, files,
                         image_size, channels or 3)


def _scan_folder(root):
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


def _resolve_archive(path, name, image_size, channels):
    """An uncompressed tar of images; its members are read in place, by offset."""
    path = os.path.abspath(path)
    members = []
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                base = os.path.basename(member.name)
                if (member.isreg() and not member.issparse() and not base.startswith(".")
                        and base.lower().endswith(IMAGE_EXTENSIONS)):
                    members.append((member.name, (member.offset_data, member.size)))
    except tarfile.ReadError:
        raise DataError(
            f"{_shown(path)} is not an uncompressed tar archive; unpack it (tar xf) and "
            "give the folder instead") from None
    except OSError as e:
        raise DataError(f"cannot read {_shown(path)}: {e.strerror or e}") from None
    if not members:
        raise DataError(f"{_shown(path)} holds no image files "
                        f"({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    members.sort(key=lambda m: os.fsencode(m[0]))
    names = [m[0] for m in members]
    return _checked_spec("tar", name, path, names, [m[1] for m in members],
                         image_size, channels or 3)


def _checked_spec(kind, name, location, names, items, image_size, channels):
    """Decodes every item once; the spec lists the usable ones, in order. A source
    checked before in this process, unchanged, is not decoded again (the scripts
    resolve their data again after training, e.g. to look for labels)."""
    key = (kind, name, location, tuple(items), image_size, channels,
           _fingerprint(kind, location, names))
    if key not in _CHECKED:
        _CHECKED[key] = _decode_and_check(kind, name, location, names, items, image_size,
                                          channels)
    return _CHECKED[key]


def _fingerprint(kind, location, names):
    """Sizes and modification times of a source's files (of the archive for a tar)."""
    paths = [location] if kind == "tar" else [os.path.join(location, n) for n in names]
    stats = []
    for path in paths:
        try:
            stat = os.stat(path)
            stats.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            stats.append(None)
    return tuple(stats)


def _decode_and_check(kind, name, location, names, items, image_size, channels):
    budget_fits = len(items) * image_size**2 * channels <= DEFAULT_MEMORY_BUDGET
    images, kept, reasons, chatter = _decode_all(
        location, items, image_size, channels, keep=budget_fits, what=name)
    summary = _skip_summary(names, reasons, chatter)
    where = f"{'in' if kind == 'tar' else 'under'} {_shown(location)}"
    if not kept:
        raise DataError(f"none of the {len(items)} image files {where} can be decoded: "
                        f"{summary}")
    if (reasons or chatter) and location not in _REPORTED:
        _REPORTED.add(location)
        if reasons:
            logging.warning("Skipped %d of %d files %s that are not usable images: %s",
                            len(reasons), len(items), where, summary)
        else:
            logging.warning("Decoded %d files %s with %s", len(items), where, summary)
    spec = DataSpec(
        name=name, kind=kind, image_size=image_size, channels=channels,
        num_examples=len(kept), location=location,
        files=tuple(names[i] for i in kept),
        extents=tuple(items[i] for i in kept) if kind == "tar" else ())
    if images is not None:
        _remember(spec, images)
    return spec


# Sources whose skipped files were reported in this process.
_REPORTED = set()
# Specs of the sources checked in this process, by source and its files' stats.
_CHECKED = {}
# A few decoded sources, kept so that resolve's check is the only decoding pass.
_DECODED = collections.OrderedDict()
_DECODED_ENTRIES = 2


def _decoded_key(spec):
    return (spec.kind, spec.location, spec.image_size, spec.channels, _items(spec))


def _remember(spec, images):
    key = _decoded_key(spec)
    _DECODED[key] = images
    _DECODED.move_to_end(key)
    while len(_DECODED) > _DECODED_ENTRIES:
        _DECODED.popitem(last=False)


def _items(spec):
    return spec.extents if spec.kind == "tar" else spec.files


def _skip_summary(names, reasons, chatter):
    """'2 empty, 1 not an image (e.g. a.jpg, b.jpg, c.jpg); 3 decoder warnings'."""
    counts = collections.Counter(reasons.values())
    parts = ", ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))
    examples = ", ".join(_shown(os.path.basename(names[i])) for i in sorted(reasons)[:3])
    texts = [f"{parts} (e.g. {examples})"] if reasons else []
    if chatter:
        texts.append(f"{len(chatter)} decoder warning(s), e.g. {chatter[0]}")
    return "; ".join(texts)


def _decode_all(location, items, image_size, channels, *, keep, what):
    """Decodes items in threads (Pillow releases the GIL while it decodes and
    resizes). Returns (uint8 N×S×S×C of the usable ones, or None when not `keep`;
    their indices; {index: reason} of the others; the decoders' warnings)."""
    images = np.empty([len(items), image_size, image_size, channels], np.uint8) if keep \
        else None
    kept, reasons = [], {}
    load = functools.partial(_load, location, image_size=image_size, channels=channels)
    start = last_log = time.monotonic()
    with warnings.catch_warnings(record=True) as caught, \
            concurrent.futures.ThreadPoolExecutor(min(16, 2 * (os.cpu_count() or 1))) as pool:
        warnings.simplefilter("always")
        for i, (image, reason) in enumerate(pool.map(load, items)):
            if image is None:
                reasons[i] = reason
            else:
                if keep:
                    images[len(kept)] = image
                kept.append(i)
            now = time.monotonic()
            if now - last_log >= _LOG_EVERY_SECONDS:
                last_log = now
                # Shown whatever the log level: a first pass over a large folder
                # takes minutes, and the user should see it move.
                print(f"checking {what}: {i + 1} of {len(items)} images decoded in "
                      f"{now - start:.0f} s", flush=True)
    chatter = [str(w.message).splitlines()[0] if str(w.message) else w.category.__name__
               for w in caught]
    return (images[:len(kept)] if keep else None), kept, reasons, chatter


def _load(location, item, *, image_size, channels):
    """(uint8 S×S×C, None) for an image file or archive member, else (None, why)."""
    try:
        if isinstance(item, tuple):  # (offset, size) inside the archive at location
            offset, size = item
            with open(location, "rb") as f:
                f.seek(offset)
                raw = f.read(size)
        else:
            with open(item, "rb") as f:
                raw = f.read()
    except OSError:
        return None, "unreadable"
    if not raw:
        return None, "empty"
    try:
        return _fit_pil(raw, image_size, channels), None
    except Image.DecompressionBombError:
        return None, "too large"
    except Image.UnidentifiedImageError:
        return None, "not an image"
    except Exception:  # pylint: disable=broad-except  # Pillow raises many types on bad data
        return None, "truncated or corrupt"


def _fit_pil(raw, image_size, channels):
    """Encoded image bytes → uint8 S×S×C: decoded (JPEG at the smallest DCT scale
    still ≥ S, which libjpeg does for free), then `fit_image`."""
    with Image.open(io.BytesIO(raw)) as image:
        image.draft("RGB" if channels == 3 else "L", (image_size, image_size))
        image.load()
        return fit_image(image, image_size, channels)


def fit_array(pixels, image_size, channels):
    """A decoded uint8 (or 16-bit grey) H×W×C array, C = 1 grey, 2 grey + alpha,
    3 RGB, 4 RGBA, as TFDS hands it out → `fit_image`."""
    pixels = np.asarray(pixels)
    return fit_image(Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels),
                     image_size, channels)


def fit_image(image, image_size, channels):
    """A Pillow image → uint8 S×S×C, the one fitting every source goes through:
    16-bit samples scaled to 8 bits (v / 257); alpha composited over black, the -1
    background (rgb · a / 255, rounded); grey ↔ RGB (ITU-R 601 luma); centre-cropped
    to a square; resized with an antialiased bilinear filter. Compositing comes
    before resizing, so a transparent pixel's colour never bleeds into its
    neighbours."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":  # 16- or 32-bit grey (16-bit PNG)
        scale = 1.0 if mode == "F" else 1 / 257
        values = np.asarray(image, np.float32) * scale
        image = Image.fromarray(np.round(np.clip(values, 0, 255)).astype(np.uint8))
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)  # over black
        image = Image.fromarray(np.round(rgb).astype(np.uint8))
        if mode in ("LA", "La") and channels == 1:
            image = image.convert("L")
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode == "1" else "RGB")
    target = "RGB" if channels == 3 else "L"
    if image.mode != target:
        image = image.convert(target)
    width, height = image.size
    side = min(width, height)
    if width != height:
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != image_size:
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    x = np.asarray(image, np.uint8)
    return x[..., None] if x.ndim == 2 else x


def _decoded_images(spec, *, limit=None):
    """uint8 N×S×S×C of a folder or archive spec: kept from resolve's check, else
    decoded now (files that stopped decoding since are left out and logged)."""
    cached = _DECODED.get(_decoded_key(spec))
    if cached is not None:
        return cached[:limit]
    items = _items(spec)[:limit]
    images, kept, reasons, _ = _decode_all(spec.location, items, spec.image_size,
                                           spec.channels, keep=True, what=spec.name)
    if reasons:
        logging.warning("%d files of %s no longer decode: %s", len(reasons),
                        _shown(spec.location), _skip_summary(spec.files, reasons, []))
    if not kept:
        raise DataError(f"no image of {_shown(spec.location)} can be decoded any more")
    if limit is None:
        _remember(spec, images)
    return images


def _streamed_images(spec, items, *, shuffle, seed):
    """A dataset decoding `items` of a folder or archive spec in every epoch, in a
    fresh order per epoch when shuffling; files that fail are dropped."""
    size, channels, location = spec.image_size, spec.channels, spec.location

    def load(index):
        image, _ = _load(location, items[int(index)], image_size=size, channels=channels)
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


# ------------------------------------------------------------- CelebA-HQ and FFHQ


def _resolve_celeba_hq(config, data_dir, image_size, channels, split):
    """The three forms of CelebA-HQ (module docstring), in that order."""
    root = os.path.expanduser(data_dir) if data_dir else None
    if root and os.path.isfile(root):
        if not root.lower().endswith(".tar"):
            raise DataError(f"data_dir {_shown(root)} is a file; give a folder or a .tar")
        return _resolve_archive(root, "celeb_a_hq", image_size, channels)
    default_root = os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
    resolution = int(config) if config.isdigit() else None
    try:
        tfds = _import_tfds()
    except DataError:
        tfds = None
    if tfds is not None:
        name = "celeb_a_hq" + (f"/{config}" if config else "")
        builder = _tfds_builder(tfds, name, root, image_size)
        if _prepared(builder):
            return _tfds_spec(tfds, builder, image_size, channels, split)
        resolution = int(builder.builder_config.name)
        default_root = str(builder.data_dir_root)
    elif config and resolution is None:
        raise DataError(f"no config {config!r} of celeb_a_hq; it has 1, 2, 4, ..., 1024")
    wanted = resolution or next(s for s in (2**k for k in range(11)) if s >= image_size)

    manual_dirs = ([root, os.path.join(root, "downloads", "manual")] if root
                   else [os.path.join(default_root, "downloads", "manual")])
    archives = {}
    for directory in manual_dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            match = _CELEBA_HQ_ARCHIVE.fullmatch(name)
            if match:
                archives.setdefault(int(match[1]), os.path.join(directory, name))
    if archives:
        if config:  # an explicit resolution takes only its own archive
            pick = resolution if resolution in archives else None
        else:
            larger = sorted(r for r in archives if r >= image_size)
            pick = larger[0] if larger else max(archives)
        if pick is not None:
            return _resolve_archive(archives[pick], f"celeb_a_hq/{pick}", image_size,
                                    channels)
    if root and os.path.isdir(root) and not archives and not os.path.isdir(
            os.path.join(root, "downloads")):  # a TFDS data_dir is no folder of images
        files = _scan_folder(root)
        if files:
            return _checked_spec("folder", "celeb_a_hq", os.path.abspath(root), files,
                                 files, image_size, channels or 3)

    archive = f"data{wanted}x{wanted}.tar"
    manual = manual_dirs[-1]
    found = (f"found only {', '.join(os.path.basename(archives[r]) for r in sorted(archives))}"
             if archives else f"found no {archive}")
    looked = (f"in {_shown(root)} and {_shown(manual)}, no image files under {_shown(root)} "
              f"and no built celeb_a_hq/{wanted} there" if root
              else f"in {_shown(manual)} and no built celeb_a_hq/{wanted} in "
                   f"{_shown(default_root)}")
    raise DataError(
        f"CelebA-HQ not found: {found} {looked}. It is read in three forms: (1) a folder "
        f"of images (any depth, png/jpg, any size), e.g. --data_dir ~/data/celeba_hq_256; "
        f"(2) TFDS's manual archive {archive} (or any data<R>x<R>.tar, R ≥ {image_size}), "
        f"read directly, no tfds build: `mkdir -p {_shown(manual)} && mv {archive} "
        f"{_shown(manual)}/`; (3) a TFDS data_dir where celeb_a_hq/{wanted} is built")


def _resolve_ffhq(data_dir, image_size, channels):
    how = ("FFHQ is read from a folder of its images (any depth, png/jpg, any size, e.g. "
           "images1024x1024 or thumbnails128x128 of the FFHQ release) or a .tar of them, "
           "given as data_dir, e.g. --data_dir ~/data/ffhq")
    if not data_dir:
        raise DataError(f"{how}; no data_dir was given")
    root = os.path.expanduser(data_dir)
    if os.path.isfile(root) and root.lower().endswith(".tar"):
        return _resolve_archive(root, "ffhq", image_size, channels)
    if not os.path.isdir(root):
        raise DataError(f"{how}; {_shown(root)} is not a folder")
    files = _scan_folder(root)
    if not files:
        raise DataError(f"{how}; {_shown(root)} holds no image files")
    return _checked_spec("folder", "ffhq", os.path.abspath(root), files, files,
                         image_size, channels or 3)


# ------------------------------------------------------------------------- TFDS


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
    builder = _tfds_builder(tfds, name, os.path.expanduser(data_dir) if data_dir else None,
                            image_size)
    if not _prepared(builder):
        raise DataError(_not_prepared_message(builder, _tfds_full_name(builder)))
    return _tfds_spec(tfds, builder, image_size, channels, split)


def _prepared(builder):
    """builder.is_prepared(), without TFDS's warning that the folder it looked in
    has no dataset_info.json (printed before our one-line error otherwise)."""
    quiet = lambda record: "dataset_info.json" not in record.getMessage()
    logger = logging.get_absl_logger()
    logger.addFilter(quiet)
    try:
        return builder.is_prepared()
    finally:
        logger.removeFilter(quiet)


def _tfds_full_name(builder):
    config = builder.builder_config
    return builder.name + (f"/{config.name}" if config else "")


def _tfds_builder(tfds, name, data_dir, image_size):
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
    return builder


def _tfds_spec(tfds, builder, image_size, channels, split):
    full_name = _tfds_full_name(builder)
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
    if getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None):
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


def _fit_image(image, image_size, channels):
    """TFDS images: uint8 H×W×C (any C in 1..4) → uint8 S×S×channels, through
    `fit_array`: the pixels a folder holding the same image gives."""
    fitted = tf.numpy_function(lambda x: fit_array(x, image_size, channels), [image],
                               tf.uint8, stateful=False)
    return tf.ensure_shape(fitted, [image_size, image_size, channels])


def _tfds_examples(spec, *, shuffle=False, seed=0, shard=(1, 0)):
    """(uint8 image, label) pairs of a TFDS spec; undecodable examples are dropped."""
    tfds = _import_tfds()
    builder = tfds.builder(spec.tfds_name, data_dir=spec.location)
    read_config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
    ds = builder.as_dataset(split=spec.split, shuffle_files=shuffle, read_config=read_config)
    if shard[0] > 1:
        ds = ds.shard(*shard)
    label_key = spec.label_key
    ds = ds.map(lambda ex: (_fit_image(ex[spec.image_key], spec.image_size, spec.channels),
                            ex[label_key] if label_key else tf.zeros([], tf.int64)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.ignore_errors()


def _tfds_arrays(spec, *, limit=None, **kwargs):
    ds = _tfds_examples(spec, **kwargs)
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for x, y in ds.batch(256).prefetch(2):
        images.append(x.numpy())
        labels.append(y.numpy())
    if not images:
        raise DataError(f"split {spec.split} of {spec.name} has no images")
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


# ---------------------------------------------------------------- public pipelines


def make_dataset(spec, batch_size, *, shuffle=True, repeat=True, seed=0,
                 input_context=None, memory_budget=DEFAULT_MEMORY_BUDGET):
    """A tf.data.Dataset of float32 (batch, S, S, C) images in [-1, 1].

    The uint8 images are held in memory when they take at most `memory_budget`
    bytes (folders and archives: as `resolve` decoded them; TFDS: decoded here, once),
    else decoded again in every epoch. Fashion-MNIST is always held in memory.
    With `shuffle`, the order is drawn from `seed`, a new one every epoch.

    input_context: a tf.distribute.InputContext (from
      `strategy.distribute_datasets_from_function`): this pipeline reads its own
      shard and batches by the per-replica batch size.
    """
    num_shards, shard_id = 1, 0
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        num_shards, shard_id = input_context.num_input_pipelines, input_context.input_pipeline_id
    if batch_size < 1:
        raise DataError(f"batch size must be at least 1, not {batch_size}")

    element_bytes = spec.image_size**2 * spec.channels
    in_memory = True
    if spec.kind == "fashion_mnist":
        images, _ = _read_fashion_mnist(spec)
        ds = tf.data.Dataset.from_tensor_slices(images[shard_id::num_shards, ..., None])
        to_float = lambda x: _fit_fashion_mnist(x, spec.image_size, spec.channels)
        element_bytes = images[0].size
    else:
        estimate = (spec.num_examples or float("inf")) * element_bytes / num_shards
        in_memory = estimate <= memory_budget
        rng = np.random.default_rng(seed)
        if spec.kind == "tfds":
            if in_memory:
                images = _tfds_arrays(spec, shuffle=shuffle, seed=seed,
                                      shard=(num_shards, shard_id))[0]
                ds = tf.data.Dataset.from_tensor_slices(images)
            else:
                ds = _tfds_examples(spec, shuffle=shuffle, seed=seed,
                                    shard=(num_shards, shard_id)).map(lambda x, y: x)
        elif in_memory:
            images = _decoded_images(spec)[shard_id::num_shards]
            if shuffle:
                # A bounded shuffle buffer below then still mixes the whole source.
                images = images[rng.permutation(len(images))]
            ds = tf.data.Dataset.from_tensor_slices(images)
        else:
            items = _items(spec)[shard_id::num_shards]
            ds = _streamed_images(spec, items, shuffle=shuffle, seed=seed)
        to_float = to_unit_range

    if shuffle and in_memory:
        buffer = max(1, SHUFFLE_BUFFER_BYTES // element_bytes)
        if spec.num_examples:
            buffer = min(buffer, spec.num_examples)
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


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
    if spec.kind in ("folder", "tar"):
        return to_unit_range(_decoded_images(spec, limit=limit)), None
    images, labels = _tfds_arrays(spec, limit=limit)
    return to_unit_range(images), (labels if spec.label_key else None)
