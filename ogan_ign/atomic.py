"""The one way ogan_ign writes a file that must never be seen half-written:
through a temporary beside it, renamed onto it once whole (atomic on one file
system). A kill or a failure leaves the target as it was and, at worst, a
temporary that `is_temporary` recognises (the run folder removes those when a
run starts).
"""

import contextlib
import os
import re


def temporary_path(path):
    """The temporary a write of `path` goes through: `<stem>.tmp<suffix>` beside
    it (the suffix kept: Keras saves only to a .keras name, imageio picks the
    format by it)."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}.tmp{suffix}"


def is_temporary(name):
    """Whether a file name is a write's temporary (`temporary_path`; a bare
    `*.tmp` also covers the names older versions of ogan_ign used)."""
    return re.search(r"\.tmp(\.[^.]*)?$", name) is not None


@contextlib.contextmanager
def replacing(path):
    """Yields the temporary path to write `path` through, then renames it onto
    `path`; the temporary is removed whenever the body fails. Creates the
    folder. OSError as raised."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            with contextlib.suppress(OSError):
                os.remove(tmp)
