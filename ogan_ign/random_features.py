"""A fixed random convolutional network: the feature space of IGN's
`l1_random_features` distance (`distances.ign_distance`).

φ(y) = (h₁, h₂, h₃), h_l = leaky_relu(conv_l(h_{l−1}), 0.2), h₀ = y: three 3×3
convolutions of stride 2 ("same" padding, no bias) with 32, 64 and 128 output
channels. Its filters are drawn once, from a fixed seed, N(0, 2 / ((1 + 0.2²)·fan_in))
(He's scale for this slope, which keeps a layer's mean square about its input's); they
are constants, never trained and never saved: the same for every run, dtype and device,
and a function of the image's channel count alone. A blurred image keeps its pixels'
means but loses the local patterns such filters respond to; the distance weighs both.
"""

import functools

import numpy as np
import tensorflow as tf

WIDTHS = (32, 64, 128)
SLOPE = 0.2
SEED = 0


@functools.lru_cache(maxsize=None)
def filters(channels):
    """The network's filters for images of `channels` channels: a tuple of float64
    arrays (3, 3, c_in, c_out), one per layer; the same on every call."""
    rng = np.random.default_rng([SEED, channels])
    out, c_in = [], channels
    for c_out in WIDTHS:
        std = np.sqrt(2.0 / ((1.0 + SLOPE ** 2) * 9 * c_in))
        out.append(rng.normal(0.0, std, (3, 3, c_in, c_out)))
        c_in = c_out
    return tuple(out)


def features(images):
    """φ(images) for images (n, H, W, C): the list [h₁, h₂, h₃] of feature maps
    (n, ⌈H/2ˡ⌉, ⌈W/2ˡ⌉, WIDTHS[l−1]), in the images' dtype."""
    h, maps = images, []
    for kernel in filters(int(images.shape[-1])):
        h = tf.nn.conv2d(h, tf.constant(kernel, h.dtype), strides=2, padding="SAME")
        h = tf.maximum(h, SLOPE * h)  # leaky ReLU; its slope exact in float64
        maps.append(h)
    return maps
