"""Every dataset → a `tf.data` pipeline of float32 images in [-1, 1].

`resolve(dataset, ...)` (or `Catalog.resolve`, which remembers) finds the source;
one class per kind, each in its module, behind the `Source` interface (a `DataSpec`
describing it, `arrays`, `stream`):

* ``fashion_mnist`` — `idx.FashionMnistSource`: the four IDX files of Fashion-MNIST
  (Debian's ``dataset-fashion-mnist`` or ``data_dir``), native 28 px, framed by
  `fit.frame_fashion_mnist` (2 px of background at 32 px).
* a folder of images — `files.FolderSource`; an uncompressed ``.tar`` of images —
  `files.ArchiveSource`. Both are decoded whole, once, in `resolve`; the unusable
  images are left out and summarised in one warning. One too large for memory is
  decoded into a cache file (`cache`) that later epochs and runs read in place.
* ``celeb_a_hq`` / ``ffhq`` — found by `faces` in the forms people hold them (a
  built TFDS dataset, TFDS's manual ``data{R}x{R}.tar`` archives read in place, a
  folder or .tar given as ``data_dir``), then read by the source of that form.
* any other TFDS dataset with an image feature — `tfds_source.TfdsSource`; nothing
  is ever downloaded.

Images of folders, archives and TFDS go through one function, `fit.fit_image`:
16-bit samples scaled to 8 bits, alpha composited over black (the -1 background),
grey ↔ RGB as requested (ITU-R 601 luma), centre-cropped to a square, resized with an
antialiased bilinear filter; so one PNG gives the same pixels from every source.
`to_unit_range` then maps uint8 v to v / 127.5 − 1.

Nothing is cached in the modules: a source keeps its own decoded images (or its
cache file), a `Catalog` what it checked and parsed. The library never reads flags; every user-facing problem
is a one-line `DataError`.
"""

from ogan_ign.data.catalog import Catalog, canonical_dataset, resolve
from ogan_ign.data.common import (DEFAULT_MEMORY_BUDGET, IMAGE_EXTENSIONS,
                                  SHUFFLE_BUFFER_BYTES, SUPPORTED_SIZES, DataError, DataSpec,
                                  Source, to_unit_range)
from ogan_ign.data.files import ArchiveSource, FileSource, FolderSource
from ogan_ign.data.fit import fit_image
from ogan_ign.data.idx import FASHION_MNIST_DIR, FashionMnistSource
from ogan_ign.data.pipeline import load_arrays, make_dataset
from ogan_ign.data.tfds_source import TfdsSource

__all__ = [
    "ArchiveSource", "Catalog", "DEFAULT_MEMORY_BUDGET", "DataError", "DataSpec",
    "FASHION_MNIST_DIR", "FashionMnistSource", "FileSource", "FolderSource",
    "IMAGE_EXTENSIONS", "SHUFFLE_BUFFER_BYTES", "SUPPORTED_SIZES", "Source", "TfdsSource",
    "canonical_dataset", "fit_image", "load_arrays", "make_dataset", "resolve",
    "to_unit_range",
]
