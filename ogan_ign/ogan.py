"""O-GAN: an encoder as the critic (Su, arXiv 1903.01931).

The critic is avg(E(x)), the mean of the encoder's nz outputs, with no extra
head. The rest of E(x) — its direction once avg and std are removed — is free,
and the correlation term −λ·ρ(z, E(G(z))) spends that freedom on encoding z.
The loss is `losses.OGANLoss`; with its defaults (objective "wgan", GAN-QP) it
is the original code's one loss, trained by one RMSprop(1e-4, ρ=0.99).

Reconstruction follows the original sampling code: z = N(E(x)), standardised
per sample over the nz dims, then G(0.9·z).
"""

import dataclasses

import keras
import tensorflow as tf

from ogan_ign import losses, one_loss, standing
from ogan_ign.gan import GANSettings, SingleLossGAN
from ogan_ign.settings import hparam


@dataclasses.dataclass(frozen=True)
class OGANSettings(GANSettings):
    """O-GAN's hyper-parameters: the single-loss GAN's (its loss and penalty, with
    the original code's wgan + GAN-QP as defaults) and its own, each default and
    help once."""
    corr_weight: float = hparam(0.5, "λ of −λ·ρ(z, E(G(z))); 0.5 in the original code, 1.0 "
                                     "in its 256 px variant")
    recon_scale: float = hparam(0.9, "reconstruction = G(recon_scale · N(E(x)))")
    encoder_corr_weight: float = hparam(0.0, "λ_E of −λ_E·ρ(z, E(sg G(z))): the correlation "
                                             "once more, for the encoder only (0: the "
                                             "original's one λ)", minimum=0.0)
    recon_weight: float = hparam(0.0, "λ_x of λ_x·mean|G(recon_scale · N(E(x))) − x| on the "
                                      "real batch: reconstruction asked of E and G in "
                                      "training (0: O-GAN's loss; one more pass of G)",
                                 minimum=0.0)
    encoder_recon_weight: float = hparam(0.0, "λ_xE of λ_xE·mean|G′(recon_scale · N(E(x))) "
                                              "− x|, G′ frozen: the reconstruction asked of "
                                              "the encoder only (0: O-GAN's loss)",
                                         minimum=0.0)
    recon_pool: int = hparam(1, "the reconstruction terms compare G(·) and x average-pooled "
                                "recon_pool × recon_pool (1: pixels; 4: a 32 px image at 8×8)",
                             minimum=1)
    real_corr_weight: float = hparam(0.0, "λ_r of −λ_r·ρ(z_x, E(G(z_x))), z_x = "
                                          "sg(recon_scale · N(E(x))): the correlation on the "
                                          "codes of real images (0: O-GAN's loss)",
                                     minimum=0.0)


@keras.saving.register_keras_serializable(package="ogan_ign")
class OGAN(SingleLossGAN):
    """O-GAN: SingleLossGAN whose critic is an encoder E with z_dim outputs.

    Args:
      encoder: keras.Model x → (batch, z_dim). It is the critic: score = avg(E(x)).
      generator: keras.Model z → x.
      z_dim: noise size (default: the generator's input size).
      corr_weight, recon_scale, encoder_corr_weight, recon_weight, encoder_recon_weight,
        recon_pool, real_corr_weight: see `OGANSettings`.
      objective, penalty, penalty_weight, seed, diffaugment: as in SingleLossGAN;
        the defaults ("wgan", "qp", 1, off) are the original code's loss.
      generator_sampling: None while training; after `standing_targets` (an export
        with standing statistics), a copy of G's weights whose BatchNorm statistics
        are those of noise: the `sampler`, while G keeps statistics of the codes
        recon_scale·N(E(x)) of training images for `reconstruct` and `interpolate`.
        G's moving statistics mix both inputs when a reconstruction term trains it
        (docs/ogan/EQUAL_GAN.md), so one set serves one of the two badly.
    """

    def __init__(self, encoder, generator, z_dim=None, corr_weight=OGANSettings.corr_weight,
                 recon_scale=OGANSettings.recon_scale, objective=OGANSettings.objective,
                 penalty=OGANSettings.penalty, penalty_weight=OGANSettings.penalty_weight, seed=0,
                 diffaugment=OGANSettings.diffaugment,
                 encoder_corr_weight=OGANSettings.encoder_corr_weight,
                 recon_weight=OGANSettings.recon_weight,
                 encoder_recon_weight=OGANSettings.encoder_recon_weight,
                 recon_pool=OGANSettings.recon_pool,
                 real_corr_weight=OGANSettings.real_corr_weight, generator_sampling=None,
                 **kwargs):
        kwargs.pop("critic", None)  # the critic is the encoder, never a separate net
        # O-GAN's own settings first: SingleLossGAN makes a tracker per `metric_names()`.
        for name, weight in (("encoder_corr_weight", encoder_corr_weight),
                             ("recon_weight", recon_weight),
                             ("encoder_recon_weight", encoder_recon_weight),
                             ("real_corr_weight", real_corr_weight)):
            if weight < 0:
                raise ValueError(f"{name} must be >= 0, got {weight}")
        self.corr_weight = float(corr_weight)
        self.recon_scale = float(recon_scale)
        self.encoder_corr_weight = float(encoder_corr_weight)
        self.recon_weight = float(recon_weight)
        self.encoder_recon_weight = float(encoder_recon_weight)
        self.recon_pool = int(recon_pool)
        self.real_corr_weight = float(real_corr_weight)
        super().__init__(generator=generator, critic=encoder, z_dim=z_dim,
                         objective=objective, penalty=penalty,
                         penalty_weight=penalty_weight, seed=seed, diffaugment=diffaugment,
                         **kwargs)
        if generator_sampling is not None and not standing.is_copy_of(generator_sampling,
                                                                      generator):
            raise ValueError("generator_sampling must be a copy of the generator (the same "
                             "weights' shapes)")
        self.generator_sampling = generator_sampling
        if encoder.output_shape[-1] != self.z_dim:
            raise ValueError(f"encoder outputs {encoder.output_shape[-1]} dims, "
                             f"but z_dim is {self.z_dim}")
        side = generator.output_shape[1:3]
        if self.recon_pool < 1 or any(n % self.recon_pool for n in side):
            raise ValueError(f"recon_pool must be >= 1 and divide the image side; got "
                             f"{self.recon_pool} for {side[0]}×{side[1]} images")

    @property
    def encoder(self):
        return self.critic

    @property
    def sampler(self):
        """The network that maps noise to samples: G, or its copy `generator_sampling`."""
        return self.generator if self.generator_sampling is None else self.generator_sampling

    def standing_targets(self):
        """((generator_sampling, "noise"), (G, codes of training images)): makes
        `generator_sampling`, a copy of G's weights as they are now, the sampler,
        so that standing statistics can be set on noise for sampling and on
        recon_scale·N(E(x)) of training images (E as it is) for reconstruction
        (`standing.set_for_export`)."""
        self.generator_sampling = standing.network_copy(self.generator)

        def codes(make_noise, make_images):
            return lambda k: self.code(make_images(k))
        return ((self.generator_sampling, "noise"), (self.generator, codes))

    def metric_names(self):
        return (super().metric_names() + ["corr/z"]
                + (["recon/l1"] if self.recon_weight or self.encoder_recon_weight else [])
                + (["corr/real"] if self.real_corr_weight else []))

    def loss_fn(self):
        """This step's loss: `losses.OGANLoss` with the model's hyper-parameters."""
        return losses.OGANLoss(self.objective, self.penalty, self.penalty_weight,
                               seed=self.penalty_seed(), diffaugment=self.diffaugment,
                               augment_seed=self.augment_seed(), corr_weight=self.corr_weight,
                               encoder_corr_weight=self.encoder_corr_weight,
                               recon_weight=self.recon_weight,
                               encoder_recon_weight=self.encoder_recon_weight,
                               recon_scale=self.recon_scale, recon_pool=self.recon_pool,
                               real_corr_weight=self.real_corr_weight)

    # ------------------------------------------------------------ for users
    def encode(self, x, training=False):
        """E(x), float32: the raw nz-dim code (its mean is the critic score)."""
        return one_loss.float32(self.encoder(x, training=training))

    def latent(self, x, training=False):
        """N(E(x)): the code standardised per sample over the nz dims, the part
        of E(x) the correlation term shapes; reconstruction and interpolation use it."""
        return losses.standardise(self.encode(x, training=training))

    def code(self, x, scale=None, training=False):
        """scale · N(E(x)), the code G reconstructs x from; scale = recon_scale
        (0.9) by default."""
        scale = self.recon_scale if scale is None else scale
        return scale * self.latent(x, training=training)

    def reconstruct(self, x, scale=None, training=False):
        """G(scale · N(E(x))), float32; scale = recon_scale (0.9) by default."""
        return one_loss.float32(self.generator(self.code(x, scale, training), training=training))

    def interpolate(self, x1, x2, steps=8, scale=None, training=False):
        """Straight paths from x1 to x2 in the standardised latent (float32).

        Returns (batch, steps, H, W, C): row i goes from a reconstruction of
        x1[i] to one of x2[i], each point decoded as G(scale · z_t).
        """
        scale = self.recon_scale if scale is None else scale
        z1 = self.latent(x1, training=training)
        z2 = self.latent(x2, training=training)
        t = tf.reshape(tf.linspace(0.0, 1.0, steps), [1, steps, 1])
        t = tf.cast(t, z1.dtype)
        path = (1.0 - t) * z1[:, None, :] + t * z2[:, None, :]
        flat = tf.reshape(path, [-1, self.z_dim])
        images = one_loss.float32(self.generator(scale * flat, training=training))
        return tf.reshape(images, tf.concat([[-1, steps], tf.shape(images)[1:]], axis=0))

    def latent_correlation(self, z, training=False):
        """Mean ρ(z, E(G(z))) over a batch, G the sampler: how well E inverts G."""
        e = self.encode(self.sampler(z, training=training), training=training)
        return tf.reduce_mean(losses.pearson(tf.cast(z, e.dtype), e))

    def serving_endpoints(self):
        """SingleLossGAN's (generate, sample), then encode, x → E(x), and
        reconstruct, x → G(recon_scale · N(E(x)))."""
        image = one_loss.float_spec(self.encoder.input_shape[1:])
        return {**super().serving_endpoints(),
                "encode": (lambda x: self.encode(x), [image]),
                "reconstruct": (lambda x: self.reconstruct(x), [image])}

    # ------------------------------------------------------------- saving
    def get_config(self):
        config = super().get_config()
        config["encoder"] = config.pop("critic")
        config.update({"corr_weight": self.corr_weight, "recon_scale": self.recon_scale,
                       "encoder_corr_weight": self.encoder_corr_weight,
                       "recon_weight": self.recon_weight,
                       "encoder_recon_weight": self.encoder_recon_weight,
                       "recon_pool": self.recon_pool,
                       "real_corr_weight": self.real_corr_weight})
        if self.generator_sampling is not None:
            config["generator_sampling"] = keras.saving.serialize_keras_object(
                self.generator_sampling)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "encoder", "generator_sampling"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
