"""Image files, archives and temporary folders for the data tests."""

import contextlib
import io
import os
import shutil
import sys
import tarfile
import tempfile

from PIL import Image


def tempdir(test):
    """A fresh directory removed after the test (absl's create_tempdir needs parsed
    flags, which pytest does not provide)."""
    path = tempfile.mkdtemp(prefix="ogan_ign_data_")
    test.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path


def save(path, array, fmt=None, mode=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array)
    if mode:
        image = image.convert(mode)
    image.save(path, fmt)


def png_bytes(array, fmt="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt)
    return buffer.getvalue()


def write_tar(path, members):
    """An uncompressed tar holding `members` (name → bytes; None makes a directory),
    as TFDS's celeb_a_hq manual archives are."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tarfile.open(path, "w") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            if payload is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))


@contextlib.contextmanager
def stderr_bytes():
    """Everything written to file descriptor 2 inside the block, by Python or by C
    libraries (libjpeg, TensorFlow's logging), as a list holding one string."""
    out = []
    sys.stderr.flush()
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield out
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read().decode("utf-8", "replace"))
