"""Trains O-GAN (Su, arXiv 1903.01931): a GAN whose critic avg(E(x)) is an encoder.

    python train_ogan.py --out_dir runs/ogan_fmnist                # Fashion-MNIST, 32 px
    python train_ogan.py --dataset celeba_hq --image_size 128 --generator selfmod \\
        --kernel_size 4 --out_dir runs/ogan_celebahq
    python train_ogan.py --dataset /path/to/images --out_dir runs/ogan_folder

The nets are the original code's: DCGAN with 5×5 kernels, one RMSprop (ρ = 0.99),
batch 64, λ = 0.5 (`--kernel_size 4 --generator selfmod` is the later code's
variant: 4×4 kernels, self-modulated BatchNorm). The library's defaults
(ogan.OGANSettings, SingleLossGAN.default_optimizer) keep the original loss; this
script's differ in seven, chosen on a validation split (docs/ogan/EQUAL_GAN.md):
the GAN's non-saturating loss without a penalty (`--objective ns --penalty none`;
the original's wgan + GAN-QP scored 1.27× the GAN's FID), z_dim 256 (the encoder's
linear probe then clears raw pixels by ~3 points), lr 2e-4, a moving average of
every weight (`--ema 0.999`), the reconstruction asked in training
(`--recon_weight 12`: λ_x·mean|G(0.9·N(E(x))) − x|; reconstructions then keep the
class of x 86–88 % of the time instead of 73 %) and an export with two sets of G's
BatchNorm statistics (`--standing_stats 64`: noise for samples, codes of training
images for reconstructions; without it the reconstruction term costs precision).
The original recipe is `--objective wgan --penalty qp --z_dim 128 --lr 1e-4 --ema 0
--recon_weight 0 --standing_stats 0`; a run started before these defaults resumes
with the flags it was started with (a refused resume names them).

Besides the driver's sample grids, every --sample_every steps the run folder gets
the write-up's other two figures: reconstructions/<step>.png (real | G(0.9·N(E(x)))
pairs) and interpolations/<step>.png (real x1, the path in N(E(x)), real x2). At
the end, metrics.json holds ρ(z, E(G(z))) on fresh noise and, for labelled data,
the linear-probe accuracy of E(x) against that of raw pixels.
"""

import quiet_start  # noqa: F401  (first: TensorFlow starts without its start-up lines)

import dataclasses
import os

from absl import flags
import numpy as np

from ogan_ign import cli, data, evaluation, images, networks, one_loss
from ogan_ign.ogan import OGAN, OGANSettings
from ogan_ign.settings import hparam, subset

@dataclasses.dataclass(frozen=True)
class OGANRun(OGANSettings, networks.DCGANChoice):
    z_dim: int = hparam(256, "noise size = the encoder's outputs (128 in the original code)")
    width: int = hparam(64, "channels of the first encoder conv (doubling per stage)")


# The script's own choices (the module docstring says why).
cli.define_common_flags(dataset="fashion_mnist", out_dir="runs/ogan", lr=2e-4, batch_size=64,
                        ema=0.999, standing_stats=64)
cli.define_settings_flags(OGANRun, objective="ns", penalty="none", recon_weight=12.0)
cli.define_settings_flags(evaluation.ScoreSettings, include=("probe_examples", "probe"))
FLAGS = flags.FLAGS

PAIRS_PER_ROW = 4    # reconstruction figure: 4 (real | reconstructed) pairs a row
INTERPOLATION_ROWS = 8
INTERPOLATION_STEPS = 8


def build_model(config, spec):
    hp = config.model
    encoder = networks.dcgan_encoder(spec.image_size, spec.channels, hp.z_dim, hp.width,
                                     hp.kernel_size)
    generator = networks.chosen_generator(hp, spec.image_size, spec.channels, hp.z_dim, hp.width)
    return OGAN(encoder=encoder, generator=generator, seed=config.seed,
                **subset(hp, OGANSettings))


def reconstruction_table(model, x):
    """Real | G(0.9·N(E(x))) pairs, PAIRS_PER_ROW a row: a (rows, 2·PAIRS_PER_ROW, H, W, C)
    table of the first len(x) − len(x) mod PAIRS_PER_ROW images (None when that is 0)."""
    n = len(x) - len(x) % PAIRS_PER_ROW
    if not n:
        return None
    pairs = images.side_by_side(x[:n], model.reconstruct(x[:n]))   # (n, 2, H, W, C)
    return pairs.reshape((n // PAIRS_PER_ROW, 2 * PAIRS_PER_ROW) + pairs.shape[2:])


def interpolation_table(model, x1, x2):
    """One row per pair: x1, INTERPOLATION_STEPS codes on the path in N(E(x)), x2."""
    path = np.asarray(model.interpolate(x1, x2, steps=INTERPOLATION_STEPS), np.float32)
    return np.concatenate([x1[:, None], path, x2[:, None]], axis=1)


def figures(model, run_dir, step, fixed):
    """The write-up's reconstruction and interpolation figures, on fixed real images."""
    x = np.asarray(fixed.x_real, np.float32)
    table = reconstruction_table(model, x)
    if table is not None:
        images.save_table(os.path.join(run_dir, "reconstructions", f"{step:08d}.png"), table)
    rows = min(INTERPOLATION_ROWS, len(x) // 2)
    if rows:
        table = interpolation_table(model, x[:rows], x[rows:2 * rows])
        images.save_table(os.path.join(run_dir, "interpolations", f"{step:08d}.png"), table)


def final_metrics(model, config, catalog=None):
    """ρ(z, E(G(z))) on fixed noise and, with labels, the linear probes of E(x), of E
    untrained and of pixels (evaluation.encoder_probes)."""
    z = model.make_noise(1000, config.seed, stream=one_loss.METRICS)
    metrics = {"corr_z": float(model.latent_correlation(z))}
    splits = FLAGS.probe_examples and evaluation.labelled_splits(
        config.dataset, config.data_dir, config.image_size, config.channels,
        train_limit=FLAGS.probe_examples, test_limit=FLAGS.probe_examples // 2,
        catalog=catalog)
    if splits:
        metrics.update(evaluation.encoder_probes(model, *splits, FLAGS.probe_examples,
                                                 FLAGS.probe, config.seed))
    return metrics


def main(argv):
    config = cli.main_config(argv, OGANRun)
    catalog = data.Catalog()  # the probe reads the data the run trained on: decoded once
    with cli.training_run(config, build_model, figures, catalog=catalog) as run:
        # The driver returns the model with its EMA weights in place, when EMA is on.
        with evaluation.announced(
                "final metrics: ρ(z, E(G(z))) on 1000 noise vectors"
                + (f", {FLAGS.probe} probes of E(x), of E untrained and of pixels on "
                   f"{FLAGS.probe_examples} training images" if FLAGS.probe_examples else "")):
            run.metrics = final_metrics(run.model, config, catalog)


if __name__ == "__main__":
    cli.run(main)
