"""`python bench/gpu_check [flags]`: runs the GPU check (the package's docstring)."""

import os
import sys

# Run as a folder, Python puts this folder first on the path; the package and its
# neighbours (flops.py) are imported from bench/ instead.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from absl import app, flags  # noqa: E402  (after the path is set)

from gpu_check import runner  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "folder for gpu_check.md, gpu_check.json and the runs")
flags.DEFINE_boolean("quick", False, "tiny settings, every code path (what the tests run)")
flags.DEFINE_integer("train_steps", None, "steps of the train_ign run (default 300, quick 5)")
flags.DEFINE_float("speed_seconds", None, "time budget of the speed section; (model, size) "
                   "groups not started by then are listed as skipped (default 300, quick 120)")
# Not for users (left out of --help): the tests' switch, and the children's.
flags.DEFINE_boolean("inject_mismatch", False, "add 1e-3 to every equality reference, so "
                     "that the check must fail", module_name="gpu_check_internal")
flags.DEFINE_enum("worker", None, ["checks", "speed"], "run this child's sections",
                  module_name="gpu_check_internal")
flags.DEFINE_string("results", None, "the child's results file", module_name="gpu_check_internal")



def print_help_and_exit():
    """-h / --help: the package's docstring and the flags above, on stdout, exit 0
    (absl's own help exits 1, which reads as a failure to a shell or a CI step)."""
    import gpu_check  # pylint: disable=import-outside-toplevel
    print(gpu_check.__doc__.strip() + "\n\nflags:\n" + FLAGS.module_help(sys.argv[0]), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    if any(arg in ("-h", "--help", "--helpshort", "-?") for arg in sys.argv[1:]):
        print_help_and_exit()
    app.run(lambda argv: runner.main(argv, FLAGS))
