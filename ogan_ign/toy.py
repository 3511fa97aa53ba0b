"""The 2-D ring of Gaussians: the standard toy on which a GAN shows that it
learns every mode (8 modes on a circle of radius 2, σ = 0.02)."""

import numpy as np


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
