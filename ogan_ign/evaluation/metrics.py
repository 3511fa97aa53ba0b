"""Metrics of generated samples, pure functions of numpy arrays (and of the
functions they are given): FID (Heusel et al. 2017, arXiv 1706.08500), KID
(Bińkowski et al. 2018, arXiv 1801.01401), improved precision / recall
(Kynkäänniemi et al. 2019, arXiv 1904.06991), coverage (Naeem et al. 2020, arXiv
2002.09797), a closed-form linear probe (for O-GAN's E(x), arXiv 1903.01931),
and RMS distances with IGN's idempotence gap (arXiv 2311.01462). None of them
builds or trains a network.
"""

import numpy as np


class EvaluationError(ValueError):
    """An evaluation the user can fix (missing weights, bad input); one line."""

    def __init__(self, message):
        super().__init__(" ".join(str(message).split()))


def feature_matrix(a):
    """Features as a float64 matrix (N, d): every axis after the first flattened."""
    a = np.asarray(a, np.float64)
    return a.reshape(len(a), -1)


# The distances below compare two sets of feature vectors (N, d), float64
# throughout: FID's matrix square root loses digits in float32 on features whose
# covariance is nearly singular (ReLU features often are).


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
    a, b = feature_matrix(features_a), feature_matrix(features_b)
    return frechet_gaussians(a.mean(0), np.cov(a, rowvar=False),
                             b.mean(0), np.cov(b, rowvar=False))


def polynomial_mmd2(x, y):
    """Unbiased MMD² with the cubic kernel k(x, y) = (xᵀy/d + 1)³, Bińkowski et al.
    2018 (arXiv 1801.01401, eq. 3): the diagonal k(x_i, x_i) terms are left out of
    the within-set means, so the estimate is 0 in expectation for equal laws (and
    can be slightly negative)."""
    x, y = feature_matrix(x), feature_matrix(y)
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
    a, b = feature_matrix(features_a), feature_matrix(features_b)
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
    x = feature_matrix(features)
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


def precision_recall(real_features, fake_features, k=3, real_radii=None):
    """Improved precision and recall, Kynkäänniemi et al. 2019 (arXiv 1904.06991).

    Each set's manifold is the union of balls around its points, of radius the
    distance to the point's k-th nearest neighbour in the same set. Precision:
    the share of fakes inside the real manifold (are samples realistic?); recall:
    the share of reals inside the fake manifold (is the data covered?).
    real_radii: `knn_radii(real, k)` when the caller has it already.
    """
    real, fake = feature_matrix(real_features), feature_matrix(fake_features)
    precision = _coverage(fake, real, knn_radii(real, k) if real_radii is None else real_radii)
    recall = _coverage(real, fake, knn_radii(fake, k))
    return precision, recall


def covered(real_features, fake_features, k=3, chunk=1000, real_radii=None):
    """Per real point, whether its ball (radius: the distance to its k-th nearest
    real neighbour) holds at least one fake: a boolean array, `coverage`'s terms.
    real_radii: `knn_radii(real, k)` when the caller has it already."""
    real, fake = feature_matrix(real_features), feature_matrix(fake_features)
    radii = knn_radii(real, k, chunk) if real_radii is None else real_radii
    nearest = np.empty(len(real))
    for start in range(0, len(real), chunk):
        nearest[start:start + chunk] = _squared_distances(real[start:start + chunk], fake).min(1)
    return nearest <= radii


def coverage(real_features, fake_features, k=3, chunk=1000, real_radii=None):
    """Coverage, Naeem et al. 2020 (arXiv 2002.09797): the share of real points
    whose ball (radius: the distance to its k-th nearest real neighbour) holds at
    least one fake (`covered`). Unlike recall it asks for a sample near each real
    point, not a fake ball reaching it, so a few outlying fakes with large balls
    cannot raise it. real_radii: `knn_radii(real, k)` when the caller has it already."""
    return float(np.mean(covered(real_features, fake_features, k, chunk, real_radii)))


def sample_metrics(real_features, fake_features, k=3, kid_subsets=100, kid_subset_size=1000,
                   seed=0):
    """FID, KID (mean, std), precision, recall and coverage of fakes against
    reals, as a dict."""
    kid, kid_std = kernel_distance(real_features, fake_features, kid_subsets, kid_subset_size,
                                   seed)
    radii = knn_radii(real_features, k)  # the real balls of precision and of coverage
    precision, recall = precision_recall(real_features, fake_features, k, radii)
    return {"fid": frechet_distance(real_features, fake_features), "kid": kid,
            "kid_std": kid_std, "precision": precision, "recall": recall,
            "coverage": coverage(real_features, fake_features, k, real_radii=radii)}


# ------------------------------------------------- encoders and reconstructions


def standardised(train_features, test_features):
    """Both feature sets as float64 matrices, each feature standardised with the
    training set's mean and std (the probes' common first step)."""
    x_train, x_test = feature_matrix(train_features), feature_matrix(test_features)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    return (x_train - mean) / std, (x_test - mean) / std


def linear_probe(train_features, train_labels, test_features, test_labels, l2=1e-2):
    """Test accuracy of a linear classifier fitted on frozen features.

    Closed-form ridge regression onto one-hot labels (a least-squares linear
    classifier): deterministic, no training loop, so features from two sources —
    e.g. O-GAN's E(x) (arXiv 1903.01931) and raw pixels — compare on equal terms.
    Each feature is standardised with the training set's mean and std; `l2` is
    the ridge weight per training example.
    """
    x_train, x_test = standardised(train_features, test_features)
    x_train = np.concatenate([x_train, np.ones((len(x_train), 1))], 1)
    x_test = np.concatenate([x_test, np.ones((len(x_test), 1))], 1)
    train_labels = np.asarray(train_labels, np.int64)
    targets = np.eye(int(train_labels.max()) + 1)[train_labels]
    gram = x_train.T @ x_train + l2 * len(x_train) * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ targets)
    predicted = np.argmax(x_test @ weights, axis=1)
    return float(np.mean(predicted == np.asarray(test_labels)))


def logistic_fit(features, labels, l2=1e-3, iterations=1000):
    """(W, b) minimising the mean multinomial cross-entropy of softmax(x W + b)
    plus l2/2 · |W|² (the bias unpenalised), on float64 (N, d) features with
    int labels: accelerated gradient descent (Nesterov's momentum, restarted
    whenever a step goes uphill) with the step 1/L of the bound
    L = ½ λmax([x 1]ᵀ[x 1] / N) + l2 on the Hessian. Deterministic: no
    random start, no mini-batches."""
    x = np.concatenate([features, np.ones((len(features), 1))], 1)
    targets = np.eye(int(labels.max()) + 1)[labels]
    penalty = np.ones((x.shape[1], 1))
    penalty[-1] = 0.0  # the bias row
    gram = x.T @ x / len(x)
    step = 1.0 / (0.5 * np.linalg.eigvalsh(gram)[-1] + l2)
    weights = momentum = np.zeros((x.shape[1], targets.shape[1]))
    t = 1.0
    for _ in range(iterations):
        logits = x @ momentum
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        gradient = x.T @ (p - targets) / len(x) + l2 * penalty * momentum
        new = momentum - step * gradient
        if np.sum(gradient * (new - weights)) > 0:  # uphill: restart the momentum
            t = 1.0
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        momentum = new + (t - 1.0) / t_next * (new - weights)
        weights, t = new, t_next
    return weights[:-1], weights[-1]


def logistic_probe(train_features, train_labels, test_features, test_labels, l2=1e-3):
    """Test accuracy of multinomial logistic regression (`logistic_fit`) on frozen
    features, each standardised with the training set's mean and std: the probe
    of O-GAN's E(x) against raw pixels and against the same encoder untrained."""
    x_train, x_test = standardised(train_features, test_features)
    weights, bias = logistic_fit(x_train, np.asarray(train_labels, np.int64), l2)
    predicted = np.argmax(x_test @ weights + bias, axis=1)
    return float(np.mean(predicted == np.asarray(test_labels)))


PROBES = {"logistic": logistic_probe, "ridge": linear_probe}


def encoder_probe(encode, train, test, examples=10000, probe="logistic"):
    """Linear probe (`PROBES[probe]`) of an encoder's code (O-GAN's E(x)): fitted
    on `examples` training images, scored on the test images (N, ...) with labels."""
    (x_train, y_train), (x_test, y_test) = train, test
    x_train, y_train = x_train[:examples], y_train[:examples]
    return PROBES[probe](batched(encode, x_train, 500), y_train,
                         batched(encode, x_test, 500), y_test)


def pixel_probe(train, test, examples=10000, probe="logistic"):
    """The same probe on raw pixels: the reference an encoder's code must beat."""
    return encoder_probe(lambda x: x, train, test, examples, probe)


def rms_distance(a, b):
    """Mean over samples of the root-mean-square pixel difference (in [-1, 1] units,
    so 2 is the largest possible): the unit of every gap and reconstruction error
    reported here, and of IGN's gap/* training metrics."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.mean(np.sqrt(np.mean((a - b) ** 2, axis=tuple(range(1, a.ndim))))))


def idempotence_gap(f, y, batch_size=500, again=None):
    """RMS(f(f(y)), f(y)): 0 when f is idempotent on y (IGN, arXiv 2311.01462,
    eq. 1 — f(f(z)) = f(z)). `f` maps a numpy batch to a numpy batch; `again`,
    when given, is the outer f (IGN's refiner, f with other statistics)."""
    f_y = batched(f, y, batch_size)
    return rms_distance(batched(again or f, f_y, batch_size), f_y)


def batched(fn, x, batch_size=500):
    return np.concatenate([np.asarray(fn(x[i:i + batch_size]), np.float32)
                           for i in range(0, len(x), batch_size)])
