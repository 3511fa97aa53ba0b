#!/usr/bin/env bash
# DiffAugment on small subsets of Fashion-MNIST: FID with and without
# `--diffaugment color,translation,cutout`, single-loss GAN and O-GAN, 2 seeds,
# equal steps, at several training-set sizes (where does it stop helping?).
# Not yet run: the numbers go to docs/RESULTS.md with this command behind them.
#
#   bash docs/diffaugment.sh                       # from the repository root
#   SIZES="2000" MODELS="gan" bash docs/diffaugment.sh   # a part of it
#
# Each size is a folder of the first N training images as 32 px PNGs (written
# once); every run is scored by evaluate.py against the 10,000 Fashion-MNIST test
# images, as in docs/RESULTS.md. 24 runs of 3,000 steps with the defaults below:
# about 3 CPU-hours on 2 cores.
set -euo pipefail
export PYTHONPATH=.
PY=${PY:-.venv/bin/python}
R=${RESULTS:-runs/diffaugment}
SIZES=${SIZES:-"2000 10000 60000"}
MODELS=${MODELS:-"gan ogan"}
SEEDS=${SEEDS:-"0 1"}
POLICY=color,translation,cutout
COMMON="--image_size 32 --channels 1 --width 32 --batch_size 64 --steps 3000 --mixed_precision off"
# Each model's best setting in docs/RESULTS.md.
declare -A SCRIPT=([gan]=train_gan.py [ogan]=train_ogan.py)
declare -A FLAGS=([gan]="--lr 2e-4 --objective ns --penalty none"
                  [ogan]="--lr 2e-4 --corr_weight 1.0 --probe_examples 0")

subset() {  # subset <n>: a folder of the first n training images, 32 px grey PNGs
  local folder="$R/data/fashion_mnist_$1"
  [ -f "$folder/done" ] || $PY - "$1" "$folder" <<'EOF'
import os, sys
import imageio.v3 as iio
import numpy as np
from ogan_ign import data
n, folder = int(sys.argv[1]), sys.argv[2]
os.makedirs(folder, exist_ok=True)
x = data.load_arrays(data.resolve("fashion_mnist", image_size=32), limit=n)[0]
for i, image in enumerate(np.round((x + 1) * 127.5).clip(0, 255).astype(np.uint8)):
    iio.imwrite(os.path.join(folder, f"{i:05d}.png"), image[..., 0])
open(os.path.join(folder, "done"), "w").close()
EOF
  echo "$folder"
}

for n in $SIZES; do
  folder=$(subset "$n")
  for model in $MODELS; do
    for seed in $SEEDS; do
      for aug in off on; do
        name="${model}_${n}_${aug}_seed${seed}"
        extra=(); [ "$aug" = on ] && extra=(--diffaugment "$POLICY")
        [ -f "$R/$name/model.keras" ] || nice -n 10 $PY "${SCRIPT[$model]}" $COMMON \
          ${FLAGS[$model]} --dataset "$folder" --seed "$seed" --out_dir "$R/$name" "${extra[@]}"
        [ -f "$R/$name.json" ] || $PY evaluate.py --run_dir "$R/$name" \
          --dataset fashion_mnist --output "$R/$name.json"
      done
    done
  done
done
for f in "$R"/*.json; do
  printf '%s\t' "$(basename "$f" .json)"
  $PY -c "import json,sys; print(json.load(open(sys.argv[1]))['evaluation']['fid'])" "$f" 2>/dev/null \
    || echo "(see $f)"
done
