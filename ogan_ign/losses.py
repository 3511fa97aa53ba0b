"""The losses of the three models: one callable per model's whole loss
(`GANLoss`, `OGANLoss`, `IGNLoss`) and the pure functions of tensors they are
written with.

One idea runs through them: a GAN written as a single loss with stop-gradient
(arXiv 1903.01931, and the IGN analysis of arXiv 2311.01462). With `sg` the
stop-gradient and D a critic whose scores are *low for real data*,

    L = f(D(x)) + g(D(sg(G(z)))) + h(D(G(z))) − h(D(sg(G(z))))

gives the critic's weights the gradient of f(D(x)) + g(D(G(z))) and the
generator's weights the gradient of h(D(G(z))), with one tape and one optimizer.

A loss callable holds its hyper-parameters, receives the networks and the batch
(x_real, z), runs the networks in training mode, applies its own stop-gradient
and penalty, and returns (total, {name: term}). Nothing here owns a variable or
an optimizer.
"""

import dataclasses
from typing import Callable, Optional

import tensorflow as tf

from ogan_ign import augment
from ogan_ign.distances import IGN_DISTANCES, ign_distance, mode_seeking_ratio
from ogan_ign.split_pass import split_call


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


def single_loss(d_real, d_fake, d_fake_sg, objective="wgan", frozen=False):
    """The single-loss GAN: mean of f(D(x)) + g(D(sg G)) + h(D(G)) − h(D(sg G)).

    d_real = D(x_real), d_fake = D(G(z)), d_fake_sg = D(sg(G(z))): per-sample scores.
    The last two terms have value 0; they exist to carry h's gradient to G only.

    frozen: d_fake is D′(G(z)), a pass of the critic whose gradient reaches G
    only (`split_call`); the pair is then h(D′(G)) − sg h(D′(G)):
    value 0 again, G's gradient of h(D(G)), and no critic gradient — what the
    critic gradients of h(D(G)) − h(D(sg G)) sum to. The same loss and gradients.
    """
    on_real, on_fake, on_generated = objective_terms(objective)
    h_fake = on_generated(d_fake)
    pair = h_fake - (tf.stop_gradient(h_fake) if frozen else on_generated(d_fake_sg))
    return tf.reduce_mean(on_real(d_real) + on_fake(d_fake_sg) + pair)


def critic_loss(d_real, d_fake_sg, objective="wgan"):
    """The critic's part alone, mean f(D(x)) + g(D(sg G)) (the `loss/critic` metric)."""
    on_real, on_fake, _ = objective_terms(objective)
    return tf.reduce_mean(on_real(d_real) + on_fake(d_fake_sg))


PENALTIES = ("qp", "gp", None)


def qp_penalty(d_real, d_fake_sg, x_real, x_fake_sg):
    """GAN-QP quadratic penalty as the original O-GAN code has it, per sample:

        0.25 · (D(x_real) − D(sg x_fake))² / mean_pixels((x_real − sg x_fake)²)

    returned as its batch mean. It reaches the critic only.
    """
    t1 = d_real - d_fake_sg
    axes = list(range(1, len(x_real.shape)))
    pixel_mse = tf.reduce_mean(tf.square(x_real - x_fake_sg), axis=axes)
    return tf.reduce_mean(0.25 * tf.square(t1) / pixel_mse)


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


def pool(x, factor):
    """Images (batch, H, W, C) averaged over factor × factor blocks (H and W
    multiples of factor); factor 1 returns x."""
    if factor == 1:
        return x
    return tf.nn.avg_pool2d(x, factor, factor, "VALID")


# ------------------------------------------------------------ GAN, O-GAN
@dataclasses.dataclass(frozen=True)
class GANLoss:
    """The single-loss GAN with a Lipschitz penalty R on its critic:

        L = mean(f(D(x)) + g(D(sg G(z))) + h(D(G(z))) − h(D(sg G(z)))) + w·R

    D(x) = avg(critic(x)) (`critic_score`); (f, g, h) the `objective`'s terms;
    R the `penalty` ("qp": `qp_penalty`; "gp": `gradient_penalty`, its α drawn
    from the stateless seed pair `seed`; None: 0), w its `penalty_weight`.
    D(G(z)) is read as the frozen critic D′ (`single_loss`'s `frozen`): the same
    loss and gradients without the critic weight gradients of that pass, which
    the single loss only computes to cancel them. D′(G(z)) and D(sg G(z)) have one
    value: the critic runs over the fakes once (`split_call`).

    DiffAugment (`diffaugment`, an `augment` policy; '' off): the critic sees
    T(x_real), T(G(z)) and T(sg G(z)), with one draw of T (seed pair
    `augment_seed`) for both fakes, so h(D(T(G))) − h(D(T(sg G))) still has
    value 0 and its critic gradients still cancel; the real batch gets a draw of
    its own, as in the paper, where T draws per image. R is taken on what the
    critic sees, T(x_real) and T(sg G(z)): its scores are D's on those images,
    so the GAN-QP quotient divides by their distance, and GP constrains D
    between them.
    """
    objective: str = "wgan"
    penalty: Optional[str] = "qp"
    penalty_weight: float = 1.0
    seed: Optional[tf.Tensor] = None
    diffaugment: str = ""
    augment_seed: Optional[tf.Tensor] = None

    def __post_init__(self):
        objective_terms(self.objective)  # a one-line error for an unknown name
        augment.parse_policy(self.diffaugment)
        if self.penalty not in PENALTIES:
            raise ValueError(f"unknown penalty {self.penalty!r}; "
                             f"expected one of {list(PENALTIES)}")

    def __call__(self, generator, critic, x_real, z):
        total, terms, _, _, _ = self.gan_terms(generator, critic, x_real, z)
        return total, terms

    def gan_terms(self, generator, critic, x_real, z):
        """(total, terms, G(z), the real images as the critic saw them, (critic(x),
        critic′(G(z)), critic(sg G(z))) as the critic saw them): the loss above on
        one batch; critic′ is the frozen critic."""
        x_fake = generator(z, training=True)
        x_fake_sg = tf.stop_gradient(x_fake)  # the critic's fakes: no gradient reaches G
        seen = (self.augmented(x_real, x_fake, x_fake_sg) if self.diffaugment
                else (x_real, x_fake, x_fake_sg))  # what the critic sees
        e_real = critic(seen[0], training=True)
        # seen[1] and seen[2] are one value: D′ (reaches G only) and D (its weights only).
        e_fake, e_fake_sg = split_call(critic, seen[1])
        d_real, d_fake, d_fake_sg = (critic_score(e) for e in (e_real, e_fake, e_fake_sg))
        lipschitz = self.lipschitz_penalty(critic, seen[0], seen[2], d_real, d_fake_sg)
        total = (single_loss(d_real, d_fake, d_fake_sg, self.objective, frozen=True)
                 + self.penalty_weight * lipschitz)
        _, _, on_generated = objective_terms(self.objective)
        return total, {
            "loss/critic": critic_loss(d_real, d_fake_sg, self.objective),
            "loss/generator": tf.reduce_mean(on_generated(d_fake)),
            "loss/penalty": lipschitz,
            "score/real": tf.reduce_mean(d_real),
            "score/fake": tf.reduce_mean(d_fake),
        }, x_fake, seen[0], (e_real, e_fake, e_fake_sg)

    def augmented(self, x_real, x_fake, x_fake_sg):
        """(T(x_real), T(x_fake), T(x_fake_sg)): one draw for both fakes, another
        for the real batch (`augment_seed` folded with 0 and 1)."""
        if self.augment_seed is None:
            raise ValueError("DiffAugment draws T: give GANLoss an augment_seed")
        seed_real, seed_fake = (tf.random.experimental.stateless_fold_in(
            tf.cast(self.augment_seed, tf.int64), i) for i in (0, 1))
        return (augment.diff_augment(x_real, self.diffaugment, seed_real),
                augment.diff_augment(x_fake, self.diffaugment, seed_fake),
                augment.diff_augment(x_fake_sg, self.diffaugment, seed_fake))

    def lipschitz_penalty(self, critic, x_real, x_fake_sg, d_real, d_fake_sg):
        """R, unweighted, on D's scores of x_real and sg(G(z)); it reaches the critic only."""
        x_real = tf.cast(x_real, d_real.dtype)
        x_fake_sg = tf.cast(x_fake_sg, d_real.dtype)
        if self.penalty == "qp":
            return qp_penalty(d_real, d_fake_sg, x_real, x_fake_sg)
        if self.penalty == "gp":
            if self.seed is None:
                raise ValueError("the gradient penalty draws α: give GANLoss a seed")
            alpha = tf.random.stateless_uniform([tf.shape(x_real)[0]], seed=self.seed,
                                                dtype=x_real.dtype)

            def score(x):
                return critic_score(critic(x, training=True))

            return gradient_penalty(score, x_real, x_fake_sg, alpha)
        return tf.zeros([], d_real.dtype)


@dataclasses.dataclass(frozen=True)
class OGANLoss(GANLoss):
    """O-GAN (arXiv 1903.01931): the single-loss GAN whose critic is avg(E(·)),
    minus λ·ρ(z, E(G(z))). With "wgan" and GAN-QP it is the original code's

        t1   = avg(E(x_real)) − avg(E(sg x_fake))
        t2   = avg(E(x_fake)) − avg(E(sg x_fake))
        loss = mean(t1 + t2 − λ·ρ(z, E(x_fake)))
               + mean(0.25·t1² / mean_pixels((x_real − sg x_fake)²))

    E maps images to (batch, nz); ρ (`pearson`) reaches E and G through E(G(z)).
    It is computed in two halves of equal value, as the GAN's pair is:

        ρ = ρ(z, E(sg G(z))) + ρ(z, E′(G(z))) − sg ρ(z, E′(G(z)))

    the first (E's gradient) on the critic's pass over sg G(z), the second (G's
    gradient) on the frozen critic's pass E′ over G(z) (one pass for both,
    `split_call`); their sum has ρ's value and gradients. Under DiffAugment the
    critic's passes see T(·), and ρ reads E of the un-augmented G(z) (one more
    encoder pass, split too): E must encode G(z) itself, as reconstruction uses
    it on clean images.

    encoder_corr_weight λ_E > 0 adds −λ_E·ρ(z, E(sg G(z))), the first half once
    more: the encoder is pulled towards inverting G with λ + λ_E, the generator
    towards being invertible with λ alone; its value equals ρ's, so the loss
    reads −(λ + λ_E)·ρ.

    recon_weight λ_x > 0 adds λ_x·r, r = mean |G(s·N(E(x))) − x| (s = recon_scale,
    N = `standardise`): the reconstruction O-GAN reads off at inference, asked of
    it on the real batch (as the critic saw it), reaching E and G. N removes
    E(x)'s per-sample mean, the critic's score, so the term pulls on what the
    score does not read. encoder_recon_weight λ_xE > 0 adds λ_xE·r′, r′ = r
    through a frozen G′: E learns to invert G on real images, G is not pulled
    towards them. One pass of G serves both (`split_call`), r written in halves
    as ρ is: r = r(G′) + r(G) − sg r(G). Neither is in O-GAN's loss (0 by
    default). recon_pool p > 1 compares G(·) and x average-pooled p×p (`pool`):
    the reconstruction is asked for at 1/p of the resolution, the finer detail
    left to the adversarial terms.

    real_corr_weight λ_r > 0 adds −λ_r·ρ(z_x, E(G(z_x))), z_x = sg(s·N(E(x))):
    the correlation term once more, its noise drawn from the codes of the real
    batch instead of N(0, I) — E inverting G, and G invertible, where
    reconstruction reads them — in the same two halves as ρ. No pixel is
    compared: G is asked for images E encodes as x's code, not for x. One pass
    of G (shared with the reconstruction terms) and one of E.
    """
    corr_weight: float = 0.5
    encoder_corr_weight: float = 0.0
    recon_weight: float = 0.0
    encoder_recon_weight: float = 0.0
    recon_scale: float = 0.9
    recon_pool: int = 1
    real_corr_weight: float = 0.0

    @staticmethod
    def correlation(z, e_to_inputs, e_to_weights):
        """(ρ, ρ's encoder half): mean ρ(z, E(·)) from the two outputs of one
        `split_call` of E, in the halves the class docstring writes out."""
        rho_encoder = tf.reduce_mean(pearson(z, tf.cast(e_to_weights, z.dtype)))
        rho_generator = tf.reduce_mean(pearson(z, tf.cast(e_to_inputs, z.dtype)))
        return rho_encoder + rho_generator - tf.stop_gradient(rho_generator), rho_encoder

    def __call__(self, generator, encoder, x_real, z):
        total, terms, x_fake, x_seen, (e_real, e_fake, e_fake_sg) = self.gan_terms(
            generator, encoder, x_real, z)
        if self.diffaugment:
            e_fake, e_fake_sg = split_call(encoder, x_fake)
        rho, rho_encoder = self.correlation(tf.cast(z, total.dtype), e_fake, e_fake_sg)
        total = total - self.corr_weight * rho - self.encoder_corr_weight * rho_encoder
        terms = {**terms, "corr/z": rho}
        if not (self.recon_weight or self.encoder_recon_weight or self.real_corr_weight):
            return total, terms
        code = self.recon_scale * standardise(tf.cast(e_real, total.dtype))
        x_to_code, x_to_generator = split_call(generator, code)
        if self.recon_weight or self.encoder_recon_weight:
            x_seen = pool(tf.cast(x_seen, total.dtype), self.recon_pool)
            recon_encoder, recon_generator = (
                tf.reduce_mean(tf.abs(pool(tf.cast(x_rec, total.dtype), self.recon_pool)
                                      - x_seen))
                for x_rec in (x_to_code, x_to_generator))
            recon = recon_encoder + recon_generator - tf.stop_gradient(recon_generator)
            total = (total + self.recon_weight * recon
                     + self.encoder_recon_weight * recon_encoder)
            terms["recon/l1"] = recon
        if self.real_corr_weight:
            # G(sg code) reaches G's weights only; E′ over it passes G's gradient.
            rho_real, _ = self.correlation(tf.stop_gradient(code),
                                           *split_call(encoder, x_to_generator))
            total = total - self.real_corr_weight * rho_real
            terms["corr/real"] = rho_real
        return total, terms


# ------------------------------------------------------------------ IGN
# Idempotent Generative Network (arXiv 2311.01462), read as a single-loss GAN
# whose critic is δ(y) = distance(f(y), y) (ogan_ign/distances.py) and whose
# generator is the same f.


def tightness_clamp(l_tight, l_rec, a=1.5):
    """The paper's smooth clamp (sec. 2.3): tanh(L̃_tight / (a·L_rec)) · a·L_rec.

    L̃_tight = −δ(sg f(z)) ≤ 0 per sample, so the result lies in (−a·L_rec, 0]:
    once a fake is `a` times worse reconstructed than the real data, the critic
    stops pushing it away. `a=None` returns L̃_tight unchanged. The caller passes
    l_rec already stop-gradiented (see `IGNLoss`).
    """
    if a is None:
        return l_tight
    scale = a * l_rec
    return tf.tanh(l_tight / scale) * scale


@dataclasses.dataclass(frozen=True)
class IGNLoss:
    """IGN's final objective (sec. 2.3) as one stop-gradient loss, with
    δ(y) = distance(f(y), y) (`distances.ign_distance` of kind `distance`):

        L_rec   = δ(x)                                   (critic on real data)
        L_tight = clamp(−δ(sg f(z)))                     (critic on fakes: outer f only)
        L_idem  = δ′(f(z)), trained as δ′(f(z)) − sg δ′(f(z))   (generator: inner f only)
        L       = λ_rec·L_rec + λ_idem·L_idem + λ_tight·L_tight

    δ′ is δ with the outer f's weights frozen: the paper's copy f′ in
    distance(f′(f(z)), f(z)), without copying f. L_idem's pair has value 0, and
    its gradient is the single loss's h(D(G)) − h(D(sg G)) with D = δ, G = f,
    whose outer-f gradients cancel: the same gradients (tests/test_ign.py,
    float64), without computing the outer f's weight gradients for L_idem. The
    outer f runs over f(z) once for δ′ and δ(sg f(z)) (`split_call`): three
    forward passes of f a step, not four. "ign/idem" reports
    δ(f(z)). The clamp (`tightness_clamp`, a = `tight_clamp`, None for none)
    scales with L_rec = batch_mean(δ(x)) (the global batch's under a strategy),
    stop-gradiented: a gradient through the bound would reward worse reconstruction.
    With `lambda_diversity` λ_div > 0, L gains λ_div / (r + ε), r the samples'
    `mode_seeking_ratio` (ε = 1e-5; not the paper's): a generator term, through f(z)
    (the inner f) only, as in the paper's copy form; "ign/diversity" reports r.
    """
    lambda_rec: float = 20.0
    lambda_idem: float = 20.0
    lambda_tight: float = 2.5  # or a scalar tensor (IGN.tight_weight)
    tight_clamp: Optional[float] = 1.5
    distance: str = "l1"
    batch_mean: Callable = tf.reduce_mean
    lambda_diversity: float = 0.0

    def __post_init__(self):
        if not self.lambda_diversity >= 0:
            raise ValueError(f"lambda_diversity must be ≥ 0, got {self.lambda_diversity}")
        if self.distance not in IGN_DISTANCES:
            raise ValueError(f"unknown distance {self.distance!r}; "
                             f"expected one of {list(IGN_DISTANCES)}")
        if self.tight_clamp is not None and self.tight_clamp <= 0:
            raise ValueError(f"tight_clamp must be positive or None, got {self.tight_clamp}")

    def __call__(self, f, x_real, z):
        # f's output dtype (float32 under mixed precision), so that δ compares
        # like with like; f's layers cast their inputs.
        dtype = f.outputs[0].dtype
        x_real, z = tf.cast(x_real, dtype), tf.cast(z, dtype)
        f_x = f(x_real, training=True)
        f_z = f(z, training=True)
        f_z_sg = tf.stop_gradient(f_z)  # the fakes as the critic sees them: the inner f frozen
        # f(f(z)) once: through the outer f as a frozen copy (its gradients in L_idem
        # cancel: none computed), and through its weights only, as the critic.
        ff_z, ff_z_sg = split_call(f, f_z)
        delta_real = ign_distance(f_x, x_real, self.distance)
        delta_fake = ign_distance(ff_z, f_z, self.distance)
        delta_fake_sg = ign_distance(ff_z_sg, f_z_sg, self.distance)
        l_rec = None if self.tight_clamp is None else tf.stop_gradient(self.batch_mean(delta_real))
        l_tight = tightness_clamp(-delta_fake_sg, l_rec, self.tight_clamp)
        idem_pair = delta_fake - tf.stop_gradient(delta_fake)  # value 0: L_idem's gradient
        # Means taken term by term: x and z batches need not be the same size.
        # λ_tight may be a tensor (IGN's controlled weight): in the loss's dtype.
        total = (self.lambda_rec * tf.reduce_mean(delta_real)
                 + self.lambda_idem * tf.reduce_mean(idem_pair)
                 + tf.cast(self.lambda_tight, l_tight.dtype) * tf.reduce_mean(l_tight))
        terms = {"ign/rec": tf.reduce_mean(delta_real),
                 "ign/idem": tf.reduce_mean(delta_fake),
                 "ign/tight": tf.reduce_mean(l_tight),
                 **idempotence_gaps(z, f_z, ff_z_sg)}
        if self.lambda_diversity:
            ratio = mode_seeking_ratio(f_z, z)
            total = total + self.lambda_diversity / (ratio + 1e-5)
            terms["ign/diversity"] = ratio
        return total, terms


def idempotence_gaps(z, f_z, ff_z):
    """Root-mean-square distances per sample, averaged: "gap/f_z" is the step
    z → f(z), "gap/ff_z" the step f(z) → f(f(z)); f is idempotent on its samples
    when the second is small next to the first. Diagnostics: no gradient."""
    z, f_z, ff_z = (tf.stop_gradient(t) for t in (z, f_z, ff_z))
    return {"gap/ff_z": tf.reduce_mean(tf.sqrt(ign_distance(ff_z, f_z, "l2"))),
            "gap/f_z": tf.reduce_mean(tf.sqrt(ign_distance(f_z, z, "l2")))}
