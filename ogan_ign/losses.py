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


# (on_real, on_fake, on_generated) = (f, g, h) of the module docstring, in the
# sign convention of the original O-GAN code: the critic pushes real scores down
# and fake scores up, the generator pushes fake scores down. (Named functions,
# not lambdas: AutoGraph cannot tell apart several lambdas on one line.)
OBJECTIVES = {
    # WGAN: f = t, g = −t, h = t, so L = D(x) − 2·D(sg(G)) + D(G).
    "wgan": (_identity, _negate, _identity),
    # Hinge: the critic wants D(x) ≤ −1 and D(G) ≥ 1; the generator lowers D(G).
    "hinge": (_hinge_real, _hinge_fake, _identity),
    # Non-saturating logistic, with −D as the "realness" logit.
    "ns": (tf.nn.softplus, _softplus_negated, tf.nn.softplus),
}


def objective_terms(name):
    """Returns (on_real, on_fake, on_generated) for an objective name, or a one-line ValueError."""
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; expected one of {sorted(OBJECTIVES)}")
    return OBJECTIVES[name]


def critic_score(outputs):
    """D(x) = avg(outputs): the mean of a critic's outputs over its last axis, in
    float32 at least. A one-output critic is an ordinary critic; for O-GAN's
    encoder it is avg(E(x))."""
    if outputs.dtype in (tf.float16, tf.bfloat16):
        outputs = tf.cast(outputs, tf.float32)
    return tf.reduce_mean(tf.reshape(outputs, [tf.shape(outputs)[0], -1]), axis=-1)


def single_loss(d_real, d_fake, d_fake_sg, objective="wgan"):
    """The single-loss GAN: mean of f(D(x)) + g(D(sg G)) + h(D(G)) − h(D(sg G)).

    d_real = D(x_real), d_fake = D(G(z)), d_fake_sg = D(sg(G(z))): per-sample scores.
    The last two terms have value 0; they exist to carry h's gradient to G only.
    """
    on_real, on_fake, on_generated = objective_terms(objective)
    per_sample = (on_real(d_real) + on_fake(d_fake_sg)
                  + on_generated(d_fake) - on_generated(d_fake_sg))
    return tf.reduce_mean(per_sample)


def critic_loss(d_real, d_fake_sg, objective="wgan"):
    """The critic's part alone, mean f(D(x)) + g(D(sg G)) (the `loss/critic` metric)."""
    on_real, on_fake, _ = objective_terms(objective)
    return tf.reduce_mean(on_real(d_real) + on_fake(d_fake_sg))


def gan_loss(e_real, e_fake, e_fake_sg, penalty, *, objective, penalty_weight):
    """The single-loss GAN with a Lipschitz penalty on its critic; (total, terms).

        L = mean(f(D(x)) + g(D(sg G(z))) + h(D(G(z))) − h(D(sg G(z)))) + w·penalty

    e_* are the critic's outputs on x_real, G(z) and sg(G(z)); D = `critic_score`.
    `penalty` is the unweighted penalty (`qp_penalty` or `gradient_penalty`, 0 for none).
    """
    d_real, d_fake, d_fake_sg = critic_score(e_real), critic_score(e_fake), critic_score(e_fake_sg)
    _, _, on_generated = objective_terms(objective)
    total = single_loss(d_real, d_fake, d_fake_sg, objective) + penalty_weight * penalty
    return total, {
        "loss/critic": critic_loss(d_real, d_fake_sg, objective),
        "loss/generator": tf.reduce_mean(on_generated(d_fake)),
        "loss/penalty": penalty,
        "score/real": tf.reduce_mean(d_real),
        "score/fake": tf.reduce_mean(d_fake),
    }


def ogan_loss(z, e_real, e_fake, e_fake_sg, penalty, *, corr_weight, objective, penalty_weight):
    """O-GAN (arXiv 1903.01931): the single-loss GAN whose critic is avg(E(·)), minus
    λ·ρ(z, E(G(z))); (total, terms). With "wgan" and GAN-QP it is the original code's

        t1   = avg(E(x_real)) − avg(E(sg x_fake))
        t2   = avg(E(x_fake)) − avg(E(sg x_fake))
        loss = mean(t1 + t2 − λ·ρ(z, E(x_fake))) + mean(0.25·t1² / mean_pixels((x_real − sg x_fake)²))

    e_* = E(x_real), E(G(z)), E(sg G(z)), each (batch, nz). ρ reaches E and G
    through e_fake.
    """
    total, terms = gan_loss(e_real, e_fake, e_fake_sg, penalty, objective=objective,
                            penalty_weight=penalty_weight)
    rho = tf.reduce_mean(pearson(tf.cast(z, total.dtype), tf.cast(e_fake, total.dtype)))
    terms["corr/z"] = rho
    return total - corr_weight * rho, terms


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


def ign_loss(x_real, z, f_x, f_z, ff_z, ff_z_sg, *, lambda_rec, lambda_idem, lambda_tight,
             tight_clamp, distance, batch_mean=tf.reduce_mean):
    """IGN's final objective (sec. 2.3) as one stop-gradient loss; (total, terms).
    f_x = f(x), f_z = f(z), ff_z = f(f(z)), ff_z_sg = f(sg f(z)); δ(y) = D(f(y), y):

        L_rec   = δ(x)                                   (critic on real data)
        L_tight = clamp(−δ(sg f(z)))                     (critic on fakes: outer f only)
        L_idem  = δ(f(z)), trained as δ(f(z)) − δ(sg f(z))   (generator: inner f only)

    L_idem's pair has value 0 and its outer-f gradients cancel: the paper's frozen
    copy f′ in D(f′(f(z)), f(z)) without the copy ("ign/idem" reports δ(f(z))).
    The clamp's L_rec is batch_mean(δ(x)) (the global batch's under a strategy),
    stop-gradiented: a gradient through the bound would reward worse reconstruction.
    """
    f_z_sg = tf.stop_gradient(f_z)
    delta_real = ign_distance(f_x, x_real, distance)
    delta_fake = ign_distance(ff_z, f_z, distance)
    delta_fake_sg = ign_distance(ff_z_sg, f_z_sg, distance)
    l_rec = None if tight_clamp is None else tf.stop_gradient(batch_mean(delta_real))
    l_tight = tightness_clamp(-delta_fake_sg, l_rec, tight_clamp)
    idem_pair = delta_fake - delta_fake_sg
    # Means taken term by term: x and z batches need not be the same size.
    total = (lambda_rec * tf.reduce_mean(delta_real) + lambda_idem * tf.reduce_mean(idem_pair)
             + lambda_tight * tf.reduce_mean(l_tight))
    return total, {"ign/rec": tf.reduce_mean(delta_real), "ign/idem": tf.reduce_mean(delta_fake),
                   "ign/tight": tf.reduce_mean(l_tight), **idempotence_gaps(z, f_z, ff_z_sg)}


def idempotence_gaps(z, f_z, ff_z):
    """Root-mean-square distances per sample, averaged: "gap/f_z" is the step
    z → f(z), "gap/ff_z" the step f(z) → f(f(z)); f is idempotent on its samples
    when the second is small next to the first. Diagnostics: no gradient."""
    z, f_z, ff_z = (tf.stop_gradient(t) for t in (z, f_z, ff_z))
    return {"gap/ff_z": tf.reduce_mean(tf.sqrt(ign_distance(ff_z, f_z, "l2"))),
            "gap/f_z": tf.reduce_mean(tf.sqrt(ign_distance(f_z, z, "l2")))}
