"""ogan_ign: the single-loss GAN, O-GAN and IGN in TensorFlow / Keras 3.

All three train with one tape, one loss and one optimizer, the GAN being written
as D(x) − 2·D(sg(G(z))) + D(G(z)) with stop-gradient `sg`.
"""

from ogan_ign import losses, networks
from ogan_ign.gan import SingleLossGAN

__all__ = ["losses", "networks", "SingleLossGAN"]
