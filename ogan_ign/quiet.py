"""A quiet start: TensorFlow imported without its start-up lines, its later errors shown.

TensorFlow writes lines such as "Could not find cuda drivers on your machine" and
"oneDNN custom operations are on" while it is imported, from a logger that does
not read TF_CPP_MIN_LOG_LEVEL yet, and "failed call to cuInit" at error level
when it first looks for GPUs on a machine without one. `start()` imports
TensorFlow and Keras and looks for the GPUs with the process's stderr sent to a
temporary file, which is written out only if that fails. Unless the user set
TF_CPP_MIN_LOG_LEVEL (then nothing is hidden), it sets it to 2 first: TensorFlow's
C++ INFO and WARNING lines stay hidden after the start, its errors show (3 would
hide them too).

This module imports the standard library only, and `start()` must run before
anything imports TensorFlow: importing the package `ogan_ign` does (its
`__init__` registers the models with Keras), so the scripts reach this file
through the top-level `quiet_start.py`, which loads it by path.

To see every TensorFlow line: `TF_CPP_MIN_LOG_LEVEL=0 python train_ign.py`.
"""

import os
import sys
import tempfile

LEVEL = "2"  # TF_CPP_MIN_LOG_LEVEL after the start: errors only


def start():
    """Imports TensorFlow and Keras quietly (see the module's docstring); does
    nothing when TF_CPP_MIN_LOG_LEVEL is set or TensorFlow is already imported."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = LEVEL
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
            import tensorflow  # pylint: disable=import-outside-toplevel
            tensorflow.config.list_physical_devices("GPU")  # its cuInit line, if any
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
