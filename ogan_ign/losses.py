"""The losses of the three models, as pure functions of tensors.

One idea runs through them: a GAN written as a single loss with stop-gradient
(arXiv 1903.01931, and the IGN analysis of arXiv 2311.01462). With `sg` the
stop-gradient and D a critic whose scores are *low for real data*,

    L = f(D(x)) + g(D(sg(G(z)))) + h(D(G(z))) − h(D(sg(G(z))))

gives the critic's weights the gradient of f(D(x)) + g(D(G(z))) and the
generator's weights the gradient of h(D(G(z))), with one tape and one optimizer.
Nothing here owns a variable or an optimizer.
"""

import tensorflow as tf

def _identity(t):
    return t


def _negate(t):
    return -t


def _hinge_real(t):
    return tf.nn.relu(1.0 + t)


def _hinge_fake(t):
    return tf.nn.relu(1.0 - t)


def _softplus_negated(t):
    return tf.nn.softplus(-t)


# (f, g, h) for each objective, in the sign convention of the original O-GAN
# code: the critic pushes real scores down and fake scores up, the generator
# pushes fake scores down. (Named functions, not lambdas: AutoGraph cannot
# tell apart several lambdas written on one line.)
OBJECTIVES = {
    # WGAN: f = t, g = −t, h = t, so L = D(x) − 2·D(sg(G)) + D(G).
    "wgan": (_identity, _negate, _identity),
    # Hinge: the critic wants D(x) ≤ −1 and D(G) ≥ 1; the generator lowers D(G).
    "hinge": (_hinge_real, _hinge_fake, _identity),
    # Non-saturating logistic, with −D as the "realness" logit.
    "ns": (tf.nn.softplus, _softplus_negated, tf.nn.softplus),
}


def objective_terms(name):
    """Returns (f, g, h) for an objective name, or a one-line ValueError."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def single_loss(d_real, d_fake, d_fake_sg, objective="wgan"):
    """The single-loss GAN: mean of f(D(x)) + g(D(sg G)) + h(D(G)) − h(D(sg G)).

    d_real = D(x_real), d_fake = D(G(z)), d_fake_sg = D(sg(G(z))): per-sample scores.
    The last two terms have value 0; they exist to carry h's gradient to G only.
    """
    f, g, h = objective_terms(objective)
    per_sample = f(d_real) + g(d_fake_sg) + h(d_fake) - h(d_fake_sg)
    return tf.reduce_mean(per_sample)


def critic_loss(d_real, d_fake_sg, objective="wgan"):
    """The critic's part alone, mean f(D(x)) + g(D(sg G)) (the `loss/critic` metric)."""
    f, g, _ = objective_terms(objective)
    return tf.reduce_mean(f(d_real) + g(d_fake_sg))


def qp_penalty(d_real, d_fake_sg, x_real, x_fake_sg):
    """GAN-QP quadratic penalty as the original O-GAN code has it, per sample:

        0.25 · (D(x_real) − D(sg x_fake))² / mean_pixels((x_real − sg x_fake)²)

    returned as its batch mean. It reaches the critic only.
    """
    delta = d_real - d_fake_sg
    axes = list(range(1, len(x_real.shape)))
    distance = tf.reduce_mean(tf.square(x_real - x_fake_sg), axis=axes)
    return tf.reduce_mean(0.25 * tf.square(delta) / distance)


def gradient_penalty(score_fn, x_real, x_fake_sg, alpha):
    """WGAN-GP (arXiv 1704.00028, eq. 3): mean (‖∇_x̂ D(x̂)‖₂ − 1)² on
    x̂ = α·x_real + (1 − α)·x_fake, α ~ U[0, 1] per sample (given by the caller).

    The weight λ is applied by the caller. score_fn maps images to scores.
    """
    alpha = tf.reshape(alpha, [-1] + [1] * (len(x_real.shape) - 1))
    x_hat = alpha * x_real + (1.0 - alpha) * x_fake_sg
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        d_hat = score_fn(x_hat)
    grad = tape.gradient(d_hat, x_hat)
    axes = list(range(1, len(x_real.shape)))
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


def pearson(a, b):
    """Pearson correlation ρ(a, b) over the last axis: centre, l2-normalise, dot.

    O-GAN's −λ·ρ(z, E(G(z))) uses it across the nz dims of each sample.
    """
    a = a - tf.reduce_mean(a, axis=-1, keepdims=True)
    b = b - tf.reduce_mean(b, axis=-1, keepdims=True)
    a = tf.math.l2_normalize(a, axis=-1)
    b = tf.math.l2_normalize(b, axis=-1)
    return tf.reduce_sum(a * b, axis=-1)


def standardise(z):
    """Per sample over the last axis: (z − avg(z)) / std(z), O-GAN's N(z)."""
    mean, variance = tf.nn.moments(z, axes=[-1], keepdims=True)
    return (z - mean) / tf.sqrt(variance + 1e-12)


# ------------------------------------------------------------------ IGN
# Idempotent Generative Network (arXiv 2311.01462), read as a single-loss GAN
# whose critic is δ(y) = D(f(y), y) and whose generator is the same f.

IGN_DISTANCES = ("l1", "l2")


def ign_distance(a, b, kind="l1"):
    """The paper's D(a, b), per sample: mean over pixels of |a − b| ("l1", the
    paper's choice) or of (a − b)² ("l2")."""
    if kind not in IGN_DISTANCES:
        raise ValueError(f"unknown distance {kind!r}; expected one of {list(IGN_DISTANCES)}")
    diff = a - b
    per_pixel = tf.abs(diff) if kind == "l1" else tf.square(diff)
    return tf.reduce_mean(tf.reshape(per_pixel, [tf.shape(diff)[0], -1]), axis=-1)


def tightness_clamp(l_tight, l_rec, a=1.5):
    """The paper's smooth clamp (sec. 2.3): tanh(L̃_tight / (a·L_rec)) · a·L_rec.

    L̃_tight = −δ(sg f(z)) ≤ 0 per sample, so the result lies in (−a·L_rec, 0]:
    once a fake is `a` times worse reconstructed than the real data, the critic
    stops pushing it away. `a=None` returns L̃_tight unchanged. The caller passes
    l_rec already stop-gradiented (see `ign_loss`).
    """
    if a is None:
        return l_tight
    scale = a * l_rec
    return tf.tanh(l_tight / scale) * scale


def ign_loss(delta_real, delta_fake, delta_fake_sg, lambda_rec=20.0, lambda_idem=20.0,
             lambda_tight=2.5, tight_clamp=1.5, rec_scale=None):
    """IGN's final objective (sec. 2.3) as one stop-gradient loss; returns
    (total, {"ign/rec", "ign/idem", "ign/tight"}).

    delta_real = δ(x) = D(f(x), x), delta_fake = δ(f(z)) = D(f(f(z)), f(z)),
    delta_fake_sg = δ(sg f(z)) = D(f(sg f(z)), sg f(z)): per-sample distances.

        L_rec   = δ(x)                               (critic on real data)
        L_tight = clamp(−δ(sg f(z)))                 (critic on fakes: outer f only)
        L_idem  = δ(f(z)) − δ(sg f(z))   [value 0]   (generator: inner f only)

    The outer-f gradients of the two L_idem terms cancel, which is the paper's
    frozen copy f′ in D(f′(f(z)), f(z)) without the copy. The clamp's L_rec is
    the batch mean of δ(x), stop-gradiented: fakes and reals are not paired per
    sample, and a gradient through the bound would reward worse reconstruction.
    The reported "ign/idem" is the paper's L_idem value, mean δ(f(z)).
    `rec_scale` replaces that batch mean (IGN passes the mean over all replicas).
    """
    l_rec_scale = tf.stop_gradient(tf.reduce_mean(delta_real) if rec_scale is None
                                   else rec_scale)
    l_tight = tightness_clamp(-delta_fake_sg, l_rec_scale, tight_clamp)
    l_idem = delta_fake - delta_fake_sg
    # Means taken term by term: x and z batches need not be the same size.
    total = (lambda_rec * tf.reduce_mean(delta_real) + lambda_idem * tf.reduce_mean(l_idem)
             + lambda_tight * tf.reduce_mean(l_tight))
    terms = {
        "ign/rec": tf.reduce_mean(delta_real),
        "ign/idem": tf.reduce_mean(delta_fake),
        "ign/tight": tf.reduce_mean(l_tight),
    }
    return total, terms
