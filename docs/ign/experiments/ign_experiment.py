"""IGN research runner (issue 15): trains one IGN variant on a validation-carved
split of Fashion-MNIST 32 px and scores it during training.

    python docs/ign/experiments/ign_experiment.py --name paper --steps 3000 \
        --out_root runs/ign_research

Data: the 60,000 training images are split once, in file order, into
train[:50000] (trained on; also the Fourier statistics come from its first
10,000) and train[50000:] (the validation set every screening score is computed
against; the run never sees it). The test split is scored only by
`score_test.py`, once, for the chosen settings.

The model is built through the public API only:
`ogan_ign.ign.IGN(f, lambda_rec=, lambda_idem=, lambda_tight=, tight_clamp=,
distance=, noise=, seed=)`; f is built here (`build_f`), a copy of
`networks.dcgan_autoencoder` with a choice of normalisation ("batch": the
library's BatchNorm, "group", "layer", "none").

Every --eval_every steps the run scores (`score`): FID, KID, precision, recall
and class coverage of f(z) and of f(f(z)) against the validation images in the
project's classifier feature space (ogan_ign.evaluation), the idempotence gaps
RMS(f(f(z)), f(z)) and RMS(f(z), z), and the held-out reconstruction error
mean |f(x) − x| (L1, pixels in [−1, 1]) on the validation images. With --ema it
scores the EMA weights as well: an exponential moving average of ALL of f's
weights, BatchNorm moving statistics included (the library's
`averaging.WeightAverage`, which is also train_ign.py's --ema).

Output in <out_root>/<name>/: config.json, scores.jsonl (one line per scored
checkpoint and weight set), f's weights at each scored step and at the end
(`weights_file`), fourier_statistics.npy (Fourier noise), samples PNGs.
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import averaging, data, distances, evaluation, ign, images

TRAIN_END = 50000          # train[:TRAIN_END] trained on, train[TRAIN_END:] validation
FOURIER_EXAMPLES = 10000
NORMS = ("batch", "group", "layer", "none")
ARCHS = ("dense", "unet", "unet8")
K = 3                      # neighbours of the precision / recall manifolds, as evaluate.py


# ------------------------------------------------------------------- f
def _init():
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def _norm(kind, h, name, groups):
    """A normalisation layer applied to h; "none" returns h unchanged."""
    channels = h.shape[-1]
    if kind == "batch":
        from ogan_ign import networks
        return networks.BatchNorm(name=name)(h)
    if kind == "group":
        return layers.GroupNormalization(groups=min(groups, channels), name=name)(h)
    if kind == "layer":
        # One group: statistics over (H, W, C) per sample, affine per channel.
        return layers.GroupNormalization(groups=1, name=name)(h)
    return h


def build_f(image_size=32, channels=1, latent=512, width=32, norm="batch", groups=16,
            kernel_size=4, name="f", arch="dense"):
    """networks.dcgan_autoencoder with the normalisation as a choice.

    For 32 px: three stride-2 4×4 convolutions (width, 2·width, 4·width), norm
    on all but the first (which has a bias, unlike the library's f), LeakyReLU
    0.2; Dense to `latent`; Dense back to the 4×4×4·width map; norm + ReLU; two
    stride-2 transposed convolutions with norm + ReLU; a last one to the image;
    tanh. Without a norm the convolutions get a bias. norm="batch" is the
    library's f (same layers and initialiser) plus that one bias vector.

    arch="unet" adds skip connections: each decoder map (8×8, 16×16 for 32 px)
    is concatenated with the encoder map of the same size before the next
    transposed convolution, so detail need not pass the `latent`-d code;
    "unet8" keeps only the coarsest of them (the 8×8 map for 32 px).
    """
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; expected one of {list(NORMS)}")
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; expected one of {list(ARCHS)}")
    base = 4
    stages = int(round(np.log2(image_size // base)))
    widths = [width * 2 ** i for i in range(stages)]
    bias = norm == "none"
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = x_in
    skips = {}
    for i, w in enumerate(widths):
        h = layers.Conv2D(w, kernel_size, strides=2, padding="same", use_bias=bias or i == 0,
                          kernel_initializer=_init(), name=f"enc_conv{i}")(h)
        if i > 0:
            h = _norm(norm, h, f"enc_norm{i}", groups)
        h = layers.LeakyReLU(0.2, name=f"enc_lrelu{i}")(h)
        skips[h.shape[1]] = h
    keep = {"dense": (), "unet": tuple(skips), "unet8": (2 * base,)}[arch]
    h = layers.Flatten(name="enc_flatten")(h)
    h = layers.Dense(latent, kernel_initializer=_init(), name="latent")(h)
    h = layers.Dense(base * base * widths[-1], use_bias=bias, kernel_initializer=_init(),
                     name="dec_project")(h)
    h = layers.Reshape((base, base, widths[-1]), name="dec_reshape")(h)
    h = layers.ReLU(name="dec_relu_project")(_norm(norm, h, "dec_norm_project", groups))
    for i in range(stages - 1):
        h = layers.Conv2DTranspose(widths[stages - 2 - i], kernel_size, strides=2,
                                   padding="same", use_bias=bias, kernel_initializer=_init(),
                                   name=f"dec_deconv{i}")(h)
        h = layers.ReLU(name=f"dec_relu{i}")(_norm(norm, h, f"dec_norm{i}", groups))
        if h.shape[1] in keep:
            h = layers.Concatenate(name=f"dec_skip{i}")([h, skips[h.shape[1]]])
    h = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                               kernel_initializer=_init(), name="dec_to_image")(h)
    out = layers.Activation("tanh", name="tanh", dtype="float32")(h)
    return keras.Model(x_in, out, name=name)


def weights_file(ema, step=0):
    """f's weights file in a run folder: those kept at scored `step`
    (f[_ema]_0NNNN.weights.h5), or the final ones (step 0: f[_ema].weights.h5)."""
    stem = "f_ema" if ema else "f"
    return f"{stem}_{step:05d}.weights.h5" if step else f"{stem}.weights.h5"


# ------------------------------------------------------------------- scoring
class Reference:
    """The reference images (validation or test), their features, the classifier."""

    def __init__(self, x, classifier):
        self.x = np.asarray(x, np.float32)
        self.classifier = classifier
        self.features_model = evaluation.classifier_features(classifier)
        self.features = evaluation.embed(self.features_model, self.x)
        # The real manifold's radii: the same for every scoring, computed once.
        self.radii = evaluation.knn_radii(self.features, K)


class LazyReference:
    """A Reference built at its first use (training starts while the cached
    classifier may still be being trained by another process)."""

    def __init__(self, x):
        self.x_raw, self.built = x, None

    def __getattr__(self, name):
        if name in ("x_raw", "built"):
            raise AttributeError(name)
        if self.built is None:
            self.built = Reference(self.x_raw, load_classifier())
        return getattr(self.built, name)


def _inside(points, centres, radii, chunk=1000):
    """Share of points inside at least one ball (centre, squared radius)."""
    inside = np.zeros(len(points), bool)
    c2 = (centres * centres).sum(1)[None, :]
    for i in range(0, len(points), chunk):
        p = points[i:i + chunk]
        d = (p * p).sum(1)[:, None] + c2 - 2.0 * p @ centres.T
        inside[i:i + chunk] = np.any(d <= radii[None, :], axis=1)
    return float(inside.mean())


def sample_metrics(reference, fake_features, kid_subsets, seed):
    """evaluation.sample_metrics with the reference's radii cached: FID, KID
    (mean, std over subsets of 1,000), improved precision / recall (k = 3)."""
    fake = np.asarray(fake_features, np.float64)
    kid, kid_std = evaluation.kernel_distance(reference.features, fake, kid_subsets, 1000, seed)
    return {"fid": evaluation.frechet_distance(reference.features, fake), "kid": kid,
            "kid_std": kid_std,
            "precision": _inside(fake, reference.features, reference.radii),
            "recall": _inside(reference.features, fake, evaluation.knn_radii(fake, K))}


def load_classifier():
    spec = data.resolve("fashion_mnist", image_size=32, split="train")
    path = evaluation.default_classifier_path(spec)
    for _ in range(int(os.environ.get("IGN_WAIT_CLASSIFIER_MINUTES", "0")) * 2):
        if os.path.exists(path):  # another process is training it: wait for it
            break
        time.sleep(30)
    if not os.path.exists(path):
        # Trained on all 60,000 training labels: a fixed feature space shared
        # with docs/RESULTS.md; the generator never sees the validation images.
        train = data.load_arrays(spec)
        return evaluation.load_or_train_classifier(path, train)[0]
    return keras.saving.load_model(path)


def _batched(fn, x, batch=500):
    return np.concatenate([np.asarray(fn(x[i:i + batch]), np.float32)
                           for i in range(0, len(x), batch)])


def score(model, f, reference, num_samples, seed=0, applications=2, kid_subsets=50):
    """Metrics of samples f^k(z), k = 1..applications, against reference; a dict.

    z: the model's own noise from the stateless stream (seed, −5), as
    evaluation.generate_samples draws it. BatchNorm in inference mode.
    Keys: fid, kid, kid_std, precision, recall, classes_present,
    effective_classes, max_share (for k = 1), the same with suffix _k2 for
    f(f(z)), gap_ff_z = RMS(f(f(z)), f(z)), gap_f_z = RMS(f(z), z),
    recon_l1 = mean |f(x) − x| and recon_rms on the reference images.
    """
    z = model.draw_noise(num_samples, tf.constant([seed, -5], tf.int64)).numpy()
    run = lambda y: f(y, training=False)
    out, y, previous = {}, z, None
    for k in range(1, applications + 1):
        previous, y = y, _batched(run, y)
        metrics = sample_metrics(reference, evaluation.embed(reference.features_model, y),
                                 kid_subsets, seed)
        coverage = evaluation.class_coverage(reference.classifier, y)
        metrics.update({key: coverage[key] for key in
                        ("classes_present", "effective_classes", "max_share")})
        suffix = "" if k == 1 else f"_k{k}"
        out.update({key + suffix: value for key, value in metrics.items()})
        if k == 1:
            out["gap_f_z"] = evaluation.rms_distance(y, z)
            first = y
        if k == 2:
            out["gap_ff_z"] = evaluation.rms_distance(y, first)
    x_rec = _batched(run, reference.x)
    out["recon_l1"] = float(np.mean(np.abs(x_rec - reference.x)))
    out["recon_rms"] = evaluation.rms_distance(x_rec, reference.x)
    out["samples"] = first[:64]
    return out


class Scorer(keras.callbacks.Callback):
    """Scores the model every `every` steps (and the EMA weights, if any) into
    scores.jsonl; writes the sample grid of each scored weight set."""

    def __init__(self, model, reference, every, num_samples, run_dir, ema=None, start=None):
        super().__init__()
        self.ign, self.reference, self.every = model, reference, every
        self.num_samples, self.run_dir, self.ema = num_samples, run_dir, ema
        self.start = start or time.perf_counter()
        self.train_seconds = 0.0
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.ign.optimizer.iterations)
        if step % 100 == 0:
            print(f"step {step}: {time.perf_counter() - self.last + self.train_seconds:.0f} s "
                  "training", flush=True)
        if step % self.every:
            return
        self.train_seconds += time.perf_counter() - self.last
        self.record(step, logs or {})
        self.last = time.perf_counter()

    def record(self, step, logs):
        sets = [("raw", None)] + ([("ema", self.ema)] if self.ema is not None else [])
        for weights, ema in sets:
            t0 = time.perf_counter()
            f = self.ign.f
            with averaging.swapped_in(ema):
                metrics = score(self.ign, f, self.reference, self.num_samples)
                f.save_weights(os.path.join(self.run_dir, weights_file(weights == "ema", step)))
            samples = metrics.pop("samples")
            images.save_grid(os.path.join(self.run_dir, f"samples_{weights}_{step:05d}.png"),
                             samples)
            row = {"step": step, "weights": weights, "train_seconds": round(self.train_seconds, 1),
                   "score_seconds": round(time.perf_counter() - t0, 1),
                   "train_logs": {k: float(v) for k, v in logs.items()}, **metrics}
            with open(os.path.join(self.run_dir, "scores.jsonl"), "a") as out:
                out.write(json.dumps(row) + "\n")
            print(f"step {step} {weights}: fid {metrics['fid']:.2f} kid {metrics['kid']:.4f} "
                  f"P {metrics['precision']:.3f} R {metrics['recall']:.3f} "
                  f"fid_k2 {metrics['fid_k2']:.2f} R_k2 {metrics['recall_k2']:.3f} "
                  f"gap_ff {metrics['gap_ff_z']:.3f} gap_f {metrics['gap_f_z']:.3f} "
                  f"recon_l1 {metrics['recon_l1']:.4f} classes {metrics['classes_present']} "
                  f"[{self.train_seconds:.0f} s train]", flush=True)


# ------------------------------------------------------------------- main
def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out_root", default="runs/ign_research")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--eval_every", type=int, default=500)
    p.add_argument("--eval_samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--latent", type=int, default=512)
    p.add_argument("--norm", default="batch", choices=NORMS)
    p.add_argument("--arch", default="dense", choices=ARCHS)
    p.add_argument("--groups", type=int, default=16)
    p.add_argument("--lambda_rec", type=float, default=20.0)
    p.add_argument("--lambda_idem", type=float, default=20.0)
    p.add_argument("--lambda_tight", type=float, default=2.5)
    p.add_argument("--tight_clamp", type=float, default=1.5, help="<= 0: no clamp")
    p.add_argument("--distance", default="l1", choices=distances.IGN_DISTANCES)
    p.add_argument("--noise", default="fourier", choices=ign.NOISES)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta_1", type=float, default=0.5)
    p.add_argument("--ema", type=float, default=0.995, help="EMA decay; 0 = off")
    p.add_argument("--precision", default="float32", choices=("bf16", "float32"),
                   help="bf16 is emulated (slow) on CPUs without AVX512-BF16")
    args = p.parse_args(argv)
    if args.steps < 1 or args.eval_every < 1 or args.eval_samples < 10:
        p.error("--steps, --eval_every must be positive and --eval_samples >= 10")
    if args.steps % args.eval_every:
        p.error("--steps must be a multiple of --eval_every")
    return args


def build_model(args):
    f = build_f(32, 1, args.latent, args.width, args.norm, args.groups,
                arch=getattr(args, "arch", "dense"))
    model = ign.IGN(f, lambda_rec=args.lambda_rec, lambda_idem=args.lambda_idem,
                    lambda_tight=args.lambda_tight,
                    tight_clamp=args.tight_clamp if args.tight_clamp > 0 else None,
                    distance=args.distance, noise=args.noise, seed=args.seed)
    return model


def split_arrays():
    spec = data.resolve("fashion_mnist", image_size=32, split="train")
    x = data.load_arrays(spec)[0]
    return np.asarray(x[:TRAIN_END], np.float32), np.asarray(x[TRAIN_END:], np.float32)


def main(argv=None):
    args = parse(argv)
    run_dir = os.path.join(args.out_root, args.name)
    if os.path.exists(os.path.join(run_dir, "scores.jsonl")):
        sys.exit(f"error: {run_dir} already has scores.jsonl; pick another --name")
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w") as out:
        json.dump(vars(args), out, indent=1)
    x_train, x_val = split_arrays()
    reference = LazyReference(x_val)
    keras.utils.set_random_seed(args.seed)
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if args.precision == "bf16" else "float32")
    model = build_model(args)
    if args.noise == "fourier":
        model.adapt(x_train[:FOURIER_EXAMPLES])
        np.save(os.path.join(run_dir, "fourier_statistics.npy"), model.spectrum.numpy())
    model.compile(optimizer=keras.optimizers.Adam(args.lr, beta_1=args.beta_1, beta_2=0.999),
                  jit_compile=False)
    dataset = (tf.data.Dataset.from_tensor_slices(x_train)
               .shuffle(len(x_train), seed=args.seed, reshuffle_each_iteration=True)
               .repeat().batch(args.batch_size, drop_remainder=True).prefetch(2))
    ema = averaging.WeightAverage(model.f, args.ema) if args.ema > 0 else None
    scorer = Scorer(model, reference, args.eval_every, args.eval_samples, run_dir, ema)
    callbacks = ([ema] if ema else []) + [scorer]
    model.fit(dataset, epochs=1, steps_per_epoch=args.steps, verbose=0, callbacks=callbacks)
    model.f.save_weights(os.path.join(run_dir, weights_file(False)))
    if ema is not None:
        with ema.swapped():
            model.f.save_weights(os.path.join(run_dir, weights_file(True)))
    print(f"done: {args.steps} steps, {scorer.train_seconds:.0f} s training", flush=True)


if __name__ == "__main__":
    main()
