"""Network builders: DCGAN encoder/critic and generator in the original O-GAN
shape (arXiv 1903.01931, after DCGAN arXiv 1511.06434), and small MLPs for 2-D data.

Each builder returns a functional `keras.Model` with a name.

Shape of the DCGAN pair for an S×S image: the encoder halves S with stride-2
convolutions until 4×4 (7×7 for S = 28), doubling the channels from `width`;
BatchNorm on every conv but the first, LeakyReLU 0.2, then a bias-free Dense to
`z_dim`. The generator mirrors it: Dense to the smallest feature map, BatchNorm +
ReLU, stride-2 transposed convolutions, tanh. With width = 64 the channel counts
are the original code's (S·8 at the smallest map) for S = 32 … 256.
"""

import dataclasses
import math

import keras
from keras import layers

from ogan_ign import fused_batchnorm
from ogan_ign.settings import hparam

SUPPORTED_SIZES = (28, 32, 64, 128, 256)
NORMS = ("batch", "group")  # f's normalisation (dcgan_autoencoder)
CODES = ("dense", "spatial")  # the shape of f's code (dcgan_autoencoder)
GROUPS = 32                 # groups of norm="group" (fewer where a layer has fewer channels)


def _init():
    # N(0, 0.02), as DCGAN and the original code initialise every kernel.
    return keras.initializers.RandomNormal(mean=0.0, stddev=0.02)


def dcgan_plan(image_size, width=64):
    """(smallest map side, number of stride-2 stages, channels per stage, small→large).

    Raises a one-line ValueError for an unsupported size.
    """
    if image_size not in SUPPORTED_SIZES:
        raise ValueError(
            f"unsupported image size {image_size}; expected one of {list(SUPPORTED_SIZES)}"
        )
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    base = 7 if image_size == 28 else 4
    stages = int(round(math.log2(image_size // base)))
    # channels[i] is the width of the i-th encoder conv (large map → small map).
    channels = [width * 2**i for i in range(stages)]
    return base, stages, channels


@keras.saving.register_keras_serializable(package="ogan_ign")
class BatchNorm(layers.BatchNormalization):
    """Keras BatchNormalization run by TensorFlow's fused kernel where it can be
    (ogan_ign.fused_batchnorm); kept, registered, so that .keras files saved
    before the networks used Keras's own layer (their config says
    "ogan_ign>BatchNorm") still load after `import ogan_ign`. The builders use
    Keras's layer, so a sub-network saved now is plain Keras; training runs the
    same kernel on it (fused_batchnorm.KERNEL, --batchnorm)."""

    def call(self, inputs, training=None, mask=None):
        if not fused_batchnorm.fusable(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        return fused_batchnorm.fused_call(self, inputs, training)


def _batch_norm(h, name):
    return layers.BatchNormalization(name=name)(h)


def _group_norm(h, name):
    """GroupNorm: statistics per example over (H, W, channels of a group), the
    same in training and inference (no moving statistics)."""
    return layers.GroupNormalization(groups=math.gcd(GROUPS, h.shape[-1]),
                                     name=name.replace("bn", "gn"))(h)


def normalization(kind):
    """The `norm(h, name)` of a normalisation kind in NORMS; one-line ValueError otherwise."""
    if kind not in NORMS:
        raise ValueError(f"unknown norm {kind!r}; expected one of {list(NORMS)}")
    return {"batch": _batch_norm, "group": _group_norm}[kind]


def _down(h, widths, kernel_size, prefix="", norm=_batch_norm):
    """The DCGAN critic's stride-2 convolutions: norm (BatchNorm) on all but the
    first (as in DCGAN), LeakyReLU 0.2."""
    for i, w in enumerate(widths):
        h = layers.Conv2D(w, kernel_size, strides=2, padding="same", use_bias=False,
                          kernel_initializer=_init(), name=f"{prefix}conv{i}")(h)
        if i > 0:
            h = norm(h, f"{prefix}bn{i}")
        h = layers.LeakyReLU(0.2, name=f"{prefix}lrelu{i}")(h)
    return h


def _residual(h, name, norm):
    """A residual block of two 3×3 convolutions at h's size and width:
    relu(h + norm(conv(relu(norm(conv(h)))))), as in ResNet (arXiv 1512.03385).
    A norm follows each convolution, so they carry no bias."""
    width = h.shape[-1]
    r = h
    for j in range(2):
        r = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=_init(),
                          name=f"{name}_conv{j}")(r)
        r = norm(r, f"{name}_bn{j}")
        if j == 0:
            r = layers.ReLU(name=f"{name}_relu{j}")(r)
    return layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([h, r]))


def _up(h, widths, channels, kernel_size, prefix="", norm=_batch_norm, use_bias=True, blocks=0):
    """The DCGAN generator from its smallest map: norm + ReLU on the projected
    map, stride-2 transposed convolutions with norm + ReLU, a last one to the
    image, tanh. `norm(h, name)` is BatchNorm or its self-modulated form.
    `blocks` residual blocks (`_residual`) follow each transposed convolution
    but the last, at the map it made; 0 is DCGAN's generator."""
    h = layers.ReLU(name=f"{prefix}relu_project")(norm(h, f"{prefix}bn_project"))
    stages = len(widths)
    for i in range(stages - 1):
        h = layers.Conv2DTranspose(widths[stages - 2 - i], kernel_size, strides=2,
                                   padding="same", use_bias=use_bias,
                                   kernel_initializer=_init(), name=f"{prefix}deconv{i}")(h)
        h = layers.ReLU(name=f"{prefix}relu{i}")(norm(h, f"{prefix}bn{i}"))
        for j in range(blocks):
            h = _residual(h, f"{prefix}res{i}_{j}", norm)
    h = layers.Conv2DTranspose(channels, kernel_size, strides=2, padding="same",
                               kernel_initializer=_init(), name=f"{prefix}to_image")(h)
    # floatx, not the layer policy: float32 images under mixed precision, float64
    # when a test sets floatx to float64.
    return layers.Activation("tanh", name="tanh", dtype=keras.config.floatx())(h)


def _project(z, base, width):
    h = layers.Dense(base * base * width, kernel_initializer=_init(), name="project")(z)
    return layers.Reshape((base, base, width), name="reshape")(h)


def dcgan_encoder(image_size=32, channels=3, z_dim=128, width=64, kernel_size=5, name="encoder"):
    """DCGAN encoder x → R^z_dim. Used as O-GAN's E and (with z_dim = 1) as a critic."""
    _, _, widths = dcgan_plan(image_size, width)
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = _down(x_in, widths, kernel_size)
    h = layers.Flatten(name="flatten")(h)
    out = layers.Dense(z_dim, use_bias=False, kernel_initializer=_init(), name="z")(h)
    return keras.Model(x_in, out, name=name)


def dcgan_generator(image_size=32, channels=3, z_dim=128, width=64, kernel_size=5, name="generator"):
    """DCGAN generator z → x in [-1, 1]."""
    base, _, widths = dcgan_plan(image_size, width)
    z_in = keras.Input((z_dim,), name="z")
    x_out = _up(_project(z_in, base, widths[-1]), widths, channels, kernel_size)
    return keras.Model(z_in, x_out, name=name)


def mlp_generator(z_dim=2, data_dim=2, hidden=128, depth=3, name="generator"):
    """Small MLP generator for 2-D toys."""
    z_in = keras.Input((z_dim,), name="z")
    h = z_in
    for i in range(depth):
        h = layers.Dense(hidden, activation="relu", name=f"dense{i}")(h)
    out = layers.Dense(data_dim, name="out")(h)
    return keras.Model(z_in, out, name=name)


def mlp_critic(data_dim=2, out_dim=1, hidden=128, depth=3, name="critic"):
    """Small MLP critic (or encoder, with out_dim = z_dim) for 2-D toys."""
    x_in = keras.Input((data_dim,), name="x")
    h = x_in
    for i in range(depth):
        h = layers.Dense(hidden, name=f"dense{i}")(h)
        h = layers.LeakyReLU(0.2, name=f"lrelu{i}")(h)
    out = layers.Dense(out_dim, name="out")(h)
    return keras.Model(x_in, out, name=name)


@keras.saving.register_keras_serializable(package="ogan_ign")
class ScaleShift(layers.Layer):
    """h·(γ + 1) + β, with per-sample γ, β of shape (batch, C) broadcast over the
    spatial axes of h. The "+ 1" makes γ = 0 (a fresh Dense) the identity.

    The one custom layer of the networks: a self-modulated generator saved
    alone loads after `import ogan_ign`. Written with Keras's Reshape /
    Multiply / Add instead, it would load anywhere, but the extra layers shift
    the operation indices by which checkpoints name weights, and existing
    selfmod runs could no longer resume.
    """

    def call(self, inputs):
        h, beta, gamma = inputs
        for _ in range(len(h.shape) - 2):
            beta = keras.ops.expand_dims(beta, 1)
            gamma = keras.ops.expand_dims(gamma, 1)
        return h * (gamma + 1.0) + beta


def self_modulated_batch_norm(h, z, hidden, name):
    """Self-modulated BatchNorm (the later O-GAN code, after arXiv 1810.01365):
    BatchNorm without its own affine, then h·(γ(z) + 1) + β(z), where γ and β are
    two-layer ReLU nets on the generator's input z."""
    channels = h.shape[-1]
    h = layers.BatchNormalization(center=False, scale=False, name=f"{name}_bn")(h)
    beta = layers.Dense(hidden, activation="relu", name=f"{name}_beta_hidden")(z)
    beta = layers.Dense(channels, name=f"{name}_beta")(beta)
    gamma = layers.Dense(hidden, activation="relu", name=f"{name}_gamma_hidden")(z)
    gamma = layers.Dense(channels, name=f"{name}_gamma")(gamma)
    return ScaleShift(name=f"{name}_modulate")([h, beta, gamma])


def selfmod_generator(image_size=32, channels=3, z_dim=128, width=64, kernel_size=4,
                      hidden=None, name="generator"):
    """DCGAN generator whose every BatchNorm is self-modulated by z (the later O-GAN
    code's generator, with 4×4 kernels by default). `hidden` is the width of the
    γ/β nets; the original uses z_dim."""
    base, _, widths = dcgan_plan(image_size, width)
    hidden = hidden or z_dim
    z_in = keras.Input((z_dim,), name="z")

    def norm(h, name):
        return self_modulated_batch_norm(h, z_in, hidden, name=name.replace("bn", "smbn"))

    x_out = _up(_project(z_in, base, widths[-1]), widths, channels, kernel_size, norm=norm)
    return keras.Model(z_in, x_out, name=name)


GENERATORS = {"dcgan": dcgan_generator, "selfmod": selfmod_generator}
KERNEL_SIZES = (4, 5)


@dataclasses.dataclass(frozen=True)
class DCGANChoice:
    """The DCGAN pair's two choices a script offers (train_gan.py, train_ogan.py):
    the generator, and the kernel size of every conv of both nets."""
    kernel_size: int = hparam(5, "kernel of every conv: 5, the original O-GAN code; 4, its "
                                 "later code")
    generator: str = hparam("dcgan", "dcgan, or selfmod: the later O-GAN code's "
                                     "self-modulated BatchNorm generator", choices=GENERATORS)


def chosen_generator(choice, image_size, channels, z_dim, width):
    """The generator a DCGANChoice names; a one-line ValueError for a kernel size
    outside KERNEL_SIZES."""
    if choice.kernel_size not in KERNEL_SIZES:
        raise ValueError(f"--kernel_size must be one of {', '.join(map(str, KERNEL_SIZES))}, "
                         f"got {choice.kernel_size}")
    return GENERATORS[choice.generator](image_size, channels, z_dim, width, choice.kernel_size)


def dcgan_autoencoder(image_size=32, channels=3, latent=512, width=64, kernel_size=4,
                      name="f", norm="batch", code="dense", blocks=0):
    """IGN's f (arXiv 2311.01462, its DCGAN-based f): x → x, both S×S×channels.

    Encoder: the DCGAN critic (stride-2 convolutions, BatchNorm on all but the
    first, LeakyReLU 0.2) down to the smallest map, then a `latent`-d code (512
    in the paper). Decoder: back to the smallest map, then stride-2 transposed
    convolutions with BatchNorm + ReLU, tanh. 4×4 kernels as in the paper.

    The paper's two layers between the smallest map and the code are a valid
    convolution whose kernel covers the whole map, and its transpose. Each is a
    matrix product over the flattened map, so they are written as Dense layers
    (same function, same parameters, same initialiser; faster, see
    docs/DESIGN_NOTES.md).

    norm: "batch" (the paper's BatchNorm) or "group" (GroupNorm, GROUPS groups).
    f runs on data, noise and its own outputs in one step, so BatchNorm's moving
    statistics average all three and fit none of them at inference; GroupNorm
    has none to misfit (docs/ign/RESULTS.md measures both).

    code: "dense" (the paper's: one `latent`-d vector from the whole smallest
    map) or "spatial": the code keeps the smallest map's layout, latent / base²
    channels per position (512 → 4×4×32 at 32 px), made and undone by 1×1
    convolutions, so each code entry describes one region of the image.

    blocks: residual blocks (two 3×3 convolutions and a norm after each, the
    identity beside them) after each of the decoder's upsamplings but the last:
    capacity at the larger maps (8×8 and 16×16 at 32 px), where texture is
    drawn. They see only the decoder's own maps, so no path carries the input
    past the code. 0 is the paper's f.
    """
    base, _, widths = dcgan_plan(image_size, width)
    norm = normalization(norm)
    if code not in CODES:
        raise ValueError(f"unknown code {code!r}; expected one of {list(CODES)}")
    if blocks < 0:
        raise ValueError(f"blocks must be 0 or more, got {blocks}")
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = _down(x_in, widths, kernel_size, prefix="enc_", norm=norm)
    if code == "dense":
        h = layers.Flatten(name="enc_flatten")(h)
        h = layers.Dense(latent, kernel_initializer=_init(), name="latent")(h)
        h = layers.Dense(base * base * widths[-1], use_bias=False, kernel_initializer=_init(),
                         name="dec_project")(h)
        h = layers.Reshape((base, base, widths[-1]), name="dec_reshape")(h)
    else:
        h = layers.Conv2D(max(1, latent // (base * base)), 1, kernel_initializer=_init(),
                          name="latent")(h)
        h = layers.Conv2D(widths[-1], 1, use_bias=False, kernel_initializer=_init(),
                          name="dec_project")(h)
    # A norm follows every decoder convolution, so they carry no bias.
    x_out = _up(h, widths, channels, kernel_size, prefix="dec_", norm=norm, use_bias=False,
                blocks=blocks)
    return keras.Model(x_in, x_out, name=name)
