"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training", arXiv 2006.10738): the same random, differentiable transform T of
real and generated images before the critic, so that a critic trained on a few
thousand images does not memorise them, while G still learns p_data (T applies
to both sides, and gradients flow through T to G).

Images are NHWC in [-1, 1]. Three policies, applied in the order given:

    color        brightness x + b,            b ~ U[−0.5, 0.5)
                 saturation m_c + s·(x − m_c), s ~ U[0, 2),  m_c the pixel's mean over channels
                 contrast   m + k·(x − m),     k ~ U[0.5, 1.5), m the image's mean
    translation  shift by (dy, dx), each an integer in [−r, r], r = round(size/8),
                 the uncovered border filled with 0
    cutout       a square of side round(size/2) set to 0; its centre is uniform
                 over the image, so the square may be cut by the border

every draw per sample. "0" is the value 0 of the [-1, 1] images, mid-grey,
not black (−1): the centre of the range, as the paper's code fills its [-1, 1]
images, and what Cutout's zero is on centred data.

`diff_augment(x, policy, seed)` is a pure function of (x, seed): the draws come
from stateless random ops, so the same seed repeats the same T (the single
loss needs that: see `losses.GANLoss`), and each policy draws from its own
stream, so turning one on does not change another's draws.

Not offered for IGN: its critic δ(y) = distance(f(y), y) is the generator f
itself, so L_rec on T(x) would teach f to reconstruct (keep fixed) augmented
images, and its samples f(z) would move toward T(data) — cut-out squares and
shifted borders — instead of the data.
"""

import tensorflow as tf

POLICIES = ("color", "translation", "cutout")


def parse_policy(text):
    """'color,translation,cutout' → ('color', 'translation', 'cutout'); '' → ()
    (off); a one-line ValueError for an unknown or repeated name."""
    text = text or ""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in POLICIES]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"diffaugment {text!r}: expected comma-separated names from "
                         f"{', '.join(POLICIES)}, each once, or '' (off)")
    return names


# ------------------------------------------------------------- the ops
def brightness(x, shift):
    """x + b per sample; `shift` (batch,)."""
    return x + tf.reshape(shift, [-1, 1, 1, 1])


def saturation(x, factor):
    """m_c + s·(x − m_c), m_c the mean over channels of each pixel; `factor` (batch,)."""
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return mean + tf.reshape(factor, [-1, 1, 1, 1]) * (x - mean)


def contrast(x, factor):
    """m + k·(x − m), m the mean of each image; `factor` (batch,)."""
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return mean + tf.reshape(factor, [-1, 1, 1, 1]) * (x - mean)


def translate(x, dy, dx):
    """out[i, j] = x[i − dy, j − dx], 0 where that falls outside; dy, dx int (batch,)."""
    h, w = x.shape[1], x.shape[2]
    rows = tf.range(h)[None, :] - tf.cast(dy, tf.int32)[:, None]   # (batch, h)
    cols = tf.range(w)[None, :] - tf.cast(dx, tf.int32)[:, None]   # (batch, w)
    out = tf.gather(x, tf.clip_by_value(rows, 0, h - 1), axis=1, batch_dims=1)
    out = tf.gather(out, tf.clip_by_value(cols, 0, w - 1), axis=2, batch_dims=1)
    inside = (_within(rows, h)[:, :, None, None] & _within(cols, w)[:, None, :, None])
    return out * tf.cast(inside, x.dtype)


def cut_out(x, top, left, size):
    """x with rows [top, top + size) × cols [left, left + size) set to 0 (clipped
    to the image); top, left int (batch,), size (height, width)."""
    h, w = x.shape[1], x.shape[2]
    rows = tf.range(h)[None, :] - tf.cast(top, tf.int32)[:, None]
    cols = tf.range(w)[None, :] - tf.cast(left, tf.int32)[:, None]
    square = (_within(rows, size[0])[:, :, None, None]
              & _within(cols, size[1])[:, None, :, None])
    return x * tf.cast(tf.logical_not(square), x.dtype)


def _within(index, n):
    return (index >= 0) & (index < n)


# ------------------------------------------------------------ the draws
def _integers(seed, stream, batch, low, high):
    """Integers uniform in [low, high] (inclusive), per sample."""
    return tf.random.stateless_uniform([batch], _fold(seed, stream), minval=low,
                                       maxval=high + 1, dtype=tf.int32)


def _uniform(seed, stream, batch, low, high, dtype):
    return tf.random.stateless_uniform([batch], _fold(seed, stream), minval=low,
                                       maxval=high, dtype=dtype)


def _fold(seed, stream):
    return tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), stream)


def draws(policy, seed, batch, height, width, dtype=tf.float32):
    """The random parameters of T for a batch: {name: (batch,) tensor}. Each
    parameter has its own stream of `seed` (its index in a fixed list)."""
    out = {}
    if "color" in policy:
        out["brightness"] = _uniform(seed, 0, batch, -0.5, 0.5, dtype)
        out["saturation"] = _uniform(seed, 1, batch, 0.0, 2.0, dtype)
        out["contrast"] = _uniform(seed, 2, batch, 0.5, 1.5, dtype)
    if "translation" in policy:
        ry, rx = int(height / 8 + 0.5), int(width / 8 + 0.5)
        out["dy"] = _integers(seed, 3, batch, -ry, ry)
        out["dx"] = _integers(seed, 4, batch, -rx, rx)
    if "cutout" in policy:
        sy, sx = cutout_size(height, width)
        # The centre ranges over the image; an odd side keeps it on a pixel.
        out["top"] = _integers(seed, 5, batch, 0, height - sy % 2) - sy // 2
        out["left"] = _integers(seed, 6, batch, 0, width - sx % 2) - sx // 2
    return out


def cutout_size(height, width):
    """The cut-out square's side: half the image, rounded."""
    return int(height / 2 + 0.5), int(width / 2 + 0.5)


def diff_augment(x, policy, seed):
    """T(x): the ops of `policy` (names or a comma-separated string) in its
    order, with the draws of `draws(policy, seed, ...)`. `seed` is a stateless
    seed pair; the same seed gives the same T."""
    policy = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
    if not policy:
        return x
    p = draws(policy, seed, tf.shape(x)[0], x.shape[1], x.shape[2], x.dtype)
    for name in policy:
        if name == "color":
            x = contrast(saturation(brightness(x, p["brightness"]), p["saturation"]),
                         p["contrast"])
        elif name == "translation":
            x = translate(x, p["dy"], p["dx"])
        else:
            x = cut_out(x, p["top"], p["left"], cutout_size(x.shape[1], x.shape[2]))
    return x
