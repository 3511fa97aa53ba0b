"""Trains the plain single-loss GAN (DCGAN critic and generator, GAN-QP penalty).

    python train_gan.py --dataset fashion_mnist --out_dir runs/gan_fmnist
    python train_gan.py --flagfile runs/gan.flags      # the same again resumes

The loss is D(x) − 2·D(sg(G(z))) + D(G(z)) plus the penalty, one optimizer
(RMSprop(1e-4, ρ = 0.99)); see ogan_ign/gan.py. Common flags: ogan_ign/flags.py.
"""

import dataclasses
from typing import Optional

from absl import app
from absl import flags

from ogan_ign import flags as common
from ogan_ign import networks
from ogan_ign.gan import SingleLossGAN

common.define_common_flags(dataset="fashion_mnist", out_dir="runs/gan")
flags.DEFINE_integer("z_dim", 128, "noise size")
flags.DEFINE_integer("width", 64, "channels of the first critic conv (doubling per stage)")
flags.DEFINE_string("objective", "wgan", "wgan | hinge | ns")
flags.DEFINE_string("penalty", "qp", "qp (GAN-QP) | gp (WGAN-GP) | none")
flags.DEFINE_float("penalty_weight", None, "default: 1 for qp, 10 for gp")
FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class GANConfig:
    z_dim: int = 128
    width: int = 64
    objective: str = "wgan"
    penalty: Optional[str] = "qp"
    penalty_weight: Optional[float] = None


def build_model(config, spec):
    hp = config.model
    generator = networks.dcgan_generator(spec.image_size, spec.channels, hp.z_dim, hp.width)
    critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, hp.width, name="critic")
    return SingleLossGAN(generator, critic, z_dim=hp.z_dim, objective=hp.objective,
                         penalty=hp.penalty, penalty_weight=hp.penalty_weight, seed=config.seed)


def main(argv):
    common.no_extra_args(argv)
    model = GANConfig(z_dim=FLAGS.z_dim, width=FLAGS.width, objective=FLAGS.objective,
                      penalty=None if FLAGS.penalty == "none" else FLAGS.penalty,
                      penalty_weight=FLAGS.penalty_weight)
    common.train_or_exit(common.config_from_flags(model=model), build_model)


if __name__ == "__main__":
    app.run(main)
