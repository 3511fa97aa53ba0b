"""Standing statistics: BatchNorm statistics re-estimated for sampling (BigGAN,
Brock et al., arXiv 1809.11096, appendix C.1; StudioGAN's "standing_statistics").

A generator trains on its own batch statistics, while its moving statistics are
a momentum average over many past weights. Standing statistics are measured on
the weights as they are: the sampler runs in training mode on N batches
z_1 … z_N of its noise, and every BatchNorm layer keeps the equal-weight mean of
what it saw,

    moving_mean = (1/N) Σ_k μ_k,    moving_variance = (1/N) Σ_k σ²_k,

μ_k, σ²_k the layer's batch mean and (biased, Keras's) batch variance on z_k.
They are what the layer then normalises with in inference mode. Keras's update
m ← momentum·m + (1 − momentum)·s does the averaging when batch k (k = 0, 1, …)
runs with momentum k / (k + 1): a running mean of the batch statistics.

Layers are called in training mode with the layers before them normalising by
their own batch statistics, as BigGAN does. A BatchNorm layer that is not
trainable normalises with its moving statistics in training mode too, and keeps
them. With a weight average (`averaging.WeightAverage`), swap it in first: the
statistics belong to the weights they were measured with.
"""

import contextlib
import numbers

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import one_loss

BATCH_SIZE = 64  # batches of this size when the caller names none (Config.batch_size's default)


def _check_batches(batches):
    if isinstance(batches, bool) or not isinstance(batches, numbers.Integral) or batches < 0:
        raise ValueError(f"standing statistics need a whole number of batches >= 0 (0: off), "
                         f"got {batches!r}")


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 2:
        raise ValueError(f"standing statistics need batches of at least 2, got {batch_size!r}")


def measured_layers(net):
    """The BatchNorm layers of `net` whose statistics standing statistics set:
    the trainable ones (renormalising layers are refused: their update is
    another formula)."""
    layers = [bn for bn in one_loss.batchnorm_layers(net) if bn.trainable]
    renorm = [bn.name for bn in layers if bn.renorm]
    if renorm:
        raise ValueError(f"standing statistics do not cover BatchNorm renorm ({renorm})")
    return layers


def set_standing_statistics(net, make_noise, batches):
    """Sets every BatchNorm layer's moving statistics of `net` to the mean over
    `batches` of its batch statistics; `make_noise(k)` is the input of batch k.
    Returns the statistics it replaced, [(mean, variance)] per layer, for
    `restore`."""
    layers = measured_layers(net)
    before = [(bn.moving_mean.numpy(), bn.moving_variance.numpy()) for bn in layers]
    momenta = [bn.momentum for bn in layers]
    try:
        for k in range(int(batches)):
            for bn in layers:
                bn.momentum = k / (k + 1.0)  # read when the layer is called (eagerly)
            net(make_noise(k), training=True)
    finally:
        for bn, momentum in zip(layers, momenta):
            bn.momentum = momentum
    return before


def network_copy(net):
    """A new network of `net`'s architecture holding its weights and statistics as
    they are now: a model's sampling copy (IGN's f_sampling, O-GAN's
    generator_sampling), whose statistics are then set apart from `net`'s."""
    copy = keras.models.clone_model(net)
    copy.set_weights(net.get_weights())
    return copy


def is_copy_of(copy, net):
    """Whether `copy` holds weights of `net`'s shapes, in its order."""
    return [w.shape for w in copy.weights] == [w.shape for w in net.weights]


def set_for_export(model, batches, make_noise, make_images):
    """Standing statistics over `batches` batches on each of
    `model.standing_targets()`: on `make_noise(k)` for a network that samples
    ("noise"), on `make_images(k)` (training images) for one that takes images
    ("data"), or on what a callable source(make_noise, make_images) builds from
    them for one fed something else (O-GAN's reconstructing G: codes of images)."""
    _check_batches(batches)
    feeds = {"noise": make_noise, "data": make_images}
    for net, source in model.standing_targets():
        feed = source(make_noise, make_images) if callable(source) else feeds[source]
        set_standing_statistics(net, feed, batches)


def exported_copy(model, batches, make_noise, make_images):
    """A copy of `model` (its class, settings and weights) with `set_for_export`
    applied: the model as a training run with --standing_stats exports it.
    `model` itself is not changed."""
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    set_for_export(copy, batches, make_noise, make_images)
    return copy


def image_batches(images, batch_size, seed=0):
    """make_images(k) of `images` (a numpy array N × …): batches of `batch_size`
    drawn without replacement in an order seeded by `seed`, again from the
    start after N // batch_size batches."""
    _check_batch_size(batch_size)
    if len(images) < batch_size:
        raise ValueError(f"standing statistics need at least one batch of {batch_size} "
                         f"images, got {len(images)}")
    order = np.random.default_rng(seed).permutation(len(images))
    per_pass = len(images) // batch_size

    def make_images(k):
        start = (k % per_pass) * batch_size
        return tf.constant(images[order[start:start + batch_size]])
    return make_images


def restore(net, statistics):
    """Puts back what `set_standing_statistics` returned."""
    for bn, (mean, variance) in zip(measured_layers(net), statistics):
        bn.moving_mean.assign(mean)
        bn.moving_variance.assign(variance)


def model_noise(model, batch_size, seed=None):
    """make_noise(k) of the noise a model trained on (`training_noise`: its
    `make_noise` at IGN's temperature 1): fresh draws, or for a seed the fixed
    draws of streams STANDING − k, which nothing else reads."""
    _check_batch_size(batch_size)
    if seed is None:
        return lambda k: model.training_noise(batch_size)
    return lambda k: model.training_noise(batch_size, seed, stream=one_loss.STANDING - k)


def normal_noise(z_dim, batch_size, seed=None):
    """make_noise(k) of N(0, I) vectors, for a bare generator z → x."""
    _check_batch_size(batch_size)
    def make_noise(k):
        if seed is None:
            return tf.random.normal((batch_size, z_dim))
        return tf.random.stateless_normal(
            (batch_size, z_dim), seed=one_loss.fixed_seed(seed, one_loss.STANDING - k))
    return make_noise


@contextlib.contextmanager
def standing_statistics(net, make_noise, batches):
    """The block runs with `net`'s BatchNorm layers holding standing statistics
    over `batches` batches of `make_noise(k)`; their own statistics are back
    after it. batches = 0 changes nothing."""
    _check_batches(batches)
    if batches == 0:
        yield
        return
    before = set_standing_statistics(net, make_noise, batches)
    try:
        yield
    finally:
        restore(net, before)


def standing(model, batches, batch_size=BATCH_SIZE, seed=None, training=False):
    """`standing_statistics` of a one_loss.OneLossModel's sampler (the generator
    of SingleLossGAN / O-GAN, IGN's f) on batches of its own noise (fixed by
    `seed`, else fresh):

        with standing(model, 64):
            x = model.generate(10_000)

    training: whether the block samples in training mode, which normalises by
    each batch's own statistics: refused with batches > 0.
    """
    _check_batches(batches)
    if batches and training:
        raise ValueError("standing statistics are for inference: training=True normalises "
                         "by each batch's own statistics")
    return standing_statistics(model.sampler, model_noise(model, batch_size, seed), batches)


def sample(model, n_or_z, seed=None, training=False, batches=0, batch_size=BATCH_SIZE):
    """What every model's `generate` returns: float32 `model.sampler(z)` for n noise
    draws (`model.make_noise`, fresh or fixed by `seed`) or for given z (cast to
    `model.noise_dtype`); with batches = N > 0, under `standing` statistics of N
    batches of `batch_size` draws (fixed by `seed` too), the model's own
    statistics back after."""
    with standing(model, batches, batch_size, seed, training):
        if isinstance(n_or_z, (int, np.integer)):
            z = model.make_noise(n_or_z, seed)
        else:
            z = tf.convert_to_tensor(n_or_z, dtype=model.noise_dtype)
        return one_loss.float32(model.sampler(z, training=training))
