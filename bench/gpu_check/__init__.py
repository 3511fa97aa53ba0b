"""One command that checks and measures ogan_ign's GPU path, and one report.

    PYTHONPATH=. python bench/gpu_check --out gpu_report          # about 10 min on one GPU
    PYTHONPATH=. python bench/gpu_check --out /tmp/gc --quick     # the same paths, tiny (CPU)

It writes `<out>/gpu_check.md` and `<out>/gpu_check.json` (rewritten after every
section, so a run cut short keeps what it finished) and exits with status 1 when
any check failed or any section did not finish, 0 otherwise. docs/GPU.md says
how to read the report and what it costs.

One module per section; an exception in one is recorded as "failed: <one line>"
(its traceback in the JSON) and the others still run:

  environment   versions, devices, and what `--strategy auto`, `--mixed_precision
                auto` and `--jit_compile auto` resolve to here.
  equality      one training step on two replicas equals the one-device step
                (reference.py, shared with tests/test_distribute.py).
  precision     a few bf16 and fp16 steps of each model stay finite.
  speed         img/s of each model, XLA off / on, fp32 / bf16 / fp16, one device /
                all devices, against the matmul peak of the same precision.
  determinism   exact resume under op determinism, and what op determinism costs.
  train_ign     train_ign.py on Fashion-MNIST with its defaults (fewer steps).

The other modules: presets (sizes and steps of `full` and `quick`), record (what
a process's sections share), processes (the child processes), markdown (the
report), runner (the flags, and which process runs which section).

Processes. The first process only orchestrates and writes the report; it never
touches a device. Three children do the work: train_ign.py, a "checks" child
(equality) and a "speed" child (environment, precision, speed, determinism), so
that a crash in one (a CUDA error, say) loses only its own sections, and each
child sets up its devices before TensorFlow initialises them. With a GPU they
run one after the other, train_ign first (each would take the GPU's memory, and
the timings want the GPU alone); on a CPU they run side by side.

Devices. The equality check needs two replicas: the first two GPUs when there
are two or more; with one GPU, two logical GPUs carved out of it by the checks
child; with no GPU, two logical CPUs (as tests/conftest.py does), so the same
code runs on a CPU. The speed child uses the GPUs as they are (on a CPU, two
logical CPUs for the "all devices" rows).
"""
