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

# (f, g, h) for each objective, in the sign convention of the original O-GAN
# code: the critic pushes real scores down and fake scores up, the generator
# pushes fake scores down.
OBJECTIVES = {
    # WGAN: f = t, g = −t, h = t, so L = D(x) − 2·D(sg(G)) + D(G).
    "wgan": (lambda t: t, lambda t: -t, lambda t: t),
    # Hinge: the critic wants D(x) ≤ −1 and D(G) ≥ 1; the generator lowers D(G).
    "hinge": (lambda t: tf.nn.relu(1.0 + t), lambda t: tf.nn.relu(1.0 - t), lambda t: t),
    # Non-saturating logistic, with −D as the "realness" logit.
    "ns": (tf.nn.softplus, lambda t: tf.nn.softplus(-t), tf.nn.softplus),
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
