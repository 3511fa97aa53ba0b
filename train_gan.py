"""Trains the plain single-loss GAN (DCGAN critic and generator, GAN-QP penalty).

    python train_gan.py --dataset fashion_mnist --out_dir runs/gan_fmnist
    python train_gan.py --flagfile runs/gan.flags      # the same again resumes

The loss is D(x) − 2·D(sg(G(z))) + D(G(z)) plus the penalty, one optimizer
(RMSprop(1e-4, ρ = 0.99)); see ogan_ign/gan.py and losses.gan_loss.
"""

import dataclasses


from ogan_ign import cli, networks
from ogan_ign.gan import GANSettings, SingleLossGAN
from ogan_ign.settings import hparam, subset


@dataclasses.dataclass(frozen=True)
class GANRun(GANSettings):
    z_dim: int = hparam(128, "noise size")
    width: int = hparam(64, "channels of the first critic conv (doubling per stage)")


cli.define_common_flags(dataset="fashion_mnist", out_dir="runs/gan")
cli.define_settings_flags(GANRun)


def build_model(config, spec):
    hp = config.model
    generator = networks.dcgan_generator(spec.image_size, spec.channels, hp.z_dim, hp.width)
    critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, hp.width, name="critic")
    return SingleLossGAN(generator, critic, z_dim=hp.z_dim, seed=config.seed,
                         **subset(hp, GANSettings))


def main(argv):
    cli.train_or_exit(cli.main_config(argv, GANRun), build_model)


if __name__ == "__main__":
    cli.run(main)
