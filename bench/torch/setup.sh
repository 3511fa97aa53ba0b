#!/usr/bin/env bash
# Makes .venv-torch in the project folder (git-ignored): ogan_ign's requirements,
# ogan_ign itself (editable) and PyTorch on the CPU, in one venv, so that
# bench/bench_torch.py times both libraries in one process. Optional: nothing in
# ogan_ign, its tests or CI imports torch.
#
# Which torch, and why. PyPI's x86_64 Linux wheel of torch is the CUDA build: the
# wheel alone is about 550 MB and it requires the nvidia-* / cuda-toolkit packages,
# several GB more, none of them used on a CPU; installed alone (--no-deps) it does
# not import (`import torch` fails on the missing libcudnn.so.9; tried with 2.14.1).
# Machines of this project's kind keep PyTorch 2.13.0's CPU build ("2.13.0+cpu",
# a 190 MB wheel, 754 MB installed, needing only filelock, typing-extensions,
# setuptools, sympy, networkx, jinja2 and fsspec) in the folder pip searches
# besides the index (its find-links), and pip prefers 2.13.0+cpu to PyPI's
# 2.13.0, so `torch==2.13.0` (bench/torch/requirements.txt) installs it with
# nothing from CUDA. Where that file is missing this script installs PyPI's
# build with its CUDA libraries (several GB, unused here) and says so.
# TORCH_SPEC overrides the version.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-python3}
VENV=.venv-torch
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup (torch): creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PROBE=$(mktemp -d)
trap 'rm -rf "$PROBE"' EXIT
if "${PIP[@]}" download --quiet --no-deps -d "$PROBE" "$TORCH_SPEC+cpu" 2>/dev/null; then
  echo "setup (torch): $TORCH_SPEC's CPU build is at hand; installing it with the requirements"
  "${PIP[@]}" install --quiet -r bench/torch/requirements.txt "$TORCH_SPEC+cpu"
else
  echo "setup (torch): no CPU build of $TORCH_SPEC here; installing PyPI's, with its CUDA" \
       "libraries (several GB, unused on the CPU)"
  "${PIP[@]}" install --quiet -r bench/torch/requirements.txt "$TORCH_SPEC"
fi
"${PIP[@]}" install --quiet --no-deps -e .
"$VENV/bin/python" -c "import tensorflow as tf, torch; print(f'setup (torch): tensorflow \
{tf.__version__} + torch {torch.__version__}, CUDA build: {torch.version.cuda or \"no\"}')"
echo "setup (torch): done; run PYTHONPATH=. $VENV/bin/python bench/bench_torch.py --help"
