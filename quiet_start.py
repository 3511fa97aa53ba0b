"""Imported first by the scripts: TensorFlow starts without its C++ start-up lines.

TensorFlow writes lines such as "Could not find cuda drivers on your machine"
while it is imported, from a logger that does not read TF_CPP_MIN_LOG_LEVEL
yet, and "failed call to cuInit" at error level when it first looks for GPUs
on a machine without one. Unless TF_CPP_MIN_LOG_LEVEL is already set, this
sets it to 3 (no C++ log lines) and imports TensorFlow and Keras with the
process's stderr sent to a temporary file, which is written out only if the
import fails. Python errors and everything the scripts print are unaffected.

To see every TensorFlow line: `TF_CPP_MIN_LOG_LEVEL=0 python train_ign.py`.
"""

import os
import sys
import tempfile


def import_tensorflow_quietly():
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:  # the user's (or a test's) choice: hide nothing
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
            import tensorflow  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
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


import_tensorflow_quietly()
