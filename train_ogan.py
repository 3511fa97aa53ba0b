"""Trains O-GAN (Su, arXiv 1903.01931): a GAN whose critic avg(E(x)) is an encoder.

    python train_ogan.py --out_dir runs/ogan_fmnist                # Fashion-MNIST, 32 px
    python train_ogan.py --dataset celeba_hq --image_size 128 --generator selfmod \\
        --kernel_size 4 --out_dir runs/ogan_celebahq
    python train_ogan.py --dataset /path/to/images --out_dir runs/ogan_folder

The defaults are the original code's recipe: DCGAN nets with 5×5 kernels, z_dim
128, one RMSprop(1e-4, ρ = 0.99), batch 64, λ = 0.5. `--kernel_size 4 --generator
selfmod` is the later code's variant (4×4 kernels, self-modulated BatchNorm).

Besides the driver's sample grids, every --sample_every steps the run folder gets
the write-up's other two figures: reconstructions/<step>.png (real | G(0.9·N(E(x)))
pairs) and interpolations/<step>.png (real x1, the path in N(E(x)), real x2). At
the end, metrics.json holds ρ(z, E(G(z))) on fresh noise and, for labelled data,
the linear-probe accuracy of E(x) against that of raw pixels.
"""

import dataclasses
import os
import time

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf

from ogan_ign import data, evaluation, images, networks, training
from ogan_ign import flags as common
from ogan_ign.ogan import OGAN

common.define_common_flags(dataset="fashion_mnist", out_dir="runs/ogan", lr=1e-4, batch_size=64)
flags.DEFINE_integer("z_dim", 128, "noise size = the encoder's outputs")
flags.DEFINE_integer("width", 64, "channels of the first encoder conv (doubling per stage)")
flags.DEFINE_enum("kernel_size", "5", ["5", "4"], "5: the original code; 4: the later code")
flags.DEFINE_enum("generator", "dcgan", ["dcgan", "selfmod"],
                  "dcgan, or the later code's self-modulated BatchNorm generator")
flags.DEFINE_float("corr_weight", 0.5, "λ of −λ·ρ(z, E(G(z))); the 256 px variant used 1.0")
flags.DEFINE_float("recon_scale", 0.9, "reconstruction = G(recon_scale · N(E(x)))")
flags.DEFINE_integer("probe_examples", 10000, "training images for the final linear probe "
                     "(half as many test images); 0 = no probe")
FLAGS = flags.FLAGS

PAIRS_PER_ROW = 4    # reconstruction figure: 4 (real | reconstructed) pairs a row
INTERPOLATION_ROWS = 8
INTERPOLATION_STEPS = 8


@dataclasses.dataclass(frozen=True)
class OGANConfig:
    z_dim: int = 128
    width: int = 64
    kernel_size: int = 5
    generator: str = "dcgan"
    corr_weight: float = 0.5
    recon_scale: float = 0.9


def build_model(config, spec):
    hp = config.model
    encoder = networks.dcgan_encoder(spec.image_size, spec.channels, hp.z_dim, hp.width,
                                     hp.kernel_size)
    make_generator = {"dcgan": networks.dcgan_generator,
                      "selfmod": networks.selfmod_generator}[hp.generator]
    generator = make_generator(spec.image_size, spec.channels, hp.z_dim, hp.width,
                               hp.kernel_size)
    # No optimizer returned: the driver's default is the original RMSprop(rho=0.99).
    return OGAN(encoder=encoder, generator=generator, corr_weight=hp.corr_weight,
                recon_scale=hp.recon_scale, seed=config.seed)


def figures(model, run_dir, step, fixed):
    """The write-up's reconstruction and interpolation figures, on fixed real images."""
    x = np.asarray(fixed.x_real, np.float32)
    n = len(x) - len(x) % PAIRS_PER_ROW
    if n:
        pairs = images.side_by_side(x[:n], model.reconstruct(x[:n]))   # (n, 2, H, W, C)
        table = pairs.reshape((n // PAIRS_PER_ROW, 2 * PAIRS_PER_ROW) + pairs.shape[2:])
        images.save_table(os.path.join(run_dir, "reconstructions", f"{step:08d}.png"), table)
    rows = min(INTERPOLATION_ROWS, len(x) // 2)
    if rows:
        x1, x2 = x[:rows], x[rows:2 * rows]
        path = np.asarray(model.interpolate(x1, x2, steps=INTERPOLATION_STEPS), np.float32)
        table = np.concatenate([x1[:, None], path, x2[:, None]], axis=1)
        images.save_table(os.path.join(run_dir, "interpolations", f"{step:08d}.png"), table)


def final_metrics(model, config, probe_examples, seconds):
    """ρ(z, E(G(z))) on fresh noise and, with labels, linear probes of E(x) and pixels."""
    z = tf.random.stateless_normal((1000, model.z_dim), seed=[config.seed, 1])
    metrics = {"steps": int(model.optimizer.iterations), "wall_seconds": round(seconds, 1),
               "corr_z": float(model.latent_correlation(z))}
    if probe_examples:
        def split(name):
            return data.resolve(config.dataset, data_dir=config.data_dir, split=name,
                                image_size=config.image_size, channels=config.channels)

        train_spec = split("train")
        if train_spec.labelled:
            x_train, y_train = data.load_arrays(train_spec, limit=probe_examples)
            x_test, y_test = data.load_arrays(split("test"), limit=probe_examples // 2)
            encode = lambda x: model.encoder.predict(x, batch_size=500, verbose=0)
            metrics["probe_encoder"] = evaluation.linear_probe(
                encode(x_train), y_train, encode(x_test), y_test)
            metrics["probe_pixels"] = evaluation.linear_probe(x_train, y_train, x_test, y_test)
    return metrics


def main(argv):
    common.no_extra_args(argv)
    hp = OGANConfig(z_dim=FLAGS.z_dim, width=FLAGS.width, kernel_size=int(FLAGS.kernel_size),
                    generator=FLAGS.generator, corr_weight=FLAGS.corr_weight,
                    recon_scale=FLAGS.recon_scale)
    config = common.config_from_flags(model=hp)
    start = time.perf_counter()
    model = common.train_or_exit(config, build_model, figures=figures)
    # The driver returns the model with its EMA weights in place, when EMA is on.
    with common.user_errors():
        metrics = final_metrics(model, config, FLAGS.probe_examples, time.perf_counter() - start)
    training.write_json(os.path.join(config.out_dir, "metrics.json"), metrics)
    print(" ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)


if __name__ == "__main__":
    app.run(main)
