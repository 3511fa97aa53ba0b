#!/usr/bin/env bash
# Sets up a fresh machine for ogan_ign: a virtual environment in .venv with the
# packages of requirements.txt and ogan_ign itself (editable), and Fashion-MNIST
# (Debian's dataset-fashion-mnist) when it is missing and apt is usable.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing requirements (first time: a few minutes)"
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps -e .

FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -e "$FMNIST/train-images-idx3-ubyte.gz" ] && [ ! -e "$FMNIST/train-images-idx3-ubyte" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Fashion-MNIST (Debian package dataset-fashion-mnist)"
    if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null; }; then
      echo "setup: could not install dataset-fashion-mnist; put its four IDX files in a folder and pass --data_dir" >&2
    fi
  else
    echo "setup: no apt-get here; put Fashion-MNIST's four IDX files in a folder and pass --data_dir" >&2
  fi
fi
echo "setup: done"
