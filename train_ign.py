"""Trains IGN, the Idempotent Generative Network (Shocher et al., arXiv 2311.01462),
as a single-loss GAN: one f, one tape, one Adam.

    python train_ign.py --dataset celeba_hq --image_size 64 --out_dir runs/ign_celebahq
    python train_ign.py --out_dir runs/ign_fmnist             # Fashion-MNIST, 32 px
    python train_ign.py --noise gaussian --lr 1e-4 --lr_decay 0 --ema 0 --tight_target none \
        --lambda_rec 20 --standing_stats 0 --temperature 1 --out_dir runs/ign_paper  # the paper's

The loss is `losses.IGNLoss`, f a DCGAN autoencoder. The library's defaults
(ign.IGNSettings, IGN.default_optimizer) are the paper's; this script's differ in
eight (why: docs/ign/RESULTS.md): Fourier-matched noise, Adam at 5e-4 falling linearly
to 0 over the second half of the run (`--lr_decay 0.5`), a moving average of every
weight (`--ema 0.999`) for samples and export, λ_tight under an equilibrium control
(`--tight_target 0.8`: from the paper's 2.5, raised while f reconstructs its samples
better than 0.8 times the real images), λ_rec 40 (the paper's 20 twice: recall and
held-out reconstruction), an export with standing statistics (`--standing_stats 64`: a
sampling copy of f with statistics of noise, f itself projecting with statistics of
training images), and samples drawn at `--temperature 1.05`: noise spread 1.05 times
about its mean for grids, export and evaluate.py, training staying at τ = 1.
Figures besides the sample grids: idempotence/<step>.png (z | f(z) | f(f(z)) | f(f(f(z))))
and projections/<step>.png (original | corrupted | f(corrupted)).
"""

import quiet_start  # noqa: F401  (first: TensorFlow starts without its start-up lines)

import dataclasses
import os

from absl import flags
import numpy as np

from ogan_ign import cli, data, evaluation, images, ign, networks, one_loss, training
from ogan_ign.settings import hparam, subset


@dataclasses.dataclass(frozen=True)
class IGNRun(ign.IGNSettings):
    fourier_examples: int = hparam(10000, "training images for the Fourier statistics")
    width: int = hparam(64, "channels of f's first conv (doubling per stage)")
    latent: int = hparam(512, "size of f's code")
    norm: str = hparam("batch", "f's normalisation: batch (the paper's BatchNorm) or group "
                       "(GroupNorm, no moving statistics)", choices=networks.NORMS)
    code: str = hparam("dense", "f's code: dense (one latent-d vector, the paper's) or spatial "
                       "(the smallest feature map, latent / its area channels)",
                       choices=networks.CODES)
    blocks: int = hparam(0, "residual blocks (two 3×3 convs) after each of f's decoder "
                         "upsamplings but the last: capacity for texture; 0 = the paper's f",
                         minimum=0)


cli.define_common_flags(dataset="fashion_mnist", out_dir="runs/ign", lr=5e-4, lr_decay=0.5,
                        ema=0.999, standing_stats=64)
cli.define_settings_flags(IGNRun, noise="fourier", tight_target=0.8, lambda_rec=40.0,
                          temperature=1.05)
flags.DEFINE_integer("coverage_samples", 1000, "samples classified at the end (labelled data "
                     "only); 0 = skip")
flags.DEFINE_integer("coverage_every", 0, "steps between class-coverage checks during "
                     "training, into coverage.jsonl (labelled data only); 0 = only at the end")
flags.DEFINE_string("classifier", None, "cached coverage classifier (.keras); default "
                    "~/.cache/ogan_ign/classifier_<dataset>_<size>px_<channels>c.keras")
FLAGS = flags.FLAGS

ROWS, APPLICATIONS = 8, 3      # figure rows; f applied 1, 2, 3 times
NOISE_STD, BLOCK = 0.4, 0.375  # corruptions: noise std, masked block side (share of the image)


def build_model(config, spec):
    hp = config.model
    f = networks.dcgan_autoencoder(spec.image_size, spec.channels, hp.latent, hp.width,
                                   norm=hp.norm, code=hp.code, blocks=hp.blocks)
    model = ign.IGN(f, seed=config.seed, **subset(hp, ign.IGNSettings))
    if hp.noise == "fourier":
        # Once per run, from the training split; a resumed run restores the same
        # statistics from its checkpoint.
        with evaluation.announced(f"Fourier noise statistics of {hp.fourier_examples} "
                                  "training images"):
            model.adapt(data.load_arrays(spec, limit=hp.fourier_examples)[0])
    return model


def corruptions(x, seed):
    """Corrupted copies of x: added noise, grayscale (3 channels), a masked block."""
    rng = np.random.default_rng(seed)
    out = [np.clip(x + NOISE_STD * rng.standard_normal(x.shape), -1, 1)]
    if x.shape[-1] == 3:
        out.append(np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1))
    side, block = x.shape[1], int(round(BLOCK * x.shape[1]))
    masked = x.copy()
    for i in range(len(x)):
        top, left = rng.integers(0, side - block + 1, size=2)
        masked[i, top:top + block, left:left + block] = 0.0  # mid-gray
    out.append(masked)
    return [c.astype(np.float32) for c in out]


def idempotence_table(model, z):
    """One row per noise: z | f(z) | f(f(z)) | …, f applied 1 to APPLICATIONS times
    (the sampler's f(z), then the refiner's f(f(z)), …); z clipped to [−1, 1]."""
    applied = [model.generate(z)]
    while len(applied) < APPLICATIONS:
        applied.append(model.refine(applied[-1]))
    return images.side_by_side(np.clip(one_loss.float32(z), -1, 1), *applied)


def figures(model, run_dir, step, fixed):
    """f applied 1–3 times to fixed noise; projections of corrupted real images."""
    z = model.make_noise(ROWS, fixed.seed, stream=one_loss.FIGURES)
    images.save_table(os.path.join(run_dir, "idempotence", f"{step:08d}.png"),
                      idempotence_table(model, z))
    x = np.asarray(fixed.x_real[:ROWS], np.float32)
    columns = [x]
    for corrupted in corruptions(x, fixed.seed):
        columns += [corrupted, model.project(corrupted)]
    images.save_table(os.path.join(run_dir, "projections", f"{step:08d}.png"),
                      images.side_by_side(*columns))


def final_metrics(model, config, classifier, accuracy):
    """Idempotence gaps on fixed noise and, with a classifier, class coverage."""
    with evaluation.announced("final metrics: idempotence gaps on 1000 noise images"):
        z = one_loss.float32(model.make_noise(1000, config.seed,
                                              stream=one_loss.METRICS)).numpy()
        f_z = evaluation.batched(model.generate, z)  # the sampler's f(z)
        metrics = {"gap_ff_z": evaluation.rms_distance(evaluation.batched(model.refine, f_z),
                                                       f_z),
                   "gap_f_z": evaluation.rms_distance(f_z, z)}
    if classifier is not None and FLAGS.coverage_samples:
        print(f"final metrics: class coverage of {FLAGS.coverage_samples} samples", flush=True)
        x = model.generate(FLAGS.coverage_samples, seed=config.seed + 1).numpy()
        coverage = evaluation.class_coverage(classifier, x)
        metrics.update(classifier_test_accuracy=accuracy, coverage_samples=FLAGS.coverage_samples,
                       **{f"coverage_{k}": v for k, v in coverage.items()})
    return metrics


def main(argv):
    config = cli.main_config(argv, IGNRun)
    classifier, accuracy, callbacks = None, None, []
    catalog = data.Catalog()  # one decode of the data for the classifier and the run
    if FLAGS.coverage_samples and FLAGS.coverage_every:  # needed during training: made first
        with cli.user_errors():
            training.validate(config)
            classifier, accuracy = evaluation.run_classifier(config, FLAGS.classifier, catalog)
        if classifier is not None:
            callbacks.append(evaluation.CoverageCallback(
                classifier, FLAGS.coverage_every, FLAGS.coverage_samples, config.seed + 1,
                os.path.join(config.out_dir, "coverage.jsonl")))
    with cli.training_run(config, build_model, figures, callbacks, catalog) as run:
        if FLAGS.coverage_samples and classifier is None:
            classifier, accuracy = evaluation.run_classifier(config, FLAGS.classifier, catalog)
        run.metrics = final_metrics(run.model, config, classifier, accuracy)


if __name__ == "__main__":
    cli.run(main)
