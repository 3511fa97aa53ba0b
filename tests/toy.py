"""The 2-D ring of Gaussians: the standard toy on which a GAN shows that it
learns every mode (8 modes on a circle of radius 2, σ = 0.02), and the recipe
of the "it learns" test (tests/test_gan.py) that bench/toy_ring.py repeats over
many seeds."""

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import gan, networks


def ring_centres(modes=8, radius=2.0):
    angles = 2.0 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def ring_of_gaussians(n, rng, modes=8, radius=2.0, sigma=0.02):
    """n samples (float32, shape (n, 2)) from the mixture, drawn with numpy `rng`."""
    centres = ring_centres(modes, radius)
    k = rng.integers(0, modes, n)
    return (centres[k] + sigma * rng.standard_normal((n, 2))).astype(np.float32)


def mode_stats(samples, modes=8, radius=2.0, sigma=0.02):
    """(share of samples within 3σ of each mode, share within 3σ of any mode)."""
    centres = ring_centres(modes, radius)
    distance = np.linalg.norm(np.asarray(samples)[:, None, :] - centres[None], axis=-1)
    near = distance.min(axis=1) < 3.0 * sigma
    shares = np.bincount(distance.argmin(axis=1)[near], minlength=modes) / len(samples)
    return shares, float(near.mean())


def train_ring_gan(seed, steps=4000, batch_size=256):
    """A SingleLossGAN trained on the ring: the recipe of the "it learns" test.

    WGAN objective + GAN-QP, MLPs of 3×128, Adam(1e-3, β = 0.5, 0.9) decayed to 0
    by a cosine over the run (why the decay: docs/DESIGN_NOTES.md).
    """
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = gan.SingleLossGAN(networks.mlp_generator(8, 2, hidden=128, depth=3),
                              networks.mlp_critic(2, 1, hidden=128, depth=3),
                              objective="wgan", penalty="qp", seed=seed)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps)
    model.compile(optimizer=keras.optimizers.Adam(schedule, beta_1=0.5, beta_2=0.9),
                  steps_per_execution=100)
    data = tf.data.Dataset.from_tensor_slices(ring_of_gaussians(steps * batch_size, rng))
    model.fit(data.batch(batch_size), epochs=1, verbose=0)
    return model
