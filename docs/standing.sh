#!/usr/bin/env bash
# FID with and without standing statistics (evaluate.py --standing_stats 64) on the
# run folders docs/results.sh trains: the single-loss GAN, O-GAN and IGN (its
# defaults, --ema 0.999: standing statistics of the averaged weights), 2 seeds each.
# Not run yet; about 12 evaluations of 10,000 samples.
#
#   bash docs/results.sh && bash docs/standing.sh       # from the repository root
set -euo pipefail
export PYTHONPATH=.
PY=${PY:-.venv/bin/python}
R=${RESULTS:-runs/results}
S=$R/standing
RUNS="gan_ns_lr2e-4 gan_ns_lr2e-4_seed1 ogan_lr2e-4_corr1 ogan_lr2e-4_corr1_seed1
      ign_defaults ign_defaults_seed1"
mkdir -p "$S"
rows=()
for name in $RUNS; do
  for count in 0 64; do
    out="$S/${name}_standing${count}.json"
    [ -f "$out" ] || nice -n 10 $PY evaluate.py --run_dir "$R/$name" --standing_stats $count \
      --output "$out"
    rows+=("$name, --standing_stats $count=$out")
  done
done
$PY docs/results_table.py "${rows[@]}"
