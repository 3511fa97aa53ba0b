"""MirroredStrategy for the tests that make one in the test process: each with
collective keys of its own, so that two of them never collide, whatever tests
run before (bench/gpu_check/reference.py says why; it is the one place that
touches TensorFlow's private key base)."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "bench"))

from gpu_check.reference import mirrored  # noqa: E402,F401  (bench/ is not a package)
