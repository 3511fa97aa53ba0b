"""From a `dataset` argument to its source: `Catalog.resolve` tells a folder, an
archive, Fashion-MNIST, CelebA-HQ, FFHQ and a TFDS name apart, and keeps what it
learned for its own later calls."""

import os
import re
import types

from ogan_ign.data import faces, files, idx, tfds_source
from ogan_ign.data.common import (DEFAULT_MEMORY_BUDGET, SUPPORTED_SIZES, DataError, Request,
                                  base_name, shown)

_ALIASES = types.MappingProxyType({
    "celeba_hq": "celeb_a_hq",
    "celebahq": "celeb_a_hq",
    "celeba": "celeb_a",
    "fmnist": "fashion_mnist",
    "fashion-mnist": "fashion_mnist",
    "fashionmnist": "fashion_mnist",
})


class Catalog:
    """Resolves datasets and remembers, for as long as it lives: the folders and
    archives it checked (a source unchanged since — same files, sizes and
    modification times — is not decoded again, and keeps its decoded images), the
    locations whose unusable files it reported (one warning each), and the IDX
    files it parsed. A caller that resolves one dataset twice (the scripts do,
    after training, to look for labels) holds one catalog for both.

    memory_budget: bytes of decoded images a folder or archive may hold in memory;
      a larger one is read from its cache (`data.cache`).
    """

    def __init__(self, memory_budget=DEFAULT_MEMORY_BUDGET):
        self._checked = {}  # FileSource.check_key() → the checked source
        self._reported = set()  # locations whose unusable files were reported
        self._idx_files = idx.IdxFiles()
        self._memory_budget = memory_budget

    def resolve(self, dataset, *, data_dir=None, image_size=32, channels=None,
                split="train", cache_dir=None):
        """Checks that `dataset` can be read and returns its `Source`. Raises
        `DataError` with a one-line message otherwise. Folders and archives are
        decoded whole here; other sources open one header.

        dataset: a folder or .tar path, ``fashion_mnist``, ``celeb_a_hq``, ``ffhq``,
          or a TFDS name (``celeb_a_hq/128``, ``mnist``, ...); aliases celeba_hq,
          celeba, fmnist, fashion-mnist; case does not matter. ``tfds:fashion_mnist``
          forces TFDS for Fashion-MNIST. A folder or archive larger than the memory
          budget is decoded once, into its cache, and read from there later.
        data_dir: where the named dataset is (see the package docstring).
        channels: 1 or 3, or None for the source's own (1 for (Fashion-)MNIST, 3 else).
        split: ``train`` / ``test`` (any TFDS split string for TFDS; ignored by
          folders and archives, which are one split).
        cache_dir: where the cache of a folder or archive over the memory budget
          goes (DataError when it cannot be written); None: beside the data, else
          ~/.cache/ogan_ign/data (see `data.cache`).
        """
        if image_size not in SUPPORTED_SIZES:
            raise DataError(
                f"image size {image_size} is not supported; use one of {SUPPORTED_SIZES}")
        if channels not in (None, 1, 3):
            raise DataError(f"channels must be 1 or 3, not {channels}")
        text = str(dataset).strip()
        if not text:
            raise DataError("no dataset given: name fashion_mnist, a TFDS dataset or a folder")
        request = Request(data_dir, image_size, channels, split, canonical_dataset(text))
        path = os.path.expanduser(text)
        if os.path.isdir(path) and not _names_a_dataset(text):
            source = files.folder(path, request)
        elif os.path.isfile(path):
            if not path.lower().endswith(".tar"):
                raise DataError(f"dataset {shown(text)} is a file; give a folder of images, "
                                "a .tar of images or a name")
            source = files.archive(path, base_name(path), request)
        else:
            source = self._named(text, path, request)
        return self._checked_source(source, cache_dir)

    def _named(self, text, path, request):
        name = text.lower()
        force_tfds = name.startswith("tfds:")
        if force_tfds:
            name = name[len("tfds:"):]
        base, slash, config = name.partition("/")
        base = _ALIASES.get(base, base)
        if text[0] in "/.~\\" or not re.fullmatch(r"[a-z0-9_]+(:[0-9.*]+)?", base):
            raise DataError(f"no such folder: {shown(path)}")
        name = base + slash + config
        if name == "fashion_mnist" and not force_tfds:
            return idx.find(request, self._idx_files)
        if base == "celeb_a_hq" and not force_tfds:
            return faces.celeba_hq(config, request)
        if name == "ffhq" and not force_tfds:
            return faces.ffhq(request)
        return tfds_source.find(name, request)

    def _checked_source(self, source, cache_dir):
        """A folder or archive decoded whole, once while its files stay unchanged."""
        if not isinstance(source, files.FileSource):
            return source
        key = source.check_key()
        if key not in self._checked:
            self._checked[key] = source.checked(self._reported, cache_dir,
                                                self._memory_budget)
        return self._checked[key]


def resolve(dataset, *, data_dir=None, image_size=32, channels=None, split="train"):
    """`Catalog.resolve` with a catalog of its own: nothing is remembered between
    calls (hold a `Catalog` for that)."""
    return Catalog().resolve(dataset, data_dir=data_dir, image_size=image_size,
                             channels=channels, split=split)


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


def _names_a_dataset(text):
    """A bare word that is also a folder in the working directory ('mnist') still
    means the dataset; anything with a separator or a leading . or ~ is a path."""
    if os.sep in text or "/" in text or text[0] in ".~":
        return False
    base = _ALIASES.get(text.lower(), text.lower())
    if base in ("fashion_mnist", "celeb_a_hq"):
        return True
    try:
        return tfds_source.import_tfds().builder_cls(base) is not None
    except Exception:  # pylint: disable=broad-except  # not a registered name
        return False
