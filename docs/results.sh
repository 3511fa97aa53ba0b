#!/usr/bin/env bash
# Trains (unless the run folder already holds model.keras) and evaluates every row
# of docs/RESULTS.md, then prints the table. About 2 CPU-hours on 2 cores.
#
#   bash docs/results.sh            # from the repository root
#
# Run folders default to runs/results/<name>; the O-GAN and IGN rows of
# docs/RESULTS.md were trained by their engineers in /tmp/ogan_runs/* and
# /tmp/ign_runs/* with the same commands (see docs/ogan/RESULTS.md, docs/ign/RESULTS.md).
set -euo pipefail
export PYTHONPATH=.
PY=${PY:-.venv/bin/python}
R=${RESULTS:-runs/results}
# float32 unless a row asks for bf16 (the scripts' default, auto, is bf16 on CPUs
# with AVX512-BF16, like this one).
COMMON="--dataset fashion_mnist --image_size 32 --width 32 --batch_size 64 --steps 3000 --mixed_precision off"

# The defaults of the scripts when these rows ran, pinned so that a row means what
# it meant after the scripts' defaults moved on (a row's own flags come later and win).
GAN_THEN="--objective wgan --penalty qp --lr 1e-4"
OGAN_THEN="--objective wgan --penalty qp --z_dim 128 --lr 1e-4 --ema 0"
IGN_THEN="--tight_target none --lambda_rec 20 --standing_stats 0 --lr_decay 0 --temperature 1"

train() {  # train <script> <name> <flags...>
  local script=$1 name=$2; shift 2
  [ -f "$R/$name/model.keras" ] || nice -n 10 $PY "$script" $COMMON --out_dir "$R/$name" "$@"
}

train train_gan.py gan_wgan_qp $GAN_THEN
train train_gan.py gan_wgan_qp_lr2e-4 $GAN_THEN --lr 2e-4
train train_gan.py gan_ns_lr2e-4 $GAN_THEN --lr 2e-4 --objective ns --penalty none
train train_gan.py gan_ns_lr2e-4_seed1 $GAN_THEN --lr 2e-4 --objective ns --penalty none --seed 1
train train_ogan.py ogan_original $OGAN_THEN
train train_ogan.py ogan_lr2e-4_corr1 $OGAN_THEN --lr 2e-4 --corr_weight 1.0
train train_ogan.py ogan_lr2e-4_corr1_seed1 $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --seed 1
train train_ogan.py ogan_lr2e-4_corr1_z256 $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --z_dim 256
train train_ogan.py ogan_lr2e-4_corr1_z256_seed1 $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --z_dim 256 --seed 1
train train_ogan.py ogan_lr2e-4_corr1_z256_6k $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --z_dim 256 --steps 6000
# These rows predate train_ign.py's lr 5e-4 / --ema 0.999 defaults: the paper's lr, no EMA.
train train_ign.py ign_fourier $IGN_THEN --noise fourier --lr 1e-4 --ema 0
train train_ign.py ign_literal $IGN_THEN --noise gaussian --lr 1e-4 --ema 0
train train_ign.py ign_defaults $IGN_THEN
train train_ign.py ign_defaults_seed1 $IGN_THEN --seed 1
# bf16 against float32: the same settings with --mixed_precision bf16.
train train_gan.py gan_ns_lr2e-4_bf16 $GAN_THEN --lr 2e-4 --objective ns --penalty none --mixed_precision bf16
train train_ogan.py ogan_lr2e-4_corr1_bf16 $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --mixed_precision bf16
train train_ogan.py ogan_lr2e-4_corr1_bf16_seed1 $OGAN_THEN --lr 2e-4 --corr_weight 1.0 --seed 1 \
  --mixed_precision bf16
train train_ign.py ign_fourier_bf16 $IGN_THEN --noise fourier --lr 1e-4 --ema 0 --mixed_precision bf16
[ -f "$R/dcgan/generator.keras" ] || \
  nice -n 10 $PY docs/ogan/dcgan_baseline.py --width 32 --steps 3000 --out_dir "$R/dcgan"
[ -f "$R/dcgan_seed1/generator.keras" ] || nice -n 10 $PY docs/ogan/dcgan_baseline.py \
  --width 32 --steps 3000 --seed 1 --out_dir "$R/dcgan_seed1"

$PY evaluate.py --floor --dataset fashion_mnist --image_size 32 --output "$R/floor.json"
for name in dcgan dcgan_seed1; do
  $PY evaluate.py --model "$R/$name/generator.keras" --dataset fashion_mnist --image_size 32 \
    --output "$R/$name.json"
done
for name in gan_wgan_qp gan_wgan_qp_lr2e-4 gan_ns_lr2e-4 gan_ns_lr2e-4_seed1 \
            ogan_original ogan_lr2e-4_corr1 ogan_lr2e-4_corr1_seed1 ogan_lr2e-4_corr1_z256 \
            ogan_lr2e-4_corr1_z256_seed1 ogan_lr2e-4_corr1_z256_6k ign_fourier ign_literal ign_defaults ign_defaults_seed1 gan_ns_lr2e-4_bf16 \
            ogan_lr2e-4_corr1_bf16 ogan_lr2e-4_corr1_bf16_seed1 ign_fourier_bf16; do
  $PY evaluate.py --run_dir "$R/$name" --output "$R/$name.json"
done

# The DCGAN script prints its wall time ("3000 steps in N s") instead of writing it.
$PY docs/results_table.py "data floor (train vs test)=$R/floor.json" \
  "DCGAN, two optimizers=$R/dcgan.json:${DCGAN_SECONDS:-447}:3000" \
  "DCGAN, two optimizers, seed 1=$R/dcgan_seed1.json:${DCGAN1_SECONDS:-326}:3000" \
  "SingleLossGAN, wgan + QP, lr 1e-4=$R/gan_wgan_qp.json" \
  "SingleLossGAN, wgan + QP, lr 2e-4=$R/gan_wgan_qp_lr2e-4.json" \
  "SingleLossGAN, ns, no penalty, lr 2e-4=$R/gan_ns_lr2e-4.json" \
  "SingleLossGAN, ns, no penalty, lr 2e-4, seed 1=$R/gan_ns_lr2e-4_seed1.json" \
  "O-GAN, original recipe=$R/ogan_original.json" \
  "O-GAN, lr 2e-4, λ 1=$R/ogan_lr2e-4_corr1.json" \
  "O-GAN, lr 2e-4, λ 1, seed 1=$R/ogan_lr2e-4_corr1_seed1.json" \
  "O-GAN, lr 2e-4, λ 1, z_dim 256=$R/ogan_lr2e-4_corr1_z256.json" \
  "O-GAN, lr 2e-4, λ 1, z_dim 256, seed 1=$R/ogan_lr2e-4_corr1_z256_seed1.json" \
  "O-GAN, lr 2e-4, λ 1, z_dim 256, 6,000 steps=$R/ogan_lr2e-4_corr1_z256_6k.json" \
  "IGN, Fourier noise=$R/ign_fourier.json" \
  "IGN, Gaussian noise=$R/ign_literal.json" \
  "IGN, train_ign.py's defaults (lr 5e-4, --ema 0.999)=$R/ign_defaults.json" \
  "IGN, train_ign.py's defaults, seed 1=$R/ign_defaults_seed1.json"
echo
$PY docs/results_table.py \
  "SingleLossGAN, ns, lr 2e-4, bf16=$R/gan_ns_lr2e-4_bf16.json" \
  "O-GAN, lr 2e-4, λ 1, bf16=$R/ogan_lr2e-4_corr1_bf16.json" \
  "O-GAN, lr 2e-4, λ 1, bf16, seed 1=$R/ogan_lr2e-4_corr1_bf16_seed1.json" \
  "IGN, Fourier noise, bf16=$R/ign_fourier_bf16.json"
