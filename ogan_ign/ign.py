"""IGN: the Idempotent Generative Network (Shocher et al., arXiv 2311.01462)
trained as a single-loss GAN.

One network f maps images to images. Its critic is the reconstruction distance
δ(y) = distance(f(y), y) and its generator is f itself, so with stop-gradient `sg`

    L = λ_rec·δ(x) + λ_tight·clamp(−δ(sg f(z))) + λ_idem·(δ(f(z)) − δ(sg f(z)))

is the paper's final objective (its sec. 2.3): the last bracket has value 0 and
reaches only the inner f, which is what the paper's frozen copy f′ in
distance(f′(f(z)), f(z)) does, without copying f every step (see `losses.IGNLoss`).

Noise is image-shaped: N(0, I), or "fourier" noise whose 2-D spectrum has,
frequency by frequency, the mean and standard deviation of the training images'
spectrum (computed once by `adapt` and saved with the model as a weight).
Samples may be drawn at a temperature τ, z = m + τ·(z₁ − m) about the noise's
mean m; f trains, and its standing statistics are measured, at τ = 1.
"""

import dataclasses
from typing import Optional

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import distances, losses, one_loss, standing
from ogan_ign.settings import hparam

NOISES = ("gaussian", "fourier")


@dataclasses.dataclass(frozen=True)
class IGNSettings:
    """IGN's hyper-parameters (the paper's values): each default and help, once."""
    lambda_rec: float = hparam(20.0, "weight of L_rec = δ(x) = distance(f(x), x)")
    lambda_idem: float = hparam(20.0, "weight of L_idem = δ(f(z)) = distance(f′(f(z)), f(z)), "
                                      "f′ a frozen f: trains the inner f")
    lambda_tight: float = hparam(2.5, "weight of L_tight = −δ(f′(z)) = −distance(f(f′(z)), "
                                      "f′(z)), clamped: trains the outer f")
    tight_clamp: Optional[float] = hparam(1.5, "a of the clamp tanh(L_tight / (a·L_rec))·a·L_rec; "
                                               "none turns it off")
    distance: str = hparam("l1", "the distance of δ: l1 (mean |·|, the paper's), l2 "
                                 "(mean (·)²), l1_edges (l1 plus l1 of the differences "
                                 "of neighbouring pixels, down and across) or "
                                 "l1_random_features (l1 plus l1 of each feature map of a "
                                 "fixed random 3-layer conv net)",
                           choices=distances.IGN_DISTANCES)
    lambda_diversity: float = hparam(
        0.0, "weight of a mode-seeking term λ_div / (r + 1e-5) on the inner f, r = the "
             "mean over the batch's pairs of |f(z) − f(z′)| / |z − z′| (per-pixel means); "
             "0: off (the paper)", minimum=0.0)
    noise: str = hparam("gaussian", "gaussian: N(0, I) images (the paper's); fourier: the "
                                    "data's per-frequency spectrum statistics")
    tight_target: Optional[float] = hparam(
        None, "γ of an equilibrium control of λ_tight (BEGAN's k_t): after every step "
              "λ_tight ← max(0, λ_tight + tight_gain·(γ − δ(f(z)) / δ(x))), batch means, "
              "starting at --lambda_tight; none: λ_tight stays constant (the paper)")
    tight_gain: float = hparam(0.01, "the gain of the λ_tight control per step "
                                     "(with --tight_target)")
    temperature: float = hparam(
        1.0, "τ, the spread of the noise samples are drawn from about its mean (0 for "
             "gaussian, the data's mean spectrum for fourier): z = m + τ·(z₁ − m), z₁ the "
             "training noise; τ > 1 spreads the samples (recall), τ < 1 gathers them "
             "(precision). Sampling only (generate, figures, evaluate.py, the export's "
             "sample): training and standing statistics draw with τ = 1; a resumed run "
             "may change it", resumable=True)


# ------------------------------------------------------------ Fourier noise
def fourier_statistics(images):
    """Per-frequency statistics of images (N, S, S, C) → float32 (4, S, S, C):
    mean of Re F, mean of Im F, std of Re F, std of Im F, with F the 2-D FFT
    of each channel."""
    images = np.asarray(images, np.float64)
    spectrum = np.fft.fft2(images, axes=(1, 2))
    return np.stack([spectrum.real.mean(0), spectrum.imag.mean(0),
                     spectrum.real.std(0), spectrum.imag.std(0)]).astype(np.float32)


def _hermitian_scale(size):
    """√2 at every frequency except the self-conjugate ones (k = −k mod S), 1 there.

    The noise keeps the real part of ifft2(Z) for a Z drawn independently per
    frequency; that equals ifft2 of (Z[k] + conj Z[−k]) / 2, which averages two
    independent draws (halving the variance) except where k = −k.
    """
    own = np.zeros(size, bool)
    own[0] = True
    if size % 2 == 0:
        own[size // 2] = True
    self_conjugate = own[:, None] & own[None, :]
    return np.where(self_conjugate, 1.0, np.sqrt(2.0)).astype(np.float32)


def fourier_noise(statistics, batch_size, seed, temperature=1.0):
    """Images (batch, S, S, C) whose spectrum matches `statistics` in mean and std
    per frequency (and per real / imaginary part). seed: a stateless seed pair.
    temperature τ multiplies every std: the images are m + τ·(z₁ − m), z₁ those of
    τ = 1 and m = Re ifft2(mean spectrum), the noise's mean (the transform is linear)."""
    statistics = tf.convert_to_tensor(statistics)
    mean_re, mean_im, std_re, std_im = tf.unstack(statistics)
    size = statistics.shape[1]
    scale = temperature * tf.constant(_hermitian_scale(size), statistics.dtype)[:, :, None]
    eps = tf.random.stateless_normal((2, batch_size) + tuple(statistics.shape[1:]), seed=seed,
                                     dtype=statistics.dtype)
    real = mean_re + scale * std_re * eps[0]
    imag = mean_im + scale * std_im * eps[1]
    spectrum = tf.complex(real, imag)
    # tf.signal.ifft2d transforms the two innermost axes: put the channels first.
    spectrum = tf.transpose(spectrum, [0, 3, 1, 2])
    images = tf.math.real(tf.signal.ifft2d(spectrum))
    return tf.transpose(images, [0, 2, 3, 1])


# ------------------------------------------------------------------ model
def tight_control(lambda_tight, delta_fake, delta_real, target, gain):
    """The next λ_tight of the equilibrium control (BEGAN's k_t, Berthelot et
    al. 2017, eq. 4, on IGN's tight term):

        λ_tight ← max(0, λ_tight + gain · (γ − δ(f(z)) / δ(x)))

    δ(f(z)) and δ(x) the batch means of the critic's distance on fakes and on
    real images. When f reconstructs its own samples better than γ times its
    real images, the tight term (which pushes δ(f(z)) up) weighs more, and less
    in the other case. Divided by δ(x), unlike BEGAN's γ·L(x) − L(G(z)), so the
    gain does not depend on the scale of the distance. No gradient."""
    ratio = tf.stop_gradient(delta_fake / delta_real)
    return tf.maximum(tf.cast(lambda_tight, ratio.dtype) + gain * (target - ratio), 0.0)


@keras.saving.register_keras_serializable(package="ogan_ign")
class IGN(one_loss.OneLossModel):
    """Idempotent Generative Network: f is both the generator and (via δ) the critic.

    Args:
      f: keras.Model images → images of the same shape (`networks.dcgan_autoencoder`).
      lambda_rec, lambda_idem, lambda_tight, tight_clamp, distance, noise,
        temperature, lambda_diversity: see `IGNSettings`. With noise "fourier", call `adapt(images)`
        once. Prefer it with a BatchNorm f: f runs on images and on noise in
        training mode, so its moving statistics average both, and for N(0, I)
        noise they misfit z at evaluation (docs/ign/RESULTS.md).
      seed: base seed of the training noise, a pure function of (seed, replica, step).
      tight_target, tight_gain: with a target γ, λ_tight is a weight the step
        controls (`tight_control`), starting at lambda_tight; None: constant.
      f_sampling: None while training; after `standing_targets` (an export with
        standing statistics), a copy of f's weights whose BatchNorm statistics are
        those of noise: the `sampler`, while f keeps projecting images with
        statistics of images. A BatchNorm f normalises its two inputs, noise and
        images, by statistics far apart (docs/ign/RESULTS.md), so one set of
        moving statistics serves one of the two badly.
      f_refining: likewise, a copy of f whose statistics are those of batches of
        samples f(z): the `refiner`, f applied to f's own outputs (f(f(z)), the
        second and later steps of `apply`), as the outer f of L_idem and L_tight
        normalised batches of f(z) in training. With f's statistics of images
        f(f(z)) scored worse than f(z); with these, better (docs/ign/RESULTS.md).
    """

    # Copies of f holding other BatchNorm statistics (an export's): sampler, refiner.
    COPIES = ("f_sampling", "f_refining")

    def __init__(self, f, lambda_rec=IGNSettings.lambda_rec, lambda_idem=IGNSettings.lambda_idem,
                 lambda_tight=IGNSettings.lambda_tight, tight_clamp=IGNSettings.tight_clamp,
                 distance=IGNSettings.distance, noise=IGNSettings.noise, seed=0, f_sampling=None,
                 tight_target=IGNSettings.tight_target, tight_gain=IGNSettings.tight_gain,
                 f_refining=None, temperature=IGNSettings.temperature,
                 lambda_diversity=IGNSettings.lambda_diversity, **kwargs):
        super().__init__(**kwargs)
        losses.IGNLoss(tight_clamp=tight_clamp, distance=distance,  # fails early on bad values
                       lambda_diversity=lambda_diversity)
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; expected one of {list(NOISES)}")
        self.f = f
        self.image_shape = tuple(int(d) for d in f.input_shape[1:])
        if tuple(f.output_shape[1:]) != self.image_shape:
            raise ValueError(f"f must map images to images of the same shape, got "
                             f"{f.input_shape} → {f.output_shape}")
        self.f_sampling = f_sampling
        self.f_refining = f_refining
        for name in self.COPIES:
            copy = getattr(self, name)
            if copy is not None and not standing.is_copy_of(copy, f):
                raise ValueError(f"{name} must be a copy of f (the same weights' shapes)")
        self.lambda_rec = float(lambda_rec)
        self.lambda_idem = float(lambda_idem)
        self.lambda_tight = float(lambda_tight)
        self.lambda_diversity = float(lambda_diversity)
        self.tight_clamp = None if tight_clamp is None else float(tight_clamp)
        self.distance = distance
        self.noise = noise
        self.seed = int(seed)
        self.tight_target = None if tight_target is None else float(tight_target)
        self.tight_gain = float(tight_gain)
        self.temperature = float(temperature)
        if not self.temperature > 0:
            raise ValueError(f"the sampling temperature must be > 0, got {temperature}")
        if self.tight_target is not None:
            if self.tight_target <= 0 or self.tight_gain <= 0:
                raise ValueError(f"the λ_tight control needs tight_target > 0 and tight_gain > 0, "
                                 f"got {tight_target} and {tight_gain}")
            # The controlled λ_tight: a weight, so that checkpoints resume it; every
            # replica computes the same value from all-reduced batch means.
            self.tight_weight = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.lambda_tight),
                trainable=False, aggregation="mean", name="lambda_tight")
        if noise == "fourier":
            # A weight, so that .keras files and checkpoints carry the statistics.
            self.spectrum = self.add_weight(shape=(4,) + self.image_shape, initializer="zeros",
                                            trainable=False, name="fourier_statistics")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names()}
        self.built = True  # f is built; lets fit() trace under a strategy

    def metric_names(self):
        control = [] if self.tight_target is None else ["ign/lambda_tight"]
        diversity = ["ign/diversity"] if self.lambda_diversity else []
        return (["loss/total", "ign/rec", "ign/idem", "ign/tight", "gap/ff_z", "gap/f_z"]
                + diversity + control)

    @staticmethod
    def default_optimizer():
        """Adam(1e-4, β1 = 0.5, β2 = 0.999), the paper's."""
        return keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.5, beta_2=0.999)

    def adapt(self, images):
        """Computes the Fourier statistics of training images (N, S, S, C) once."""
        if self.noise != "fourier":
            raise ValueError("adapt() is for noise='fourier'")
        statistics = fourier_statistics(images)
        if statistics.shape[1:] != self.image_shape:
            raise ValueError(f"images of shape {statistics.shape[1:]} for f on {self.image_shape}")
        self.spectrum.assign(statistics)
        return self

    def draw_noise(self, batch_size, seed, temperature=1.0):
        """Image-shaped noise from a stateless seed pair: the training noise, or with
        `temperature` τ its draw spread about the noise's mean (`IGNSettings`)."""
        if self.noise == "gaussian":
            z = tf.random.stateless_normal((batch_size,) + self.image_shape, seed=seed,
                                           dtype=self.noise_dtype)
            # τ = 1 returns z itself (a bf16 z is exact in float32).
            return tf.cast(temperature * tf.cast(z, tf.float32), self.noise_dtype)
        tf.debugging.assert_positive(tf.reduce_max(self.spectrum[2:]),
                                     message="call IGN.adapt(images) before drawing Fourier noise")
        return tf.cast(fourier_noise(self.spectrum, batch_size, seed, temperature),
                       self.noise_dtype)

    def sample_noise(self, batch_size, step=None):
        """Training noise for a step (default: the optimizer's), distinct per replica."""
        step = self.optimizer.iterations if step is None else step
        return self.draw_noise(batch_size, one_loss.training_seed(self.seed, step))

    # -------------------------------------------------------------- the step
    @property
    def nets(self):
        """The network the loss is called on: (f,)."""
        return (self.f,)

    def loss_fn(self):
        """This step's loss: `losses.IGNLoss` with the model's hyper-parameters
        (λ_tight: the controlled weight's value with `tight_target`)."""
        lambda_tight = (self.lambda_tight if self.tight_target is None
                        else tf.convert_to_tensor(self.tight_weight))
        return losses.IGNLoss(self.lambda_rec, self.lambda_idem, lambda_tight,
                              self.tight_clamp, self.distance, batch_mean=self.clamp_scale,
                              lambda_diversity=self.lambda_diversity)

    def compute_terms(self, x_real, z):
        """The loss terms; with `tight_target` the step's λ_tight too
        ("ign/lambda_tight"), after which `tight_control` sets the next."""
        terms = super().compute_terms(x_real, z)
        if self.tight_target is not None:
            terms["ign/lambda_tight"] = tf.convert_to_tensor(self.tight_weight)
            following = tight_control(
                terms["ign/lambda_tight"], self.batch_statistic(terms["ign/idem"]),
                self.batch_statistic(terms["ign/rec"]), self.tight_target, self.tight_gain)
            self.tight_weight.assign(tf.cast(following, self.tight_weight.dtype))
        return terms

    def clamp_scale(self, delta_real):
        """The clamp's L_rec: the mean of δ(x) over the global batch (over the
        replica's shard when the step computes per-replica statistics)."""
        return self.batch_statistic(tf.reduce_mean(delta_real))

    def trainable_for_step(self):
        return self.f.trainable_variables

    # ------------------------------------------------------------ for users
    def call(self, z, training=False):
        return self.f(z, training=training)

    @property
    def sampler(self):
        """The network that maps noise to samples: f, or its copy `f_sampling`."""
        return self.f if self.f_sampling is None else self.f_sampling

    @property
    def refiner(self):
        """The network that maps f's outputs to f(f(·)): f, or its copy `f_refining`."""
        return self.f if self.f_refining is None else self.f_refining

    def standing_targets(self):
        """((f_sampling, "noise"), (f, "data"), (f_refining, samples)): makes
        `f_sampling` and `f_refining`, copies of f's weights as they are now, the
        sampler and the refiner, so that standing statistics can be set on noise
        for sampling, on images for projection, and on samples f_sampling(z) (set
        first) for f applied to f's outputs (`standing.set_for_export`)."""
        self.f_sampling = standing.network_copy(self.f)
        self.f_refining = standing.network_copy(self.f)

        def samples(make_noise, make_images):
            return lambda k: self.f_sampling(make_noise(k), training=False)
        return ((self.f_sampling, "noise"), (self.f, "data"), (self.f_refining, samples))

    @property
    def noise_dtype(self):
        """The dtype f computes in, that of its noise."""
        return self.f.compute_dtype

    def make_noise(self, n, seed=None, stream=one_loss.SAMPLES):
        """n noise images to sample from, at the model's `temperature`: fresh ones,
        or a fixed draw for a seed (and stream)."""
        return self._fixed_or_fresh(n, seed, stream, self.temperature)

    def training_noise(self, n, seed=None, stream=one_loss.SAMPLES):
        """`make_noise`'s draw at τ = 1: the noise f trained on, which standing
        statistics are measured on."""
        return self._fixed_or_fresh(n, seed, stream, 1.0)

    def _fixed_or_fresh(self, n, seed, stream, temperature):
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)
        else:
            seed = one_loss.fixed_seed(seed, stream)
        return self.draw_noise(n, seed, temperature)

    def generate(self, n_or_z, seed=None, training=False, standing_stats=0,
                 standing_batch=standing.BATCH_SIZE):
        """float32 f(z) for n noise images (fresh, or fixed by `seed`) or for given z;
        standing_stats = N > 0: with BatchNorm's standing statistics over N batches
        of `standing_batch` noise images (`standing.sample`)."""
        return standing.sample(self, n_or_z, seed, training, standing_stats, standing_batch)

    def apply(self, x, k=1, training=False):
        """f applied k times: [f(x), f(f(x)), …], a list of k float32 batches: the
        projecting f on x, then the `refiner` on f's outputs (`generate` samples;
        `refine` continues from samples)."""
        outputs = []
        for i in range(k):
            x = (self.f if i == 0 else self.refiner)(x, training=training)
            outputs.append(one_loss.float32(x))
        return outputs

    def refine(self, y, training=False):
        """f(y), float32, for y that f produced (samples f(z), projections f(x)):
        one more step towards the fixed points, with the `refiner`'s statistics."""
        return self._run(self.refiner, y, training)

    def project(self, x, training=False):
        """f(x), float32, for corrupted or out-of-distribution images x: the
        projection onto the learned manifold (one step; `apply` for more)."""
        return self._run(self.f, x, training)

    def _run(self, net, x, training):
        """net(x) in float32 for x as numpy or a tensor of any float dtype (a float32
        batch of samples under bf16 too): cast to f's compute dtype first."""
        return one_loss.float32(net(tf.cast(x, self.f.compute_dtype), training=training))

    # f(x) of real images is IGN's reconstruction (L_rec = distance(f(x), x)).
    reconstruct = project

    def serving_endpoints(self):
        """`export`'s signatures, images (batch, S, S, C) in and out: generate,
        z → the sampler's f(z); sample (OneLossModel's); apply, (x, k) → f applied
        k times (the last of `apply(x, k)`); project, x → f(x); refine, y → the
        refiner's f(y)."""
        image = one_loss.float_spec(self.image_shape)

        def served(net):  # f's layers cast float32 inputs to their compute dtype
            return lambda x: one_loss.float32(net(tf.cast(x, tf.float32), training=False))

        f, sample_f, refine = served(self.f), served(self.sampler), served(self.refiner)

        def apply_k(x, k):
            _, y = tf.while_loop(
                lambda i, y: i < k,
                lambda i, y: (i + 1, tf.cond(tf.equal(i, 0), lambda: f(y), lambda: refine(y))),
                [tf.constant(0), tf.cast(x, tf.float32)])
            return y

        return {"generate": (sample_f, [image]),
                **super().serving_endpoints(),
                "apply": (apply_k, [image, one_loss.COUNT_SPEC]),
                "project": (f, [image]),
                "refine": (refine, [image])}

    # ------------------------------------------------------------- saving
    def get_config(self):
        config = super().get_config()
        config.update({
            "f": keras.saving.serialize_keras_object(self.f),
            "lambda_rec": self.lambda_rec,
            "lambda_idem": self.lambda_idem,
            "lambda_tight": self.lambda_tight,
            "tight_clamp": self.tight_clamp,
            "distance": self.distance,
            "noise": self.noise,
            "seed": self.seed,
            "tight_target": self.tight_target,
            "tight_gain": self.tight_gain,
            "temperature": self.temperature,
            "lambda_diversity": self.lambda_diversity,
        })
        for key in self.COPIES:
            if getattr(self, key) is not None:
                config[key] = keras.saving.serialize_keras_object(getattr(self, key))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("f",) + cls.COPIES:
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
