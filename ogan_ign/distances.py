"""IGN's distances (arXiv 2311.01462): δ(y) = distance(f(y), y) is the critic of
`losses.IGNLoss`, and `mode_seeking_ratio` its optional diversity term's ratio.
Pure functions of tensors, per sample where they say so.
"""

import tensorflow as tf

from ogan_ign import random_features

IGN_DISTANCES = ("l1", "l2", "l1_edges", "l1_random_features")


def _per_sample_mean(t):
    return tf.reduce_mean(tf.reshape(t, [tf.shape(t)[0], -1]), axis=-1)


def ign_distance(a, b, kind="l1"):
    """The paper's distance D(a, b) (here `distance`: D names the critic), per
    sample, d = a − b: mean over pixels of |d| ("l1", the paper's choice) or of d²
    ("l2"); "l1_edges" adds the same mean of |∂_h d| and of |∂_w d|, the
    differences of neighbouring pixels down and across (a, b of shape (n, H, W, …)):
    mean|d| + mean|d[i+1, j] − d[i, j]| + mean|d[i, j+1] − d[i, j]|. A blurred a
    loses b's edges, which the last two terms weigh as much as the pixels.
    "l1_random_features" adds, for each of the three feature maps h_l of a fixed
    random conv net φ (`random_features`), the mean of |h_l(a) − h_l(b)|:
    mean|d| + Σ_l mean|φ_l(a) − φ_l(b)|."""
    if kind not in IGN_DISTANCES:
        raise ValueError(f"unknown distance {kind!r}; expected one of {list(IGN_DISTANCES)}")
    diff = a - b
    if kind == "l2":
        return _per_sample_mean(tf.square(diff))
    l1 = _per_sample_mean(tf.abs(diff))
    if kind == "l1":
        return l1
    if kind == "l1_random_features":
        pairs = zip(random_features.features(a), random_features.features(b))
        return l1 + tf.add_n([_per_sample_mean(tf.abs(fa - fb)) for fa, fb in pairs])
    down = diff[:, 1:] - diff[:, :-1]
    across = diff[:, :, 1:] - diff[:, :, :-1]
    return l1 + _per_sample_mean(tf.abs(down)) + _per_sample_mean(tf.abs(across))


def mode_seeking_ratio(f_z, z):
    """The samples' spread against their noise's (mode seeking, Mao et al. 2019):
    the batch (n ≥ 2 per replica) split into pairs (z_i, z_{i+m}), m = ⌊n/2⌋,

        r = mean_i [ mean|f(z_i) − f(z_{i+m})| / mean|z_i − z_{i+m}| ]

    (inner means over pixels). A generator that maps distinct noise to one image
    has r = 0; IGN's diversity term λ_div / (r + ε) pushes r up."""
    m = tf.shape(z)[0] // 2
    spread = _per_sample_mean(tf.abs(f_z[:m] - f_z[m:2 * m]))
    return tf.reduce_mean(spread / _per_sample_mean(tf.abs(z[:m] - z[m:2 * m])))
