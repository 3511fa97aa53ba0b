"""ogan_ign: the single-loss GAN, O-GAN and IGN in TensorFlow / Keras 3.

All three train with one tape, one loss and one optimizer, the GAN being written
as D(x) − 2·D(sg(G(z))) + D(G(z)) with stop-gradient `sg`.

Importing the package registers every model class with Keras, so a saved
`.keras` file loads with `keras.saving.load_model` after `import ogan_ign`.
"""

from ogan_ign import losses, networks
from ogan_ign.gan import SingleLossGAN, TwoPlayerGAN
from ogan_ign.ign import IGN
from ogan_ign.ogan import OGAN

__all__ = ["losses", "networks", "SingleLossGAN", "TwoPlayerGAN", "OGAN", "IGN"]
