"""Imported first by the scripts: runs `ogan_ign.quiet.start()` before anything
imports TensorFlow (its start-up lines hidden, its later errors shown).

`from ogan_ign import quiet` would be too late: importing the package imports
TensorFlow (its `__init__` registers the models with Keras). So this file loads
ogan_ign/quiet.py, which needs the standard library only, by its path.
"""

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ogan_ign", "quiet.py")
_SPEC = importlib.util.spec_from_file_location("ogan_ign_quiet_start", _PATH)
_QUIET = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_QUIET)
_QUIET.start()
