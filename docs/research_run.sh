# Sourced by the research runners (docs/ogan/equal_gan.sh, docs/ign/screen.sh): one
# training run and its validation scores, each skipped when it exists.
#
#   train_and_score <name> <steps> <seed> <script and flags...>
#   extend_and_score <from> <name> <steps> <seed> <script and flags...>
#
# extend_and_score continues the finished run <from> to <steps> in a copy named
# <name> (a resumed run: same weights, average, optimizer and data position, so
# with a constant learning rate it is the run that would have trained <steps> from
# the start, at the cost of the extra steps only; not so with --lr_decay, whose
# schedule is one over --steps: such rows are separate train_and_score runs).
#
# Sets PY (the venv's python), R (the results folder) and DATA (docs/sampling/run.sh's
# training folder, which must exist); train_and_score needs the runner's COMMON (flags
# of every run), EVAL (the folder of the scores under $R) and EVAL_FLAGS (evaluate.py's
# flags besides the fixed ones).
export PYTHONPATH=.
PY=${PY:-.venv/bin/python}
R=${RESULTS:-runs/sampling}
DATA=$R/data/fashion_mnist_train50000
[ -f "$DATA/done" ] || { echo "run docs/sampling/run.sh first (it writes $DATA)"; exit 2; }

train_and_score() {
  local name=$1 steps=$2 seed=$3; shift 3
  [ -f "$R/$name/model.keras" ] || nice -n 10 $PY "$@" $COMMON --steps "$steps" \
    --seed "$seed" --out_dir "$R/$name" >"$R/$name.log" 2>&1
  mkdir -p "$R/$EVAL"
  [ -f "$R/$EVAL/$name.json" ] || nice -n 10 $PY evaluate.py --run_dir "$R/$name" \
    --dataset fashion_mnist --reference validation $EVAL_FLAGS --output "$R/$EVAL/$name.json"
}

extend_and_score() {
  local from=$1 name=$2
  [ -f "$R/$from/model.keras" ] || { echo "extend_and_score: $R/$from has not finished"; exit 2; }
  if [ ! -d "$R/$name" ]; then
    rm -rf "$R/$name.copy"
    cp -r "$R/$from" "$R/$name.copy"
    rm -f "$R/$name.copy/model.keras" "$R/$name.copy/metrics.json" "$R/$name.copy/.lock"
    mv "$R/$name.copy" "$R/$name"
  fi
  shift 2
  train_and_score "$name" "$@"
}
