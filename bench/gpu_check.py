"""`python bench/gpu_check.py [flags]`, the older spelling of `python bench/gpu_check
[flags]`: runs the package bench/gpu_check/ (docs/GPU.md)."""

import os
import runpy

if __name__ == "__main__":
    runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu_check"),
                   run_name="__main__")
