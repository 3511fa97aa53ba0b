#!/usr/bin/env bash
# Issue 24: IGN settings against the single-loss GAN (the DCGAN of this project), on
# the validation split of docs/sampling/run.sh (train[:50000] of Fashion-MNIST as
# 32 px PNGs trained on, train[50000:] scored against; the test split only by the
# `test` stage, once for a chosen setting). Every row: 32 px, batch 64, bf16, train_ign.py's defaults but for
# the flags named in the row.
#
#   bash docs/ign/screen.sh screen     # width 32, seed 0, 3,000 steps: which setting
#   bash docs/ign/screen.sh seeds      # the λ_tight 5 row: seed 1, and standing statistics
#   bash docs/ign/screen.sh control    # λ_tight controlled (BEGAN's k_t), width 32, seed 0
#   bash docs/ign/screen.sh recon      # λ_rec 20 / 40 / 80 under the control (γ 0.8), width 32
#   bash docs/ign/screen.sh confirm    # CHOSEN=... TAG=...: width 64, 2 seeds, 3k and 6k
#   bash docs/ign/screen.sh paper      # the paper's recipe at width 64, seed 0, 3k
#   bash docs/ign/screen.sh recon64    # REC=40: λ_rec under the control at width 64, seed 0, 3k
#   bash docs/ign/screen.sh spatial    # the spatial code under γ 0.8 and λ_rec 40, width 32
#   bash docs/ign/screen.sh idem       # λ_idem 40 / 80 under γ 0.8 and λ_rec 40, width 32
#   bash docs/ign/screen.sh edges      # --distance l1_edges under γ 0.8 and λ_rec 40, width 32
#   bash docs/ign/screen.sh ema        # EMAS=...: the average's decay under the default, width 32
#   bash docs/ign/screen.sh latent     # LATENTS=...: the size of f's code under the default, width 32
#   bash docs/ign/screen.sh lr         # LRS=...: Adam's learning rate under the default, width 32
#   bash docs/ign/screen.sh decay      # DECAYS=...: --lr_decay at lr 5e-4 and 1e-3 under the default, width 32
#   bash docs/ign/screen.sh clamp      # CLAMPS=...: the tight clamp's a under the default, width 32
#   bash docs/ign/screen.sh features   # --distance l1_random_features under the default, width 32
#   bash docs/ign/screen.sh diversity  # DIVS=...: a mode-seeking term under the default, width 32
#   FLAG=... VALUES=... [UNDER=... TAG=...] bash docs/ign/screen.sh sweep  # any flag, width 32
#   TAG=... CHOSEN_EVAL=... bash docs/ign/screen.sh temperature  # TEMPS=...: confirm's rows sampled at τ
#   CHOSEN=... TAG=... CHOSEN_EVAL=... bash docs/ign/screen.sh long  # STEPS (10000): a longer run
#   TAG=... CHOSEN_EVAL=... bash docs/ign/screen.sh test   # once: the chosen rows on the test split
#   python docs/ign/screen_table.py    # the table
#
# Scores: evaluate.py --reference validation (10,000 samples; FID, precision, recall,
# coverage, effective classes; f(f(z)) as ff_*; recon_l1 = mean |f(x) − x| of the
# validation images).
set -euo pipefail
source docs/research_run.sh
COMMON="--image_size 32 --channels 1 --batch_size 64 --mixed_precision bf16
        --sample_every 0 --ckpt_every 1000 --dataset $DATA"
IGN="train_ign.py --coverage_samples 0"
# train_ign.py's defaults before this issue chose λ_tight 5 and standing statistics
# (and then the λ_tight control, λ_rec 40, --lr_decay 0.5 and τ 1.05): the rows named
# "defaults" below (ign_50000_off_*, ign_w64_*) and their variations; a later flag of a
# row wins.
BEFORE="--lambda_tight 2.5 --standing_stats 0 --tight_target none --lambda_rec 20
        --lr_decay 0 --temperature 1"
GAN="train_gan.py --objective ns --penalty none --lr 2e-4"

EVAL=eval24 EVAL_FLAGS="--probe_examples 0"
run() { train_and_score "$@"; }

# One width-32, seed-0, 3,000-step row per value of one flag under the default's
# γ 0.8 and λ_rec 40 (and the flags in UNDER, whose name the tag then carries),
# scored with standing statistics, beside the default's own row
# ign_control0.8_rec40_seed0_standing64:
#   sweep_default <flag> <tag> <values...>  →  ign_control0.8_rec40_<tag><value>_seed0_standing64
# (SEED, default 0, trains another seed: _seed<SEED> in the name).
sweep_default() {
  local flag=$1 tag=$2 value seed=${SEED:-0}; shift 2
  for value in "$@"; do
    EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
      run "ign_control0.8_rec40_${tag}${value}_seed${seed}_standing64" 3000 $seed $IGN $BEFORE \
        --width 32 --tight_target 0.8 --lambda_rec 40 ${UNDER:-} "--$flag" "$value"
  done
}

case "${1:-screen}" in
  screen)
    # The defaults at width 32 (docs/sampling/run.sh's IGN row, re-scored) and the DCGAN.
    run ign_50000_off_seed0 3000 0 $IGN $BEFORE --width 32
    run gan_50000_off_seed0 3000 0 $GAN --width 32
    run ign_group_seed0 3000 0 $IGN $BEFORE --width 32 --norm group
    run ign_spatial_seed0 3000 0 $IGN $BEFORE --width 32 --code spatial
    run ign_tight5_seed0 3000 0 $IGN $BEFORE --width 32 --lambda_tight 5
    run ign_tight1.25_seed0 3000 0 $IGN $BEFORE --width 32 --lambda_tight 1.25
    ;;
  seeds)
    # The strongest screen row again: a second seed, and with standing statistics
    # (samples only; docs/sampling/README.md) on both.
    run ign_tight5_seed1 3000 1 $IGN $BEFORE --width 32 --lambda_tight 5
    run gan_50000_off_seed1 3000 1 $GAN --width 32
    run ign_50000_off_seed1 3000 1 $IGN $BEFORE --width 32
    for seed in 0 1; do
      out="$R/eval24/ign_tight5_seed${seed}_standing64.json"
      [ -f "$out" ] || nice -n 10 $PY evaluate.py --run_dir "$R/ign_tight5_seed$seed" \
        --dataset fashion_mnist --reference validation --probe_examples 0 \
        --standing_stats 64 --output "$out"
    done
    ;;
  control)
    # λ_tight under the equilibrium control (--tight_target γ, gain 0.01, from
    # λ_tight 2.5) at width 32, seed 0, beside the screen's constant λ_tight rows;
    # scored with standing statistics as the λ_tight 5 row.
    for target in 0.8 1.0; do
      EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
        run "ign_control${target}_seed0_standing64" 3000 0 $IGN $BEFORE --width 32 \
          --tight_target $target
    done
    ;;
  recon)
    # Held-out reconstruction (the L1 ≤ 0.05) under the λ_tight control:
    # λ_rec 20 (the paper's; this row re-runs the control screen's γ 0.8 row on
    # the current code) against 40 and 80, width 32, seed 0, 3,000 steps; RECS
    # names a subset.
    # TARGETS names other γ (default 0.8).
    for target in ${TARGETS:-0.8}; do
      for rec in ${RECS:-20 40 80}; do
        EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
          run "ign_control${target}_rec${rec}_seed0_standing64" 3000 0 $IGN $BEFORE --width 32 \
            --tight_target $target --lambda_rec $rec
      done
    done
    ;;
  spatial)
    # The spatial code (f's smallest feature map as the code) under the default's
    # γ 0.8 and λ_rec 40, width 32, seed 0, 3,000 steps, beside the screen's
    # ign_spatial_seed0 (former defaults) and ign_control0.8_rec40_seed0_standing64.
    EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
      run ign_control0.8_rec40_spatial_seed0_standing64 3000 0 $IGN $BEFORE --width 32 \
        --tight_target 0.8 --lambda_rec 40 --code spatial
    ;;
  idem)
    # f(f(z)) against f(z) (the "idempotence must not cost quality"): λ_idem
    # raised from the paper's 20 under the default's γ 0.8 and λ_rec 40, width 32,
    # seed 0, 3,000 steps, beside ign_control0.8_rec40_seed0_standing64 (λ_idem 20);
    # IDEMS names a subset.
    sweep_default lambda_idem idem ${IDEMS:-40 80}
    ;;
  edges)
    # The distance of δ (the third direction): --distance l1_edges (l1 plus
    # l1 of the differences of neighbouring pixels) under the default's γ 0.8 and
    # λ_rec 40, width 32, seed 0, 3,000 steps, beside the same row with the paper's
    # l1 (re-run when this machine lacks it) and the DCGAN at width 32.
    run gan_50000_off_seed0 3000 0 $GAN --width 32
    for distance in l1 l1_edges; do
      tag=$([ $distance = l1 ] && echo "" || echo "_$distance")
      EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
        run "ign_control0.8_rec40${tag}_seed0_standing64" 3000 0 $IGN $BEFORE --width 32 \
          --tight_target 0.8 --lambda_rec 40 --distance $distance
    done
    ;;
  ema)
    # Coverage (the goal the default misses): the decay of the weight average,
    # which sets how far behind the current weights the sampled ones are (0.999,
    # the default, averages ~1,000 steps: a third of a 3,000-step run), under the
    # default's γ 0.8 and λ_rec 40, width 32, seed 0, 3,000 steps, beside
    # ign_control0.8_rec40_seed0_standing64 (0.999); EMAS names the decays.
    sweep_default ema ema ${EMAS:-0.995 0.9995}
    ;;
  latent)
    # Coverage and reconstruction against the size of f's dense code (512, the
    # default, beside ign_control0.8_rec40_seed0_standing64), under the default's
    # γ 0.8 and λ_rec 40, width 32, seed 0, 3,000 steps; LATENTS names the sizes.
    sweep_default latent latent ${LATENTS:-1024 256}
    ;;
  lr)
    # Coverage rose only with training length: Adam's learning rate (5e-4, the
    # default, beside ign_control0.8_rec40_seed0_standing64; the paper's 1e-4 lost
    # before the control and λ_rec 40 existed) under the default's γ 0.8 and λ_rec
    # 40, width 32, seed 0, 3,000 steps; LRS names the rates.
    sweep_default lr lr ${LRS:-1e-3 2.5e-4}
    ;;
  decay)
    # The learning rate falling linearly to 0 over the last DECAYS of the run
    # (--lr_decay; default 0.5, the second half): at the default's 5e-4 and at 1e-3
    # (the lr stage's row with the better FID and coverage), width 32, seed 0, 3,000 steps.
    for decay in ${DECAYS:-0.5}; do
      for lr in 5e-4 1e-3; do
        EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
          run "ign_control0.8_rec40_lr${lr}_decay${decay}_seed0_standing64" 3000 0 $IGN \
            $BEFORE --width 32 --tight_target 0.8 --lambda_rec 40 --lr $lr --lr_decay $decay
      done
    done
    ;;
  clamp)
    # The clamp a of the tight term, tanh(L_tight / (a·L_rec))·a·L_rec (1.5, the
    # paper's, beside ign_control0.8_rec40_lr5e-4_decay0.5_seed0_standing64; none: no
    # clamp) under the default's γ 0.8, λ_rec 40 and --lr_decay 0.5, width 32, seed 0,
    # 3,000 steps, scored at τ 1 as that row; CLAMPS names the values.
    UNDER="--lr_decay 0.5" sweep_default tight_clamp lr5e-4_decay0.5_clamp ${CLAMPS:-1 3 none}
    ;;
  features)
    # The distance of δ in a fixed random conv net's features (the third
    # direction; `ogan_ign/random_features.py`): --distance l1_random_features under
    # the default's γ 0.8, λ_rec 40 and --lr_decay 0.5, width 32, seed 0, 3,000 steps,
    # scored at τ 1 beside ign_control0.8_rec40_lr5e-4_decay0.5_seed0_standing64 (l1).
    UNDER="--lr_decay 0.5" sweep_default distance lr5e-4_decay0.5_ l1_random_features
    ;;
  diversity)
    # Coverage with precision to spare (IGN's 0.75 against the DCGAN's 0.6): a
    # mode-seeking term λ_div / (r + ε) on the inner f (--lambda_diversity;
    # distances.mode_seeking_ratio) under the default's γ 0.8, λ_rec 40 and --lr_decay
    # 0.5, width 32, seed 0, 3,000 steps, scored at τ 1 beside
    # ign_control0.8_rec40_lr5e-4_decay0.5_seed0_standing64 (λ_div 0); DIVS names them.
    UNDER="--lr_decay 0.5" sweep_default lambda_diversity lr5e-4_decay0.5_div ${DIVS:-1 4}
    ;;
  sweep)
    # Any flag FLAG over VALUES under the default's γ 0.8 and λ_rec 40 and the flags
    # in UNDER (default --lr_decay 0.5, the current default), width 32, seed SEED
    # (default 0), 3,000 steps, scored at τ 1; TAG (default lr5e-4_decay0.5_<FLAG>)
    # names the rows.
    UNDER=${UNDER:-"--lr_decay 0.5"} sweep_default "${FLAG:?set FLAG}" \
      "${TAG:-lr5e-4_decay0.5_$FLAG}" ${VALUES:?set VALUES}
    ;;
  temperature)
    # The sampling temperature τ (evaluate.py --temperature; f trained at τ = 1):
    # the confirm rows of TAG (both seeds, 3k and 6k) scored again at each of TEMPS
    # (default 1.1), into eval24_t<τ>.
    TAG=${TAG:?"set TAG to the confirm rows' name"}
    for temp in ${TEMPS:-1.1}; do
      mkdir -p "$R/eval24_t$temp"
      cp -n "$R"/eval24/gan_w64_*.json "$R/eval24_t$temp/"  # the DCGAN rows, for the table
      for run_name in ign_"${TAG}"_w64_{3000,6000}_seed{0,1}; do
        out="$R/eval24_t$temp/$run_name.json"
        [ -f "$R/$run_name/model.keras" ] || continue  # e.g. a SHORT=1 confirm's 6k rows
        [ -f "$out" ] || nice -n 10 $PY evaluate.py --run_dir "$R/$run_name" \
          --dataset fashion_mnist --reference validation $EVAL_FLAGS ${CHOSEN_EVAL:-} \
          --temperature "$temp" --output "$out"
      done
    done
    ;;
  recon64)
    # The recon screen's λ_rec at width 64 (the script's width), seed 0, 3,000 steps,
    # beside `confirm`'s γ 0.8 row: REC (default 40).
    EVAL_FLAGS="$EVAL_FLAGS --standing_stats 64" \
      run "ign_control0.8_rec${REC:-40}_w64_3000_seed0" 3000 0 $IGN $BEFORE --width 64 \
        --tight_target 0.8 --lambda_rec "${REC:-40}"
    ;;
  paper)
    # The paper's recipe (Gaussian noise, Adam 1e-4, no average, λ_tight 2.5
    # constant, no standing statistics) at width 64, seed 0, 3,000 steps: the
    # sample grid beside the default's.
    run ign_paper_w64_3000_seed0 3000 0 $IGN --width 64 --noise gaussian --lr 1e-4 \
      --ema 0 --tight_target none --lambda_tight 2.5 --lambda_rec 20 --standing_stats 0 \
      --lr_decay 0 --temperature 1
    ;;
  confirm)
    # CHOSEN (the winner's training flags), CHOSEN_EVAL (its evaluate.py flags, e.g.
    # --standing_stats 64), TAG (its name): width 64, seeds 0 and 1, 3,000 steps and
    # the same runs continued to 6,000, the DCGAN beside it; PAPER=1 adds the
    # former defaults ($BEFORE: λ_tight 2.5, no standing statistics) at seed 0.
    CHOSEN=${CHOSEN:?"set CHOSEN to the winning flags"}
    TAG=${TAG:?"set TAG to a name for the winner"}
    # SEEDS (default "0 1") names the seeds; SHORT=1 stops at 3,000 steps. A CHOSEN
    # with --lr_decay (a schedule over --steps) trains its 6,000-step rows from the start.
    for seed in ${SEEDS:-0 1}; do
      run "gan_w64_3000_seed$seed" 3000 $seed $GAN --width 64
      EVAL_FLAGS="$EVAL_FLAGS ${CHOSEN_EVAL:-}" \
        run "ign_${TAG}_w64_3000_seed$seed" 3000 $seed $IGN $BEFORE --width 64 $CHOSEN
      [ "${SHORT:-0}" = 1 ] && continue
      extend_and_score "gan_w64_3000_seed$seed" "gan_w64_6000_seed$seed" 6000 $seed \
        $GAN --width 64
      if [[ " $CHOSEN " == *" --lr_decay "* ]]; then
        EVAL_FLAGS="$EVAL_FLAGS ${CHOSEN_EVAL:-}" \
          run "ign_${TAG}_w64_6000_seed$seed" 6000 $seed $IGN $BEFORE --width 64 $CHOSEN
      else
        EVAL_FLAGS="$EVAL_FLAGS ${CHOSEN_EVAL:-}" extend_and_score \
          "ign_${TAG}_w64_3000_seed$seed" "ign_${TAG}_w64_6000_seed$seed" 6000 $seed \
          $IGN $BEFORE --width 64 $CHOSEN
      fi
    done
    if [ "${PAPER:-0}" = 1 ]; then
      run ign_w64_3000_seed0 3000 0 $IGN $BEFORE --width 64
      extend_and_score ign_w64_3000_seed0 ign_w64_6000_seed0 6000 0 $IGN $BEFORE --width 64
    fi
    ;;
  long)
    # CHOSEN and CHOSEN_EVAL (TAG) at train_ign.py's own length, STEPS (default 10,000),
    # width 64, SEEDS (default 0): trained from the start (a --lr_decay schedule is one
    # over --steps), beside the DCGAN's 6,000-step run continued to STEPS.
    CHOSEN=${CHOSEN:?"set CHOSEN to the setting's flags"}
    TAG=${TAG:?"set TAG to the setting's name"}
    steps=${STEPS:-10000}
    for seed in ${SEEDS:-0}; do
      extend_and_score "gan_w64_6000_seed$seed" "gan_w64_${steps}_seed$seed" "$steps" $seed \
        $GAN --width 64
      EVAL_FLAGS="$EVAL_FLAGS ${CHOSEN_EVAL:-}" \
        run "ign_${TAG}_w64_${steps}_seed$seed" "$steps" $seed $IGN $BEFORE --width 64 $CHOSEN
    done
    ;;
  test)
    # Once, for the chosen setting (TAG, its evaluate.py flags CHOSEN_EVAL): the
    # confirm rows of TAG and the DCGAN rows beside them scored on the test split.
    TAG=${TAG:?"set TAG to the chosen setting's name"}
    mkdir -p "$R/eval24_test"
    for run_name in {gan,ign_"${TAG}"}_w64_{3000,6000}_seed{0,1}; do
      flags=""
      case $run_name in ign_*) flags="${CHOSEN_EVAL:-}";; esac
      [ -f "$R/eval24_test/$run_name.json" ] || nice -n 10 $PY evaluate.py \
        --run_dir "$R/$run_name" --dataset fashion_mnist --reference test \
        --probe_examples 0 $flags --output "$R/eval24_test/$run_name.json"
    done
    $PY docs/ign/screen_table.py "$R/eval24_test"
    ;;
esac
