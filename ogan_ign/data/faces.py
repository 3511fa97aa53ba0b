"""Where CelebA-HQ and FFHQ are, in the forms people hold them; each form is read by
a source of its own kind (`files.FolderSource`, `files.ArchiveSource`,
`tfds_source.TfdsSource`).

``celeb_a_hq`` (alias ``celeba_hq``), tried in this order: a built TFDS dataset in
``data_dir``; TFDS's manual archives ``data{R}x{R}.tar`` in ``data_dir`` or
``data_dir/downloads/manual``, read directly (no ``tfds build``) — the smallest
R ≥ image_size, else the largest; a folder of its images given as ``data_dir`` (any
depth, any size). ``ffhq``: a folder (or a .tar) of its images given as ``data_dir``.
"""

import os
import re

from ogan_ign.data import files, tfds_source
from ogan_ign.data.common import DataError, shown

# TFDS's celeb_a_hq archive names; R is the side of every image inside.
_CELEBA_HQ_ARCHIVE = re.compile(r"data(\d+)x\1\.tar")


def celeba_hq(config, request):
    """CelebA-HQ at the resolution `config` ('' for the request's size)."""
    root = os.path.expanduser(request.data_dir) if request.data_dir else None
    if root and os.path.isfile(root):
        if not root.lower().endswith(".tar"):
            raise DataError(f"data_dir {shown(root)} is a file; give a folder or a .tar")
        return files.archive(root, "celeb_a_hq", request)
    built, resolution, default_root = _built(config, root, request)
    if built is not None:
        return built
    wanted = resolution or next(s for s in (2**k for k in range(11))
                                if s >= request.image_size)
    manual_dirs = ([root, os.path.join(root, "downloads", "manual")] if root
                   else [os.path.join(default_root, "downloads", "manual")])
    archives = _archives(manual_dirs)
    if archives:
        if config:  # an explicit resolution takes only its own archive
            pick = resolution if resolution in archives else None
        else:
            larger = sorted(r for r in archives if r >= request.image_size)
            pick = larger[0] if larger else max(archives)
        if pick is not None:
            return files.archive(archives[pick], f"celeb_a_hq/{pick}", request)
    if root and os.path.isdir(root) and not archives and not os.path.isdir(
            os.path.join(root, "downloads")):  # a TFDS data_dir is no folder of images
        found = files.scan_folder(root)
        if found:
            return files.folder_of(found, os.path.abspath(root), request, "celeb_a_hq")
    raise DataError(_celeba_hq_missing(wanted, archives, manual_dirs[-1], root,
                                       default_root, request.image_size))


def _built(config, root, request):
    """(the built TFDS celeb_a_hq source or None, the resolution asked for or None,
    TFDS's data_dir). Without TFDS installed, only the other forms are looked for."""
    default_root = os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets"))
    resolution = int(config) if config.isdigit() else None
    try:
        tfds_source.import_tfds()
    except DataError:
        if config and resolution is None:
            raise DataError(
                f"no config {config!r} of celeb_a_hq; it has 1, 2, 4, ..., 1024") from None
        return None, resolution, default_root
    name = "celeb_a_hq" + (f"/{config}" if config else "")
    builder = tfds_source.builder(name, root, request.image_size)
    if tfds_source.prepared(builder):
        return tfds_source.source(builder, request), resolution, default_root
    return None, int(builder.builder_config.name), str(builder.data_dir_root)


def _archives(directories):
    """{R: path} of the data{R}x{R}.tar files in `directories` (the first found wins)."""
    archives = {}
    for directory in directories:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            match = _CELEBA_HQ_ARCHIVE.fullmatch(name)
            if match:
                archives.setdefault(int(match[1]), os.path.join(directory, name))
    return archives


def _celeba_hq_missing(wanted, archives, manual, root, default_root, image_size):
    archive = f"data{wanted}x{wanted}.tar"
    found = (f"found only {', '.join(os.path.basename(archives[r]) for r in sorted(archives))}"
             if archives else f"found no {archive}")
    looked = (f"in {shown(root)} and {shown(manual)}, no image files under {shown(root)} "
              f"and no built celeb_a_hq/{wanted} there" if root
              else f"in {shown(manual)} and no built celeb_a_hq/{wanted} in "
                   f"{shown(default_root)}")
    return (
        f"CelebA-HQ not found: {found} {looked}. It is read in three forms: (1) a folder "
        f"of images (any depth, png/jpg, any size), e.g. --data_dir ~/data/celeba_hq_256; "
        f"(2) TFDS's manual archive {archive} (or any data<R>x<R>.tar, R ≥ {image_size}), "
        f"read directly, no tfds build: `mkdir -p {shown(manual)} && mv {archive} "
        f"{shown(manual)}/`; (3) a TFDS data_dir where celeb_a_hq/{wanted} is built")


def ffhq(request):
    """FFHQ: a folder or a .tar of its images, given as data_dir."""
    how = ("FFHQ is read from a folder of its images (any depth, png/jpg, any size, e.g. "
           "images1024x1024 or thumbnails128x128 of the FFHQ release) or a .tar of them, "
           "given as data_dir, e.g. --data_dir ~/data/ffhq")
    if not request.data_dir:
        raise DataError(f"{how}; no data_dir was given")
    root = os.path.expanduser(request.data_dir)
    if os.path.isfile(root) and root.lower().endswith(".tar"):
        return files.archive(root, "ffhq", request)
    if not os.path.isdir(root):
        raise DataError(f"{how}; {shown(root)} is not a folder")
    found = files.scan_folder(root)
    if not found:
        raise DataError(f"{how}; {shown(root)} holds no image files")
    return files.folder_of(found, os.path.abspath(root), request, "ffhq")

