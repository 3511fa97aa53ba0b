"""IGN: the Idempotent Generative Network (Shocher et al., arXiv 2311.01462)
trained as a single-loss GAN.

One network f maps images to images. Its critic is the reconstruction distance
δ(y) = D(f(y), y) and its generator is f itself, so with stop-gradient `sg`

    L = λ_rec·δ(x) + λ_tight·clamp(−δ(sg f(z))) + λ_idem·(δ(f(z)) − δ(sg f(z)))

is the paper's final objective (its sec. 2.3): the last bracket has value 0 and
reaches only the inner f, which is what the paper's frozen copy f′ in
D(f′(f(z)), f(z)) does, without copying f every step (see `losses.ign_loss`).

Noise is image-shaped: N(0, I), or "fourier" noise whose 2-D spectrum has,
frequency by frequency, the mean and standard deviation of the training images'
spectrum (computed once by `adapt` and saved with the model as a weight).
"""

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import losses
from ogan_ign.gan import OneLossModel

NOISES = ("gaussian", "fourier")


def default_optimizer():
    """Adam(1e-4, β1 = 0.5, β2 = 0.999), the paper's."""
    return keras.optimizers.Adam(learning_rate=1e-4, beta_1=0.5, beta_2=0.999)


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


def fourier_noise(statistics, batch_size, seed):
    """Images (batch, S, S, C) whose spectrum matches `statistics` in mean and std
    per frequency (and per real / imaginary part). seed: a stateless seed pair."""
    statistics = tf.convert_to_tensor(statistics)
    mean_re, mean_im, std_re, std_im = tf.unstack(statistics)
    size = statistics.shape[1]
    scale = tf.constant(_hermitian_scale(size), statistics.dtype)[:, :, None]
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
@keras.saving.register_keras_serializable(package="ogan_ign")
class IGN(OneLossModel):
    """Idempotent Generative Network: f is both the generator and (via δ) the critic.

    Args:
      f: keras.Model images → images of the same shape (`networks.dcgan_autoencoder`).
      lambda_rec, lambda_idem, lambda_tight: the paper's weights (20, 20, 2.5).
      tight_clamp: the paper's a in the smooth clamp (1.5); None turns it off.
      distance: "l1" (the paper's) or "l2", mean over pixels per sample.
      noise: "gaussian" (N(0, I) images) or "fourier" (call `adapt(images)` once).
        Prefer "fourier" with a BatchNorm f: f runs on images and on noise in
        training mode, so its moving statistics average both, and for N(0, I)
        noise they misfit z at evaluation — `generate` then returns nearly one
        garment while the same weights with batch statistics cover every class
        (docs/ign/RESULTS.md). Image-like noise makes one set of statistics fit.
      seed: base seed of the training noise; the noise of a step is a pure
        function of (seed, replica, step), so a resumed run draws what an
        uninterrupted run would have drawn.
    """

    def __init__(self, f, lambda_rec=20.0, lambda_idem=20.0, lambda_tight=2.5, tight_clamp=1.5,
                 distance="l1", noise="gaussian", seed=0, **kwargs):
        super().__init__(**kwargs)
        if distance not in losses.IGN_DISTANCES:
            raise ValueError(f"unknown distance {distance!r}; "
                             f"expected one of {list(losses.IGN_DISTANCES)}")
        if noise not in NOISES:
            raise ValueError(f"unknown noise {noise!r}; expected one of {list(NOISES)}")
        if tight_clamp is not None and tight_clamp <= 0:
            raise ValueError(f"tight_clamp must be positive or None, got {tight_clamp}")
        self.f = f
        self.image_shape = tuple(int(d) for d in f.input_shape[1:])
        if tuple(f.output_shape[1:]) != self.image_shape:
            raise ValueError(f"f must map images to images of the same shape, got "
                             f"{f.input_shape} → {f.output_shape}")
        self.lambda_rec = float(lambda_rec)
        self.lambda_idem = float(lambda_idem)
        self.lambda_tight = float(lambda_tight)
        self.tight_clamp = None if tight_clamp is None else float(tight_clamp)
        self.distance = distance
        self.noise = noise
        self.seed = int(seed)
        if noise == "fourier":
            # A weight, so that .keras files and checkpoints carry the statistics.
            self.spectrum = self.add_weight(shape=(4,) + self.image_shape, initializer="zeros",
                                            trainable=False, name="fourier_statistics")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names()}
        self.built = True  # f is built; lets fit() trace under a strategy

    # ----------------------------------------------------------------- helpers
    @staticmethod
    def metric_names():
        # gap/*: root-mean-square distances per sample. f is idempotent on its
        # samples when gap/ff_z is small next to gap/f_z, the step z → f(z).
        return ["loss/total", "ign/rec", "ign/idem", "ign/tight", "gap/ff_z", "gap/f_z"]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def adapt(self, images):
        """Computes the Fourier statistics of training images (N, S, S, C) once."""
        if self.noise != "fourier":
            raise ValueError("adapt() is for noise='fourier'")
        statistics = fourier_statistics(images)
        if statistics.shape[1:] != self.image_shape:
            raise ValueError(f"images of shape {statistics.shape[1:]} for f on {self.image_shape}")
        self.spectrum.assign(statistics)
        return self

    def draw_noise(self, batch_size, seed):
        """Image-shaped noise from a stateless seed pair."""
        if self.noise == "gaussian":
            return tf.random.stateless_normal((batch_size,) + self.image_shape, seed=seed,
                                              dtype=self.f.compute_dtype)
        tf.debugging.assert_positive(tf.reduce_max(self.spectrum[2:]),
                                     message="call IGN.adapt(images) before drawing Fourier noise")
        return tf.cast(fourier_noise(self.spectrum, batch_size, seed), self.f.compute_dtype)

    def sample_noise(self, batch_size, step=None):
        """Training noise for a step, distinct per replica, reproducible."""
        if step is None:
            step = self.optimizer.iterations
        replica = tf.distribute.get_replica_context()
        replica_id = replica.replica_id_in_sync_group if replica is not None else 0
        seed = tf.stack([tf.cast(self.seed, tf.int64) * 1009 + tf.cast(replica_id, tf.int64),
                         tf.cast(step, tf.int64)])
        return self.draw_noise(batch_size, seed)

    # -------------------------------------------------------------- the model
    def call(self, z, training=False):
        return self.f(z, training=training)

    def generate(self, n_or_z, seed=0, training=False):
        """f(z) for `n` fresh noise images (drawn from `seed`) or for given z."""
        if isinstance(n_or_z, int):
            # Step −1: a stream the training noise (steps ≥ 0) never uses.
            z = self.draw_noise(n_or_z, tf.constant([seed, -1], tf.int64))
        else:
            z = tf.convert_to_tensor(n_or_z, dtype=self.f.compute_dtype)
        return self.f(z, training=training)

    def apply(self, x, k=1, training=False):
        """f applied k times: [f(x), f(f(x)), …], a list of k batches."""
        outputs = []
        for _ in range(k):
            x = self.f(x, training=training)
            outputs.append(x)
        return outputs

    def project(self, x, training=False):
        """f(x) for corrupted or out-of-distribution images x: the projection onto
        the learned manifold (one step; `apply` for more)."""
        return self.f(tf.convert_to_tensor(x, dtype=self.f.compute_dtype), training=training)

    def compile(self, optimizer=None, **kwargs):
        """One optimizer for f (default Adam(1e-4, β1 = 0.5), the paper's)."""
        super().compile(optimizer=optimizer or default_optimizer(), **kwargs)
        # Built inside whatever strategy scope compile() runs in, so that fit()
        # never creates optimizer slots while tracing.
        self.optimizer.build(self.f.trainable_variables)

    def compute_terms(self, x_real, z):
        """All loss terms of one step, as a dict; "loss/total" is what is minimised."""
        # The dtype of f's output (floatx: float32 under mixed precision), so that
        # δ(f(y), y) compares like with like; f's layers cast their inputs.
        dtype = self.f.outputs[0].dtype
        x_real = tf.cast(x_real, dtype)
        z = tf.cast(z, dtype)
        f_x = self.f(x_real, training=True)
        f_z = self.f(z, training=True)
        f_z_sg = tf.stop_gradient(f_z)
        ff_z = self.f(f_z, training=True)        # outer f's gradients cancel in L_idem …
        ff_z_sg = self.f(f_z_sg, training=True)  # … against this call's
        delta_real = losses.ign_distance(f_x, x_real, self.distance)
        delta_fake = losses.ign_distance(ff_z, f_z, self.distance)
        delta_fake_sg = losses.ign_distance(ff_z_sg, f_z_sg, self.distance)
        total, terms = losses.ign_loss(delta_real, delta_fake, delta_fake_sg, self.lambda_rec,
                                       self.lambda_idem, self.lambda_tight, self.tight_clamp,
                                       rec_scale=self.clamp_scale(delta_real))
        terms["loss/total"] = total
        ff_z_sg = tf.stop_gradient(ff_z_sg)
        terms["gap/ff_z"] = tf.reduce_mean(tf.sqrt(losses.ign_distance(ff_z_sg, f_z_sg, "l2")))
        terms["gap/f_z"] = tf.reduce_mean(tf.sqrt(losses.ign_distance(f_z_sg, z, "l2")))
        return terms

    def clamp_scale(self, delta_real):
        """L_rec of the tightness clamp: the mean of δ(x) over the global batch.

        Under a strategy with XLA off the per-replica means are averaged across
        the replicas (equal shares, so this is the global mean), like the
        synchronized BatchNorm moments. In the XLA-compiled per-replica step no
        all-reduce can run, so there it is the replica's own mean (gan.py).
        """
        scale = tf.reduce_mean(delta_real)
        context = tf.distribute.get_replica_context()
        if (self.tight_clamp is not None and not self.split_xla and context is not None
                and context.num_replicas_in_sync > 1):
            scale = context.all_reduce(tf.distribute.ReduceOp.MEAN, scale)
        return scale

    def trainable_for_step(self):
        """The step trains f (the shared step of `gan.OneLossModel`)."""
        return self.f.trainable_variables

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
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["f"] = keras.saving.deserialize_keras_object(config["f"])
        return cls(**config)
