"""Small models of the three kinds for tests: 28×28×1 DCGAN nets of a few channels."""

import keras
import numpy as np

from ogan_ign import gan, ign, networks, ogan, training


def three_models(precision="fp32", width=2, z_dim=4, ign_noise="gaussian"):
    """(SingleLossGAN, OGAN, IGN), built under `precision` from Keras seed 0; an IGN
    with Fourier noise is adapted to 16 uniform images."""
    with training.precision_policy(precision):
        keras.utils.set_random_seed(0)
        single = gan.SingleLossGAN(networks.dcgan_generator(28, 1, z_dim=z_dim, width=width),
                                   networks.dcgan_encoder(28, 1, 1, width=width, name="critic"))
        o = ogan.OGAN(networks.dcgan_encoder(28, 1, z_dim=z_dim, width=width),
                      networks.dcgan_generator(28, 1, z_dim=z_dim, width=width))
        i = ign.IGN(networks.dcgan_autoencoder(28, 1, latent=8, width=width), noise=ign_noise)
    if ign_noise == "fourier":
        i.adapt(np.random.default_rng(0).uniform(-1, 1, (16, 28, 28, 1)).astype("float32"))
    return single, o, i
