"""Trains IGN, the Idempotent Generative Network (Shocher et al., arXiv 2311.01462),
as a single-loss GAN: one f, one tape, one Adam.

    python train_ign.py --dataset celeba_hq --image_size 64 --out_dir runs/ign_celebahq
    python train_ign.py --out_dir runs/ign_fmnist             # Fashion-MNIST, 32 px
    python train_ign.py --noise gaussian --out_dir runs/ign_literal   # the paper's noise

The loss is λ_rec·L_rec + λ_idem·L_idem + λ_tight·L_tight with the paper's
weights 20 / 20 / 2.5, the tightness clamp a = 1.5 and L1 distance, Adam(1e-4,
β1 = 0.5); f is a DCGAN autoencoder with BatchNorm (ogan_ign/networks.py).

Besides the driver's sample grids f(z), every --sample_every steps the run folder
gets idempotence/<step>.png (rows: z | f(z) | f(f(z)) | f(f(f(z)))) and
projections/<step>.png (original | corrupted | f(corrupted), for added noise,
grayscale (3-channel data only) and masked blocks). At the end metrics.json holds
the idempotence gaps and, for labelled data (Fashion-MNIST), the class coverage
of --coverage_samples samples under a small classifier trained once and cached.
"""

import dataclasses
import json
import os
import time
from typing import Optional

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import data, evaluation, images, ign, networks, training
from ogan_ign import flags as common

common.define_common_flags(dataset="fashion_mnist", out_dir="runs/ign", lr=1e-4, batch_size=64)
flags.DEFINE_float("lambda_rec", 20.0, "weight of L_rec = D(f(x), x)")
flags.DEFINE_float("lambda_idem", 20.0, "weight of L_idem = D(f(f(z)), f(z)) (inner f)")
flags.DEFINE_float("lambda_tight", 2.5, "weight of L_tight = −D(f(f(z)), f(z)) (outer f)")
flags.DEFINE_string("tight_clamp", "1.5", "a of the clamp tanh(L_tight / (a·L_rec))·a·L_rec; "
                    "'none' or a negative number turns it off")
flags.DEFINE_enum("distance", "l1", list(ign.losses.IGN_DISTANCES), "D: mean |·| or mean (·)²")
flags.DEFINE_enum("noise", "fourier", list(ign.NOISES),
                  "fourier: the data's per-frequency spectrum statistics; gaussian: N(0, I)")
flags.DEFINE_integer("fourier_examples", 10000, "training images for the Fourier statistics")
flags.DEFINE_integer("width", 64, "channels of the first encoder conv (doubling per stage)")
flags.DEFINE_integer("latent", 512, "channels of f's 1×1 bottleneck")
flags.DEFINE_integer("coverage_samples", 1000, "samples classified at the end (labelled data "
                     "only); 0 = skip")
flags.DEFINE_string("classifier", None, "cached classifier (.keras) for the coverage; default "
                    "~/.cache/ogan_ign/classifier_<dataset>_<size>px_<channels>c.keras")
flags.DEFINE_integer("coverage_every", 0, "steps between class-coverage checks during "
                     "training, into coverage.jsonl (labelled data only); 0 = only at the end")
FLAGS = flags.FLAGS

ROWS = 8           # rows of the idempotence and projection tables
APPLICATIONS = 3   # f applied 1, 2, 3 times
NOISE_STD = 0.4    # corruptions for the projection figure
BLOCK = 0.375      # side of the masked block, as a share of the image side


@dataclasses.dataclass(frozen=True)
class IGNConfig:
    lambda_rec: float = 20.0
    lambda_idem: float = 20.0
    lambda_tight: float = 2.5
    tight_clamp: Optional[float] = 1.5
    distance: str = "l1"
    noise: str = "fourier"
    fourier_examples: int = 10000
    width: int = 64
    latent: int = 512


def parse_clamp(text):
    """'none', 'off' or a negative number → None; else a positive float."""
    if str(text).strip().lower() in ("none", "off", ""):
        return None
    value = float(text)
    return None if value < 0 else value


def build_model(config, spec):
    hp = config.model
    f = networks.dcgan_autoencoder(spec.image_size, spec.channels, hp.latent, hp.width)
    model = ign.IGN(f, lambda_rec=hp.lambda_rec, lambda_idem=hp.lambda_idem,
                    lambda_tight=hp.lambda_tight, tight_clamp=hp.tight_clamp,
                    distance=hp.distance, noise=hp.noise, seed=config.seed)
    if hp.noise == "fourier":
        # Once per run, from the training split; a resumed run restores the same
        # statistics from its checkpoint.
        model.adapt(data.load_arrays(spec, limit=hp.fourier_examples)[0])
    return model, ign.default_optimizer()


def corruptions(x, seed):
    """(name, corrupted x) pairs: added noise, grayscale (3 channels), a masked block."""
    rng = np.random.default_rng(seed)
    out = [("noise", np.clip(x + NOISE_STD * rng.standard_normal(x.shape), -1, 1))]
    if x.shape[-1] == 3:
        out.append(("gray", np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)))
    side = x.shape[1]
    block = int(round(BLOCK * side))
    masked = x.copy()
    for i in range(len(x)):
        top, left = rng.integers(0, side - block + 1, size=2)
        masked[i, top:top + block, left:left + block] = 0.0  # mid-gray
    out.append(("masked", masked))
    return [(name, c.astype(np.float32)) for name, c in out]


def figures(model, run_dir, step, fixed):
    """f applied 1–3 times to fixed noise; projections of corrupted real images."""
    z = model.draw_noise(ROWS, tf.constant([fixed.seed, -2], tf.int64))
    applied = [np.asarray(y, np.float32) for y in model.apply(z, APPLICATIONS)]
    z_shown = np.clip(np.asarray(z, np.float32), -1, 1)
    images.save_table(os.path.join(run_dir, "idempotence", f"{step:08d}.png"),
                      images.side_by_side(z_shown, *applied))
    x = np.asarray(fixed.x_real[:ROWS], np.float32)
    columns = [x]
    for _, corrupted in corruptions(x, fixed.seed):
        columns += [corrupted, np.asarray(model.project(corrupted), np.float32)]
    images.save_table(os.path.join(run_dir, "projections", f"{step:08d}.png"),
                      images.side_by_side(*columns))


class Coverage(keras.callbacks.Callback):
    """Class coverage of fresh samples every `every` steps, to watch for collapse.

    Measured twice: with BatchNorm's moving statistics (what `generate` returns)
    and with the batch's own statistics (what training sees). f is called on
    real images, noise and f(z) alike, so its moving statistics average those
    inputs; the two readings differ when they differ.
    """

    def __init__(self, classifier, every, samples, seed, path):
        super().__init__()
        self.classifier, self.every, self.samples = classifier, every, samples
        self.seed, self.path = seed, path
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % self.every:
            return
        record = {"step": step, "seconds": round(time.perf_counter() - self.start, 1)}
        for key, training in (("moving_stats", False), ("batch_stats", True)):
            samples = np.asarray(self.model.generate(self.samples, seed=self.seed,
                                                     training=training), np.float32)
            coverage = evaluation.class_coverage(self.classifier, samples)
            record[key] = {k: coverage[k] for k in ("classes_present", "max_share",
                                                    "effective_classes", "counts")}
        print(f"coverage at step {step}: " + "  ".join(
            f"{key} {record[key]['classes_present']} classes, max share "
            f"{record[key]['max_share']:.2f}" for key in ("moving_stats", "batch_stats")),
            flush=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def split_spec(config, name):
    return data.resolve(config.dataset, data_dir=config.data_dir, split=name,
                        image_size=config.image_size, channels=config.channels)


def load_classifier(config, path):
    """The cached coverage classifier (trained on first use), its test accuracy;
    (None, None) for unlabelled data."""
    train_spec = split_spec(config, "train")
    if not train_spec.labelled:
        return None, None
    train = data.load_arrays(train_spec)
    return evaluation.load_or_train_classifier(
        path or classifier_path(config, train_spec), train,
        data.load_arrays(split_spec(config, "test")))


def classifier_path(config, spec):
    return os.path.expanduser(os.path.join(
        "~/.cache/ogan_ign",
        f"classifier_{spec.name}_{spec.image_size}px_{spec.channels}c.keras"))


def final_metrics(model, config, seconds, classifier=None, accuracy=None, samples=1000):
    """Idempotence gaps on fresh noise and, with a classifier, class coverage."""
    z = model.draw_noise(1000, tf.constant([config.seed, -3], tf.int64))
    f_z = np.concatenate([model.f(z[i:i + 250]).numpy() for i in range(0, 1000, 250)])
    ff_z = np.concatenate([model.f(f_z[i:i + 250]).numpy() for i in range(0, 1000, 250)])
    rms = lambda a, b: float(np.mean(np.sqrt(np.mean((a - b) ** 2, axis=(1, 2, 3)))))
    metrics = {"steps": int(model.optimizer.iterations), "wall_seconds": round(seconds, 1),
               "gap_ff_z": rms(ff_z, f_z), "gap_f_z": rms(f_z, np.asarray(z))}
    if classifier is not None and samples:
        x = np.asarray(model.generate(samples, seed=config.seed + 1), np.float32)
        coverage = evaluation.class_coverage(classifier, x)
        metrics.update({"classifier_test_accuracy": accuracy, "coverage_samples": samples,
                        **{f"coverage_{k}": v for k, v in coverage.items()}})
    return metrics


def main(argv):
    common.no_extra_args(argv)
    try:
        clamp = parse_clamp(FLAGS.tight_clamp)
    except ValueError:
        raise app.UsageError(f"--tight_clamp must be a number or 'none', "
                             f"got {FLAGS.tight_clamp!r}") from None
    hp = IGNConfig(lambda_rec=FLAGS.lambda_rec, lambda_idem=FLAGS.lambda_idem,
                   lambda_tight=FLAGS.lambda_tight, tight_clamp=clamp, distance=FLAGS.distance,
                   noise=FLAGS.noise, fourier_examples=FLAGS.fourier_examples,
                   width=FLAGS.width, latent=FLAGS.latent)
    config = common.config_from_flags(model=hp)
    classifier = accuracy = None
    callbacks = []
    if FLAGS.coverage_samples and FLAGS.coverage_every:
        # Needed during training, so checked and trained (once, then cached)
        # before it, after the config and the data are known to be usable.
        with common.user_errors():
            training.validate(config)
            classifier, accuracy = load_classifier(config, FLAGS.classifier)
        if classifier is not None:
            os.makedirs(config.out_dir, exist_ok=True)
            callbacks.append(Coverage(classifier, FLAGS.coverage_every, FLAGS.coverage_samples,
                                      config.seed + 1,
                                      os.path.join(config.out_dir, "coverage.jsonl")))
    start = time.perf_counter()
    model = common.train_or_exit(config, build_model, figures=figures, callbacks=callbacks)
    seconds = time.perf_counter() - start
    if FLAGS.coverage_samples and classifier is None:
        with common.user_errors():
            classifier, accuracy = load_classifier(config, FLAGS.classifier)
    if accuracy is not None:
        print(f"coverage classifier: test accuracy {accuracy:.4f}", flush=True)
    metrics = final_metrics(model, config, seconds, classifier, accuracy, FLAGS.coverage_samples)
    training.write_json(os.path.join(config.out_dir, "metrics.json"), metrics)
    print(" ".join(f"{k} {v}" for k, v in metrics.items()), flush=True)


if __name__ == "__main__":
    app.run(main)
