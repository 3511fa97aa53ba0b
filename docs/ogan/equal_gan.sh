#!/usr/bin/env bash
# Issue 26: O-GAN against the single-loss GAN with the same nets, data and steps,
# scored on the validation split (docs/sampling/run.sh's split of Fashion-MNIST:
# train[:50000] trained on, train[50000:] scored against; only the `test` stage
# touches the test split, once). Every row: 32 px, width 32, batch 64, bf16, lr 2e-4.
#
#   bash docs/ogan/equal_gan.sh screen     # seed 0, 3,000 steps: which setting
#   CHOSEN=... SAME=... TAG=... bash docs/ogan/equal_gan.sh confirm
#                                          # the chosen pair: 2 seeds, 3,000 and 6,000 steps
#   TAG=... bash docs/ogan/equal_gan.sh test  # once, the chosen pair on the test split
#                                          # (OGAN_TAG names the O-GAN runs when they differ)
#   bash docs/ogan/equal_gan.sh encoder    # the default with an encoder-only correlation
#   bash docs/ogan/equal_gan.sh selfmod    # the self-modulated generator, O-GAN and twin GAN
#   bash docs/ogan/equal_gan.sh selfmod_corr  # selfmod with λ 1 and 2
#   LAMBDA=1.0 bash docs/ogan/equal_gan.sh selfmod_confirm  # its pair: 2 seeds, 3k and 6k
#   bash docs/ogan/equal_gan.sh recon      # the default with --recon_weight 1 / 4 (RECONS=...;
#                                          # E_WEIGHT=... adds --encoder_recon_weight)
#   WEIGHT=16 bash docs/ogan/equal_gan.sh recon_confirm  # its row and the twin GAN's:
#                                          # 2 seeds, 3k and 6k (KIND=encoder: encoder_recon's)
#   bash docs/ogan/equal_gan.sh recon_selfmod  # --recon_weight 16 with the selfmod λ 1 setting
#   bash docs/ogan/equal_gan.sh encoder_recon  # the default with --encoder_recon_weight (E_RECONS=...)
#   bash docs/ogan/equal_gan.sh recon_pool  # --recon_weight WEIGHT at 1/p resolution (POOLS=...)
#   bash docs/ogan/equal_gan.sh real_corr  # the default with --real_corr_weight (REALS=...)
#   python docs/ogan/equal_gan_table.py     # the table
#
# The single-loss GAN (ns, no penalty) and O-GAN (wgan + GAN-QP, λ 1) rows at
# 3,000 steps are docs/sampling/run.sh's full-data runs, reused by name.
set -euo pipefail
source docs/research_run.sh
COMMON="--image_size 32 --channels 1 --width 32 --batch_size 64 --mixed_precision bf16
        --sample_every 0 --ckpt_every 1000 --lr 2e-4 --dataset $DATA"
GAN="train_gan.py --objective ns --penalty none"
OGAN="train_ogan.py --probe_examples 0"

# Scores go to $R/eval26 (EVAL) with evaluate.py flags EVAL_FLAGS; e.g. EVAL=eval26_two
# EVAL_FLAGS="--standing_stats 64" scores every row as a --standing_stats 64 export.
EVAL=${EVAL:-eval26} EVAL_FLAGS=${EVAL_FLAGS:-}
run() { train_and_score "$@"; }
# run_both_lengths <base> <seed> <script and flags...>: <base>_seed<seed> at 3,000 steps,
# continued to 6,000 as <base>_6k_seed<seed> (extend_and_score: the same run, resumed).
run_both_lengths() {
  local base=$1 seed=$2; shift 2
  run "${base}_seed$seed" 3000 "$seed" "$@"
  extend_and_score "${base}_seed$seed" "${base}_6k_seed$seed" 6000 "$seed" "$@"
}

case "${1:-screen}" in
  screen)
    # train_ogan.py's defaults when the screen ran (the original loss, z 128, no
    # average), pinned; a row's own flags come later and win.
    THEN="--objective wgan --penalty qp --z_dim 128 --ema 0"
    run gan_50000_off_seed0 3000 0 $GAN
    run ogan_50000_off_seed0 3000 0 $OGAN $THEN --corr_weight 1.0
    run ogan_ns_l1_seed0 3000 0 $OGAN $THEN --objective ns --penalty none --corr_weight 1.0
    run ogan_ns_l0.5_seed0 3000 0 $OGAN $THEN --objective ns --penalty none --corr_weight 0.5
    run ogan_ns_l2_seed0 3000 0 $OGAN $THEN --objective ns --penalty none --corr_weight 2.0
    run ogan_ns_l1_ema_seed0 3000 0 $OGAN $THEN --objective ns --penalty none --corr_weight 1.0 \
      --ema 0.999
    run gan_ema_seed0 3000 0 $GAN --ema 0.999
    run ogan_ns_l1_z256_seed0 3000 0 $OGAN $THEN --objective ns --penalty none --corr_weight 1.0 \
      --z_dim 256
    ;;
  encoder)
    # The default (the confirmation's winner) with the correlation once more for the
    # encoder only (--encoder_corr_weight λ_E), seed 0, 3,000 steps, beside
    # ogan_best_seed0: does E invert G better (reconstruction, probe) at no FID cost?
    for weight in 0.5 2.0; do
      run "ogan_best_e${weight}_seed0" 3000 0 $OGAN --objective ns --penalty none \
        --corr_weight 0.5 --z_dim 256 --ema 0.999 --encoder_corr_weight $weight
    done
    ;;
  recon)
    # The default (ogan_best_seed0's flags, pinned) with the reconstruction asked in
    # training, λ_x·mean|G(0.9·N(E(x))) − x| (--recon_weight; RECONS names a subset),
    # seed 0, 3,000 steps, beside ogan_best_seed0 and its twin gan_best_seed0: can
    # reconstructions keep the class (≥ 0.85) at no FID cost? With E_WEIGHT, each row
    # adds --encoder_recon_weight E_WEIGHT (named ..._erecon<E_WEIGHT>).
    extra=() tag=""
    [ -n "${E_WEIGHT:-}" ] && extra=(--encoder_recon_weight "$E_WEIGHT") tag="_erecon$E_WEIGHT"
    for weight in ${RECONS:-1 4}; do
      run "ogan_best_recon${weight}${tag}_seed0" 3000 0 $OGAN --objective ns --penalty none \
        --corr_weight 0.5 --z_dim 256 --ema 0.999 --recon_weight $weight "${extra[@]}"
    done
    ;;
  real_corr)
    # The default (ogan_best_seed0's flags, pinned) with the correlation once more on the
    # codes of the real batch, −λ_r·ρ(z_x, E(G(z_x))), z_x = sg(0.9·N(E(x)))
    # (--real_corr_weight, REALS names the weights), seed 0, 3,000 steps, beside
    # ogan_best_seed0 and its twin gan_best_seed0: no pixel compared — do
    # reconstructions keep the class at no cost in samples?
    for weight in ${REALS:-1 4}; do
      run "ogan_best_real${weight}_seed0" 3000 0 $OGAN --objective ns --penalty none \
        --corr_weight 0.5 --z_dim 256 --ema 0.999 --real_corr_weight $weight
    done
    ;;
  recon_pool)
    # --recon_weight (WEIGHT, default 16) with the reconstruction compared at 1/p of the
    # resolution (--recon_pool p in POOLS, default 4 2: 8×8 and 16×16), seed 0, 3,000
    # steps, beside ogan_best_recon16_seed0 (p 1): does leaving the detail to the
    # adversarial terms keep the precision the pixel term costs?
    w=${WEIGHT:-16}
    for p in ${POOLS:-4 2}; do
      run "ogan_best_recon${w}_pool${p}_seed0" 3000 0 $OGAN --objective ns --penalty none \
        --corr_weight 0.5 --z_dim 256 --ema 0.999 --recon_weight $w --recon_pool $p
    done
    ;;
  recon_confirm)
    # A recon screen's row at λ_x = WEIGHT (default 16) — or, with KIND=encoder, the
    # encoder_recon screen's row at λ_xE = WEIGHT — and the twin GAN (gan_best_*: same
    # nets, z 256, --ema 0.999): seeds 0 and 1 at 3,000 steps, each continued to 6,000
    # (extend_and_score), beside the default's confirmation (ogan_best_*).
    w=${WEIGHT:-16}
    case "${KIND:-both}" in
      both) flag=recon_weight tag=recon ;;
      encoder) flag=encoder_recon_weight tag=erecon ;;
      *) echo "KIND is both or encoder"; exit 2 ;;
    esac
    FLAGS="--objective ns --penalty none --corr_weight 0.5 --z_dim 256 --ema 0.999 --$flag $w"
    for seed in 0 1; do
      run_both_lengths gan_best $seed $GAN --z_dim 256 --ema 0.999
      run_both_lengths "ogan_best_${tag}${w}" $seed $OGAN $FLAGS
    done
    ;;
  encoder_recon)
    # The default (ogan_best_seed0's flags, pinned) with the reconstruction asked of the
    # encoder only, λ_xE·mean|G′(0.9·N(E(x))) − x| with G′ frozen (--encoder_recon_weight;
    # E_RECONS names the weights), seed 0, 3,000 steps, beside ogan_best_seed0 and its twin
    # gan_best_seed0: E learns to invert G on real images while G is not pulled towards
    # them — does that keep the class without the precision --recon_weight costs?
    for weight in ${E_RECONS:-4 16}; do
      run "ogan_best_erecon${weight}_seed0" 3000 0 $OGAN --objective ns --penalty none \
        --corr_weight 0.5 --z_dim 256 --ema 0.999 --encoder_recon_weight $weight
    done
    ;;
  recon_selfmod)
    # --recon_weight (WEIGHT, default 16) on the best sampler, --generator selfmod
    # --corr_weight 1 (ogan_selfmod_k5_l1.0_seed0, twin gan_selfmod_k5_seed0), seed 0,
    # 3,000 steps: does the selfmod generator keep the precision the term costs?
    w=${WEIGHT:-16}
    run "ogan_selfmod_k5_l1.0_recon${w}_seed0" 3000 0 $OGAN --generator selfmod \
      --corr_weight 1.0 --recon_weight $w
    ;;
  selfmod)
    # The later O-GAN code's self-modulated BatchNorm generator (--generator selfmod),
    # 5×5 and 4×4 kernels, in the default O-GAN and in its twin GAN (same nets, z 256,
    # --ema 0.999), seed 0, 3,000 steps, beside ogan_best_seed0 / gan_best_seed0:
    # does z steering every BatchNorm make E(G(z)) invert better (ρ, reconstruction)?
    for k in ${KERNELS:-5 4}; do
      run "gan_selfmod_k${k}_seed0" 3000 0 $GAN --z_dim 256 --ema 0.999 --generator selfmod \
        --kernel_size $k
      run "ogan_selfmod_k${k}_seed0" 3000 0 $OGAN --generator selfmod --kernel_size $k
    done
    ;;
  selfmod_corr)
    # The selfmod row (5×5) with a stronger correlation, λ in LAMBDAS (default 1.0 2.0),
    # beside ogan_selfmod_k5_seed0 (λ 0.5) and its twin gan_selfmod_k5_seed0: does a
    # larger λ buy back the reconstructions the self-modulated generator lost?
    for weight in ${LAMBDAS:-1.0 2.0}; do
      run "ogan_selfmod_k5_l${weight}_seed0" 3000 0 $OGAN --generator selfmod \
        --corr_weight $weight
    done
    ;;
  selfmod_confirm)
    # The selfmod screen's row at λ = LAMBDA (default 1.0) and its twin GAN: seeds 0
    # and 1 at 3,000 steps, each continued to 6,000 (extend_and_score: the same run,
    # resumed), beside the default's confirmation (ogan_best_*, gan_best_*).
    l=${LAMBDA:-1.0}
    for seed in 0 1; do
      run_both_lengths gan_selfmod_k5 $seed $GAN --z_dim 256 --ema 0.999 \
        --generator selfmod --kernel_size 5
      run_both_lengths "ogan_selfmod_k5_l${l}" $seed $OGAN --generator selfmod --corr_weight $l
    done
    ;;
  confirm)
    # The screen's winner against the GAN given the same generator input and average:
    # CHOSEN = the O-GAN flags, SAME = the flags of them the GAN shares (z size, --ema),
    # TAG = the pair's name: ogan_<TAG>_* and gan_<TAG>_*. Both seeds, 3,000 and 6,000 steps.
    CHOSEN=${CHOSEN:?"set CHOSEN to the winning O-GAN flags"}
    SAME=${SAME:-}
    TAG=${TAG:?"set TAG to a name for the pair"}
    for seed in 0 1; do
      run "gan_${TAG}_seed$seed" 3000 $seed $GAN $SAME
      run "ogan_${TAG}_seed$seed" 3000 $seed $OGAN $CHOSEN
      run "gan_${TAG}_6k_seed$seed" 6000 $seed $GAN $SAME
      run "ogan_${TAG}_6k_seed$seed" 6000 $seed $OGAN $CHOSEN
    done
    ;;
  test)
    # Once, for the chosen pair: every run of `confirm` (TAG: gan_TAG_*, ogan_TAG_*) or
    # of recon_confirm (TAG=best OGAN_TAG=best_recon12: gan_best_*, ogan_best_recon12_*)
    # scored on the test split, with EVAL_FLAGS, into $R/${EVAL}_test.
    TAG=${TAG:?"set TAG to the chosen pair's name"}
    OGAN_TAG=${OGAN_TAG:-$TAG}
    out="$R/${EVAL}_test"
    mkdir -p "$out"
    for name in {gan_"$TAG",ogan_"$OGAN_TAG"}_seed{0,1} {gan_"$TAG",ogan_"$OGAN_TAG"}_6k_seed{0,1}; do
      [ -f "$out/$name.json" ] || nice -n 10 $PY evaluate.py --run_dir "$R/$name" \
        --dataset fashion_mnist --reference test $EVAL_FLAGS --output "$out/$name.json"
    done
    $PY docs/ogan/equal_gan_table.py "$out"
    ;;
esac
