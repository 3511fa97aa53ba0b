"""Fashion-MNIST (Xiao et al. 2017) from its four IDX files, as Debian's package
``dataset-fashion-mnist`` installs them under /usr/share/datasets/fashion-mnist, or in
``data_dir``."""

import gzip
import os
import struct
import types

import numpy as np
import tensorflow as tf

from ogan_ign.data import tfds_source
from ogan_ign.data.common import DataError, Source, shown
from ogan_ign.data.fit import frame_fashion_mnist

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_FILES = types.MappingProxyType({
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
})


class IdxFiles:
    """IDX files (LeCun's MNIST format: magic, then big-endian sizes, then the bytes)
    parsed into read-only uint8 arrays, each once while the file keeps its size and
    modification time."""

    def __init__(self):
        self._parsed = {}  # path → ((size, mtime_ns), array)

    def read(self, path):
        try:
            stat = os.stat(path)
        except OSError as e:
            raise DataError(f"cannot read {shown(path)}: {e}") from None
        key = (stat.st_size, stat.st_mtime_ns)
        if self._parsed.get(path, (None,))[0] != key:
            self._parsed[path] = (key, _parse(path))
        return self._parsed[path][1]


class FashionMnistSource(Source):
    """Native 28 px images, framed by `frame_fashion_mnist`; always held in memory
    (as uint8 28×28, framed per batch)."""

    def __init__(self, spec, idx_files):
        super().__init__(spec)
        self._idx_files = idx_files

    def _read(self):
        image_stem, label_stem = IDX_FILES[self.spec.split]
        location = self.spec.location
        images = self._idx_files.read(_idx_path(location, image_stem))
        labels = self._idx_files.read(_idx_path(location, label_stem))
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(f"Fashion-MNIST files in {shown(location)} do not match: "
                            f"images {images.shape}, labels {labels.shape}")
        return images, labels.astype(np.int64)

    def arrays(self, limit=None):
        images, labels = self._read()
        images, labels = images[:limit, ..., None], labels[:limit]
        out = [self.to_float(images[i:i + 1024]).numpy() for i in range(0, len(images), 1024)]
        return np.concatenate(out), labels

    def stream(self, shard, *, shuffle, seed, memory_budget):
        del shuffle, seed, memory_budget  # held whole; the caller shuffles
        num_shards, shard_id = shard
        images = self._read()[0][shard_id::num_shards, ..., None]
        return tf.data.Dataset.from_tensor_slices(images), True

    def to_float(self, batch):
        return frame_fashion_mnist(batch, self.spec.image_size, self.spec.channels)


def find(request, idx_files):
    """The IDX files of request.split in data_dir, else in FASHION_MNIST_DIR, else a
    TFDS data_dir with fashion_mnist prepared."""
    if request.split not in IDX_FILES:
        raise DataError(f"Fashion-MNIST has splits train and test, not {request.split!r}")
    data_dir = request.data_dir
    candidates = [os.path.expanduser(data_dir)] if data_dir else []
    candidates.append(FASHION_MNIST_DIR)
    for directory in candidates:
        paths = [_idx_path(directory, stem) for stem in IDX_FILES[request.split]]
        if all(paths):
            spec = request.spec(
                name="fashion_mnist", kind="fashion_mnist", channels=request.channels or 1,
                num_examples=_header(paths[0])[0], location=directory, labelled=True)
            return FashionMnistSource(spec, idx_files)
    if data_dir:
        # A TFDS data_dir with fashion_mnist prepared is as good as the IDX files.
        try:
            return tfds_source.find("fashion_mnist", request)
        except DataError:
            pass
    stems = ", ".join(stem + "[.gz]" for stem in IDX_FILES[request.split])
    raise DataError(
        f"Fashion-MNIST not found: looked for {stems} in "
        f"{' and '.join(shown(c) for c in candidates)}; install it with `apt-get "
        "install dataset-fashion-mnist` or put the four IDX files in a directory given "
        "as data_dir")


def _idx_path(directory, stem):
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.isfile(path):
            return path
    return None


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _header(path):
    """Dimensions of an IDX file."""
    try:
        with _open(path) as f:
            return _parse_header(f, path)
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"cannot read {shown(path)}: {e}") from None


def _parse_header(f, path):
    magic = f.read(4)
    if len(magic) != 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
        raise DataError(f"{shown(path)} is not an IDX file of unsigned bytes")
    ndim = magic[3]
    return struct.unpack(f">{ndim}I", f.read(4 * ndim))


def _parse(path):
    try:
        with _open(path) as f:
            dims = _parse_header(f, path)
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except (OSError, EOFError, struct.error) as e:
        raise DataError(f"cannot read {shown(path)}: {e}") from None
    if data.size != int(np.prod(dims)):
        raise DataError(f"{shown(path)} is truncated: {data.size} bytes for shape {dims}")
    return data.reshape(dims)
