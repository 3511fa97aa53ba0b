"""Evaluation of generated samples.

Class coverage: a small convnet classifier trained on the labelled training
split (e.g. Fashion-MNIST) labels generated samples; how many classes appear,
and how large the biggest class is, measures mode collapse — the failure of
GANs and of IGN (arXiv 2311.01462, its sec. 6 "mode collapse") that a sample
grid hides.

Sample quality, in a feature space (an InceptionV3 given as a weights file, or
the classifier's penultimate layer — whose distances are NOT comparable with the
Inception FIDs of papers): FID (Heusel et al. 2017, arXiv 1706.08500), KID
(Bińkowski et al. 2018, arXiv 1801.01401) and improved precision / recall
(Kynkäänniemi et al. 2019, arXiv 1904.06991). The encoder and the projection:
a linear probe of O-GAN's E(x) (arXiv 1903.01931), label agreement between x
and its reconstruction, and IGN's idempotence gap (arXiv 2311.01462).
"""

import contextlib
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from ogan_ign import data, one_loss


def build_classifier(image_size=28, channels=1, num_classes=10, name="classifier"):
    """Two conv blocks and a dense head (its accuracy: docs/RESULTS.md)."""
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = x_in
    for i, w in enumerate((32, 64)):
        h = layers.Conv2D(w, 3, padding="same", activation="relu", name=f"conv{i}a")(h)
        h = layers.Conv2D(w, 3, padding="same", activation="relu", name=f"conv{i}b")(h)
        h = layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dropout(0.3, name="dropout")(h)
    h = layers.Dense(128, activation="relu", name="dense")(h)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(h)
    return keras.Model(x_in, logits, name=name)


@contextlib.contextmanager
def announced(what, verbose=True):
    """Says what is being computed before it starts and how long it took after,
    so that no long computation is silent."""
    start = time.perf_counter()
    if verbose:
        print(f"{what} ...", flush=True)
    yield
    if verbose:
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)


def train_classifier(images, labels, test=None, epochs=3, batch_size=128, seed=0,
                     num_classes=10, verbose=1):
    """Trains `build_classifier` on images in [-1, 1]; returns (model, test accuracy
    or None). test: optional (images, labels). verbose: Keras's (1: a progress
    bar per epoch, 0: silent)."""
    keras.utils.set_random_seed(seed)
    images = np.asarray(images, np.float32)
    model = build_classifier(images.shape[1], images.shape[3], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(images, np.asarray(labels), batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=verbose)
    accuracy = None
    if test is not None:
        accuracy = float(model.evaluate(np.asarray(test[0], np.float32), np.asarray(test[1]),
                                        batch_size=512, verbose=0)[1])
    return model, accuracy


def load_or_train_classifier(path, train, test=None, verbose=1, **kwargs):
    """The classifier cached at `path` (a .keras file), trained on `train` =
    (images, labels) and saved there if absent. Returns (model, test accuracy or
    None); the accuracy is measured on `test` whenever it is given. With
    `verbose`, says which of the two it does, shows Keras's progress bar while
    training and the time taken."""
    start = time.perf_counter()
    if os.path.exists(path):
        tested = "" if test is None else f" and testing it on {len(test[0])} images"
        with announced(f"loading the evaluation classifier from {path}{tested}", verbose):
            model = keras.saving.load_model(path)
            accuracy = None
            if test is not None:
                model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              metrics=["accuracy"])
                accuracy = float(model.evaluate(np.asarray(test[0], np.float32),
                                                np.asarray(test[1]), batch_size=512,
                                                verbose=0)[1])
        return model, accuracy
    epochs = kwargs.get("epochs", 3)
    if verbose:
        print(f"training the evaluation classifier once ({epochs} epochs on {len(train[0])} "
              f"images), cached at {path}", flush=True)
    model, accuracy = train_classifier(*train, test=test, verbose=verbose, **kwargs)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.keras"  # written whole, then renamed: no half-saved cache
    model.save(tmp)
    os.replace(tmp, path)
    if verbose:
        shown = "" if accuracy is None else f", test accuracy {accuracy:.3f}"
        print(f"evaluation classifier trained in {time.perf_counter() - start:.0f} s{shown}",
              flush=True)
    return model, accuracy


def class_coverage(classifier, images, num_classes=10, min_share=0.01, batch_size=256):
    """How many classes the classifier finds among generated images.

    A class counts as present when at least `min_share` of the images (and at
    least one) fall in it, so that a few misclassified blobs do not make a
    collapsed generator look diverse. Returns a dict: counts (per class),
    classes_present, max_share (share of the largest class) and
    effective_classes = exp(entropy of the class shares), which is
    num_classes for a uniform spread and 1 for a single class.
    """
    logits = classifier.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    predicted = np.argmax(logits, axis=-1)
    counts = np.bincount(predicted, minlength=num_classes)
    shares = counts / max(len(predicted), 1)
    threshold = max(1, int(np.ceil(min_share * len(predicted))))
    nonzero = shares[shares > 0]
    return {
        "counts": counts.tolist(),
        "classes_present": int(np.sum(counts >= threshold)),
        "max_share": float(shares.max()),
        "effective_classes": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
    }


def linear_probe(train_features, train_labels, test_features, test_labels, l2=1e-2):
    """Test accuracy of a linear classifier fitted on frozen features.

    Closed-form ridge regression onto one-hot labels (a least-squares linear
    classifier): deterministic, no training loop, so features from two sources —
    e.g. O-GAN's E(x) (arXiv 1903.01931) and raw pixels — compare on equal terms.
    Each feature is standardised with the training set's mean and std; `l2` is
    the ridge weight per training example.
    """
    def flat(a):
        a = np.asarray(a, np.float64)
        return a.reshape(len(a), -1)

    x_train, x_test = flat(train_features), flat(test_features)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    x_train = np.concatenate([(x_train - mean) / std, np.ones((len(x_train), 1))], 1)
    x_test = np.concatenate([(x_test - mean) / std, np.ones((len(x_test), 1))], 1)
    train_labels = np.asarray(train_labels, np.int64)
    targets = np.eye(int(train_labels.max()) + 1)[train_labels]
    gram = x_train.T @ x_train + l2 * len(x_train) * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ targets)
    predicted = np.argmax(x_test @ weights, axis=1)
    return float(np.mean(predicted == np.asarray(test_labels)))


# ------------------------------------------------------------ sample quality
#
# The three distances below compare two sets of feature vectors (N, d), float64
# throughout: FID's matrix square root loses digits in float32 on features whose
# covariance is nearly singular (ReLU features often are).


def encoder_probe(encode, train, test, examples=10000):
    """Linear probe of an encoder's code (O-GAN's E(x)): fitted on `examples`
    training images, scored on the test images (N, ...) with labels."""
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, y_train = x_train[:examples], y_train[:examples]
    return linear_probe(batched(encode, x_train, 500), y_train,
                        batched(encode, x_test, 500), y_test)


class EvaluationError(ValueError):
    """An evaluation the user can fix (missing weights, bad input); one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


def _features(a):
    a = np.asarray(a, np.float64)
    return a.reshape(len(a), -1)


def _sqrtm_psd(matrix):
    """The symmetric square root of a symmetric positive semi-definite matrix, from
    its eigen-decomposition; round-off negatives are clipped to 0."""
    w, v = np.linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_gaussians(mu1, cov1, mu2, cov2):
    """‖μ1 − μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½), Heusel et al. 2017 (arXiv 1706.08500),
    the Fréchet distance of N(μ1, Σ1) and N(μ2, Σ2).

    Tr((Σ1Σ2)^½) = Σ √λ over the eigenvalues λ of Σ1^½ Σ2 Σ1^½: that matrix is
    symmetric PSD and similar to Σ1Σ2, so no general (complex) sqrtm is needed.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.atleast_2d(cov1).astype(np.float64), np.atleast_2d(cov2).astype(np.float64)
    root1 = _sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    trace_sqrt = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0.0, None)))
    value = np.sum((mu1 - mu2) ** 2) + np.trace(cov1) + np.trace(cov2) - 2.0 * trace_sqrt
    return float(max(value, 0.0))


def frechet_distance(features_a, features_b):
    """FID between two feature sets: Gaussians fitted by mean and (N−1) covariance."""
    a, b = _features(features_a), _features(features_b)
    return frechet_gaussians(a.mean(0), np.cov(a, rowvar=False),
                             b.mean(0), np.cov(b, rowvar=False))


def polynomial_mmd2(x, y):
    """Unbiased MMD² with the cubic kernel k(x, y) = (xᵀy/d + 1)³, Bińkowski et al.
    2018 (arXiv 1801.01401, eq. 3): the diagonal k(x_i, x_i) terms are left out of
    the within-set means, so the estimate is 0 in expectation for equal laws (and
    can be slightly negative)."""
    x, y = _features(x), _features(y)
    m, n, d = len(x), len(y), x.shape[1]
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3
    return float((k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
                 + (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
                 - 2.0 * k_xy.mean())


def kernel_distance(features_a, features_b, num_subsets=100, subset_size=1000, seed=0):
    """KID: the mean and std of `polynomial_mmd2` over random subsets (drawn
    without replacement within a subset), as Bińkowski et al. report it; the
    subset size is capped by the smaller set. Returns (mean, std)."""
    a, b = _features(features_a), _features(features_b)
    size = min(subset_size, len(a), len(b))
    if size < 2:
        raise EvaluationError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(a[rng.choice(len(a), size, replace=False)],
                              b[rng.choice(len(b), size, replace=False)])
              for _ in range(num_subsets)]
    return float(np.mean(values)), float(np.std(values))


def _squared_distances(a, b):
    """(len(a), len(b)) squared Euclidean distances, never negative."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(features, k=3, chunk=1000):
    """Squared distance from each point to its k-th nearest other point."""
    x = _features(features)
    if len(x) <= k:
        raise EvaluationError(f"k-NN radii with k={k} need more than {k} points, got {len(x)}")
    radii = np.empty(len(x))
    for start in range(0, len(x), chunk):
        d = _squared_distances(x[start:start + chunk], x)
        # Index k, not k−1: the point itself is at distance 0 in position 0.
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]
    return radii


def _coverage(points, centres, radii, chunk=1000):
    """Share of `points` inside at least one ball (centre, radius)."""
    inside = np.zeros(len(points), bool)
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start:start + chunk], centres)
        inside[start:start + chunk] = np.any(d <= radii[None, :], axis=1)
    return float(inside.mean())


def precision_recall(real_features, fake_features, k=3):
    """Improved precision and recall, Kynkäänniemi et al. 2019 (arXiv 1904.06991).

    Each set's manifold is the union of balls around its points, of radius the
    distance to the point's k-th nearest neighbour in the same set. Precision:
    the share of fakes inside the real manifold (are samples realistic?); recall:
    the share of reals inside the fake manifold (is the data covered?).
    """
    real, fake = _features(real_features), _features(fake_features)
    precision = _coverage(fake, real, knn_radii(real, k))
    recall = _coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def sample_metrics(real_features, fake_features, k=3, kid_subsets=100, kid_subset_size=1000,
                   seed=0):
    """FID, KID (mean, std), precision and recall of fakes against reals, as a dict."""
    kid, kid_std = kernel_distance(real_features, fake_features, kid_subsets, kid_subset_size,
                                   seed)
    precision, recall = precision_recall(real_features, fake_features, k)
    return {"fid": frechet_distance(real_features, fake_features), "kid": kid,
            "kid_std": kid_std, "precision": precision, "recall": recall}


# ------------------------------------------------------------- feature spaces

FEATURE_LAYER = "dense"  # build_classifier's penultimate layer: 128 ReLU units
INCEPTION_SIZE = 299


def default_classifier_path(spec):
    """Where the classifier of a dataset spec is cached (shared with train_ign.py):
    ~/.cache/ogan_ign/classifier_<dataset>_<size>px_<channels>c.keras."""
    return os.path.expanduser(os.path.join(
        "~/.cache/ogan_ign", f"classifier_{spec.name}_{spec.image_size}px_{spec.channels}c.keras"))


def classifier_features(classifier, layer=FEATURE_LAYER):
    """x → the classifier's penultimate activations, the feature space of the
    project's FIDs on (Fashion-)MNIST. These distances rank models trained on the
    same data; they are not comparable with Inception FIDs in papers."""
    return keras.Model(classifier.inputs, classifier.get_layer(layer).output,
                       name=f"{classifier.name}_features")


def inception_features(weights_path, image_size, channels):
    """x in [-1, 1] (image_size², channels) → InceptionV3's 2048-d pool features.

    The weights cannot be downloaded here, so `weights_path` must name a Keras
    InceptionV3 "notop" weights file. Images are resized to 299 px and grey is
    repeated to RGB; [-1, 1] is already InceptionV3's input range. Note that
    the standard FID uses the TF1 graph's weights (pytorch-fid / TTUR); Keras's
    ImageNet weights give close but not identical values.
    """
    if not weights_path:
        raise EvaluationError(
            "InceptionV3 weights cannot be downloaded here (no internet): pass the path of "
            "a Keras inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, or use the "
            "classifier features")
    if not os.path.isfile(weights_path):
        raise EvaluationError(f"InceptionV3 weights file not found: {weights_path}")
    inception = keras.applications.InceptionV3(
        include_top=False, weights=weights_path, pooling="avg",
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = layers.Resizing(INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear")(x_in)
    if channels == 1:
        h = layers.Concatenate()([h, h, h])
    return keras.Model(x_in, inception(h), name="inception_features")


def embed(feature_model, images, batch_size=500):
    """Features of images in [-1, 1], float64 (N, d)."""
    out = feature_model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return _features(out)


# ------------------------------------------------- encoders and reconstructions


def predicted_labels(classifier, images, batch_size=500):
    logits = classifier.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1)


def label_agreement(classifier, x, x_reconstructed, batch_size=500):
    """Share of images whose reconstruction the classifier gives the same label:
    does x → E → G (O-GAN) or x → f (IGN) keep what the garment is?"""
    return float(np.mean(predicted_labels(classifier, x, batch_size)
                         == predicted_labels(classifier, x_reconstructed, batch_size)))


def rms_distance(a, b):
    """Mean over samples of the root-mean-square pixel difference (in [-1, 1] units,
    so 2 is the largest possible): the unit of every gap and reconstruction error
    reported here, and of IGN's gap/* training metrics."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.mean(np.sqrt(np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim))))))


def idempotence_gap(f, y, batch_size=500):
    """RMS(f(f(y)), f(y)): 0 when f is idempotent on y (IGN, arXiv 2311.01462,
    eq. 1 — f(f(z)) = f(z)). `f` maps a numpy batch to a numpy batch."""
    f_y = batched(f, y, batch_size)
    return rms_distance(batched(f, f_y, batch_size), f_y)


def batched(fn, x, batch_size=500):
    return np.concatenate([np.asarray(fn(x[i:i + batch_size]), np.float32)
                           for i in range(0, len(x), batch_size)])


# ------------------------------------------------------------- whole models


def evaluation_noise(model, n, seed):
    """The noise samples are drawn from: the model's own (`noise`), else N(0, I)
    of a bare generator's input size; the EVALUATION stream, which no training
    step draws."""
    if isinstance(model, one_loss.OneLossModel):
        return np.asarray(model.make_noise(n, seed, stream=one_loss.EVALUATION))
    generator = sample_function(model)
    return tf.random.stateless_normal((n, generator.inputs[0].shape[-1]),
                                      seed=one_loss.fixed_seed(seed, one_loss.EVALUATION)).numpy()


def sample_function(model):
    """The network that maps noise to samples: a model's `sampler`, or `model`
    itself when it is a bare generator z → x."""
    if isinstance(model, one_loss.OneLossModel):
        return model.sampler
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 2:
        raise EvaluationError(f"{model.name} is neither a ogan_ign model nor a generator z → x "
                              f"(its inputs are {[tuple(i.shape) for i in model.inputs]})")
    return model


def generate_samples(model, n, seed=0, batch_size=500):
    """n samples in [-1, 1] from an IGN (f of its own noise), a SingleLossGAN or
    O-GAN (its generator), or a bare generator z → x (e.g. a saved DCGAN);
    BatchNorm in inference mode."""
    network = sample_function(model)
    return batched(lambda z: network(z, training=False), evaluation_noise(model, n, seed),
                    batch_size)


def evaluate_model(model, feature_model, classifier, test, train=None, num_samples=10000,
                   probe_examples=10000, k=3, kid_subsets=100, kid_subset_size=1000, seed=0,
                   verbose=False):
    """Every metric that applies to `model`, as a flat dict.

    test, train: (images, labels or None) in [-1, 1]. Samples are compared with
      the test images (held out from training) in `feature_model`'s space: fid,
      kid, kid_std, precision, recall. With a classifier (labelled data):
      sample class coverage (classes_present, effective_classes, max_share).
    O-GAN: probe_encoder = linear probe of E(x) (fitted on `probe_examples`
      training images, scored on the test images); reconstruction = G(0.9·N(E(x)))
      of the test images: recon_agreement (same classifier label as x), recon_rms.
    IGN: reconstruction f(x) of the test images (recon_agreement, recon_rms) and
      the idempotence gaps RMS(f(f(y)), f(y)) for y = its noise z (idem_gap, the
      generated samples' gap) and y = test images (idem_gap_data).
    verbose: say what is computed and how long each part took.
    """
    x_test, y_test = test
    with announced(f"generating {num_samples} samples", verbose):
        samples = generate_samples(model, num_samples, seed)
    with announced(f"FID, KID, precision / recall of the samples against {len(x_test)} "
                   "test images" + (", class coverage" if classifier is not None else ""),
                   verbose):
        metrics = _set_metrics(feature_model, classifier, x_test, samples, k, kid_subsets,
                               kid_subset_size, seed)

    encode = getattr(model, "encode", None)
    if encode and train is not None and train[1] is not None and y_test is not None \
            and probe_examples:
        with announced(f"linear probe of E(x) on {min(probe_examples, len(train[0]))} "
                       "training images", verbose):
            metrics["probe_encoder"] = encoder_probe(encode, train, test, probe_examples)
    project = getattr(model, "project", None)
    reconstruct = getattr(model, "reconstruct", None)
    with announced("reconstructions and idempotence gaps of the test images", verbose
                   and (project is not None or reconstruct is not None)):
        if project:
            # The samples are f(z), so RMS(f(samples), samples) is the gap on z.
            metrics["idem_gap"] = rms_distance(batched(project, samples, 500), samples)
            metrics["idem_gap_data"] = idempotence_gap(project, x_test)
        if reconstruct is not None:
            x_rec = batched(reconstruct, x_test, 500)
            metrics["recon_rms"] = rms_distance(x_rec, x_test)
            if classifier is not None:
                metrics["recon_agreement"] = label_agreement(classifier, x_test, x_rec)
    return metrics


def _set_metrics(feature_model, classifier, x_real, x_other, k, kid_subsets, kid_subset_size,
                 seed):
    """FID, KID, precision / recall and class coverage of `x_other` against the
    real images: the part the model rows and the data floor share."""
    metrics = {"num_samples": int(len(x_other)), "num_real": int(len(x_real))}
    metrics.update(sample_metrics(embed(feature_model, x_real), embed(feature_model, x_other),
                                  k, kid_subsets, kid_subset_size, seed))
    if classifier is not None:
        coverage = class_coverage(classifier, x_other)
        metrics.update(classes_present=coverage["classes_present"],
                       effective_classes=coverage["effective_classes"],
                       max_share=coverage["max_share"])
    return metrics


def evaluate_data(feature_model, classifier, test, train, probe_examples=10000, k=3,
                  kid_subsets=100, kid_subset_size=1000, seed=0):
    """The floor: training images scored as if they were samples, against the
    test images, the same way as `evaluate_model`; plus the linear probe of raw
    pixels, the reference for O-GAN's encoder probe."""
    x_test, y_test = test
    x_train, y_train = train
    metrics = _set_metrics(feature_model, classifier, x_test, x_train, k, kid_subsets,
                           kid_subset_size, seed)
    if y_train is not None and y_test is not None and probe_examples:
        metrics["probe_pixels"] = linear_probe(x_train[:probe_examples], y_train[:probe_examples],
                                               x_test, y_test)
    return metrics


# ------------------------------------------------------- during and after training


def labelled_splits(dataset, data_dir=None, image_size=32, channels=None, train_limit=None,
                    test_limit=None):
    """(train, test) as (images, labels) arrays for labelled data, else None."""
    def split(name):
        return data.resolve(dataset, data_dir=data_dir, split=name, image_size=image_size,
                            channels=channels)

    train_spec = split("train")
    if not train_spec.labelled:
        return None
    return (data.load_arrays(train_spec, limit=train_limit),
            data.load_arrays(split("test"), limit=test_limit))


def run_classifier(config, path=None):
    """(classifier, test accuracy) for a run's labelled data, trained once and
    cached at `path` (default `default_classifier_path`); (None, None) unlabelled."""
    with announced(f"reading {config.dataset} for the evaluation classifier"):
        splits = labelled_splits(config.dataset, config.data_dir, config.image_size,
                                 config.channels)
    if splits is None:
        return None, None
    train, test = splits
    spec = data.resolve(config.dataset, data_dir=config.data_dir, image_size=config.image_size,
                        channels=config.channels)
    return load_or_train_classifier(path or default_classifier_path(spec), train, test)


class CoverageCallback(keras.callbacks.Callback):
    """Class coverage of fresh samples every `every` steps, into a JSON-lines file.

    Measured twice: with BatchNorm's moving statistics (what `generate` returns)
    and with the batch's own statistics (what training sees); the two differ when
    the moving statistics misfit the noise.
    """

    def __init__(self, classifier, every, samples, seed, path):
        super().__init__()
        self.classifier, self.every, self.samples = classifier, every, samples
        self.seed, self.path = seed, path

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations)
        if step % self.every:
            return
        record = {"step": step}
        for key, training in (("moving_stats", False), ("batch_stats", True)):
            samples = np.asarray(self.model.generate(self.samples, seed=self.seed,
                                                     training=training), np.float32)
            coverage = class_coverage(self.classifier, samples)
            record[key] = {k: coverage[k] for k in ("classes_present", "max_share",
                                                    "effective_classes", "counts")}
        print(f"coverage at step {step}: " + "  ".join(
            f"{key} {record[key]['classes_present']} classes, max share "
            f"{record[key]['max_share']:.2f}" for key in ("moving_stats", "batch_stats")),
            flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
