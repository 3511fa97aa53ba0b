"""Trains the plain single-loss GAN (DCGAN critic and generator, one optimizer).

    python train_gan.py --dataset fashion_mnist --out_dir runs/gan_fmnist
    python train_gan.py --flagfile runs/gan.flags      # the same again resumes
    python train_gan.py --objective wgan --penalty qp --lr 1e-4   # the O-GAN code's recipe

The loss is losses.GANLoss, D(x) − 2·D(sg(G(z))) + D(G(z)) for "wgan", with one
optimizer (RMSprop, ρ = 0.99); see ogan_ign/gan.py. This script's defaults: the
non-saturating objective ("ns"), no penalty, lr 2e-4 (why: docs/RESULTS.md). The
library's defaults (gan.GANSettings) are the original O-GAN code's: wgan + GAN-QP
penalty at lr 1e-4, the last command above. `--generator` and `--kernel_size` are
train_ogan.py's (networks.DCGANChoice), so the GAN can be O-GAN's twin with the same nets.
"""

import quiet_start  # noqa: F401  (first: TensorFlow starts without its start-up lines)

import dataclasses

from ogan_ign import cli, networks
from ogan_ign.gan import GANSettings, SingleLossGAN
from ogan_ign.settings import hparam, subset


@dataclasses.dataclass(frozen=True)
class GANRun(GANSettings, networks.DCGANChoice):
    z_dim: int = hparam(128, "noise size")
    width: int = hparam(64, "channels of the first critic conv (doubling per stage)")


# The best measured setting here (docs/RESULTS.md), not the library's defaults.
cli.define_common_flags(dataset="fashion_mnist", out_dir="runs/gan", lr=2e-4)
cli.define_settings_flags(GANRun, objective="ns", penalty="none")


def build_model(config, spec):
    hp = config.model
    generator = networks.chosen_generator(hp, spec.image_size, spec.channels, hp.z_dim, hp.width)
    critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, hp.width, hp.kernel_size,
                                    name="critic")
    return SingleLossGAN(generator, critic, z_dim=hp.z_dim, seed=config.seed,
                         **subset(hp, GANSettings))


def main(argv):
    cli.train_or_exit(cli.main_config(argv, GANRun), build_model)


if __name__ == "__main__":
    cli.run(main)
