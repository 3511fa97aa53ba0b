"""What every data source shares: the error type, the description of a resolved
source (`DataSpec`), the interface every source class implements (`Source`), what a
caller asked for (`Request`), and the uint8 → [-1, 1] mapping."""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import numpy as np
import tensorflow as tf

from ogan_ign.networks import SUPPORTED_SIZES  # the sizes the networks are built for

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
# Below 2 GiB on purpose: a tf.data graph holding a larger constant cannot be
# serialised, which tf.distribute does when it clones a dataset onto devices.
DEFAULT_MEMORY_BUDGET = 1536 * 2**20
# Shuffle buffers hold copies of elements; bound them in bytes, not elements.
SHUFFLE_BUFFER_BYTES = 256 * 2**20
FOLDER_HINT = "a plain folder of images works too: pass its path as the dataset"

class DataError(ValueError):
    """A data problem the user can fix; the message is always one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What `resolve` found, the same for every kind of source.

    name: the dataset's name (``fashion_mnist``, ``celeb_a_hq/64``, a folder's name).
    kind: ``fashion_mnist`` | ``folder`` | ``tar`` | ``tfds``.
    num_examples: usable images in the split (folders and archives: those that
      decoded); None when TFDS does not say.
    location: the folder, the archive, the directory holding the IDX files, or
      TFDS's data_dir.
    identity: `canonical_dataset` of the `dataset` given to `resolve`.
    labelled: whether `load_arrays` returns labels (known without reading any image).
    """

    name: str
    kind: str
    image_size: int
    channels: int
    num_examples: Optional[int]
    split: str = "train"
    location: str = ""
    identity: str = ""
    labelled: bool = False


@dataclasses.dataclass(frozen=True)
class Request:
    """What the caller of `resolve` asked for, beside the dataset's name or path."""

    data_dir: Optional[str]
    image_size: int
    channels: Optional[int]  # None: the source's own
    split: str
    identity: str

    def spec(self, **fields):
        """A `DataSpec` with this request's image size, split and identity; `fields`
        give the rest and may set the split (a folder or archive has one, ``train``)."""
        return DataSpec(**{"image_size": self.image_size, "split": self.split,
                           "identity": self.identity, **fields})


class Source:
    """A dataset as `resolve` returns it, and `make_dataset` / `load_arrays` take it.

    spec: the `DataSpec` describing it; its fields read as the source's own
      attributes (``source.num_examples``).
    arrays(limit): (float32 N×S×S×C in [-1, 1], int64 labels or None), in order.
    stream(shard, shuffle, seed, memory_budget): (a tf.data.Dataset of one uint8
      image per element, from shard = (count, index) of the source; whether the
      images are held in memory, so that a shuffle buffer can mix them).
    to_float(batch): a batch of `stream`'s elements → float32 in [-1, 1].
    """

    def __init__(self, spec):
        self.spec = spec

    def __getattr__(self, name):
        if name == "spec":  # not set yet: no recursion through the line below
            raise AttributeError(name)
        return getattr(self.spec, name)

    def __repr__(self):
        return f"{type(self).__name__}({self.spec!r})"

    def __eq__(self, other):  # two resolves of one unchanged dataset are equal
        return type(self) is type(other) and self.spec == other.spec

    def __hash__(self):
        return hash((type(self), self.spec))

    def arrays(self, limit=None):
        raise NotImplementedError

    def stream(self, shard, *, shuffle, seed, memory_budget):
        raise NotImplementedError

    def to_float(self, batch):
        return to_unit_range(batch)

    def fits(self, num_shards, memory_budget):
        """Whether one shard's uint8 S×S×C images take at most `memory_budget` bytes."""
        element_bytes = self.spec.image_size**2 * self.spec.channels
        return (self.spec.num_examples or float("inf")) * element_bytes / num_shards \
            <= memory_budget


def to_unit_range(images):
    """uint8 [0, 255] → float32 [-1, 1]: v / 127.5 − 1 (a tensor stays a tensor, an
    array an array; both give the same float32 values)."""
    if tf.is_tensor(images):
        return tf.cast(images, tf.float32) / 127.5 - 1.0
    return np.asarray(images, np.float32) / np.float32(127.5) - np.float32(1.0)


def shown(path):
    """A path or name printable on any terminal: bytes that are not UTF-8 (kept by
    Python as surrogate escapes) appear as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def base_name(path):
    return os.path.basename(os.path.normpath(path)) or path
