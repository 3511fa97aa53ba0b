"""Figures as PNG files: grids of images in [-1, 1], written with imageio.

Every figure of the project is a table of images (rows × columns): random
samples, real | reconstructed pairs, interpolation paths, f applied k times.
`save_table` is the one writer; files appear atomically (`atomic.replacing`), so
a crash never leaves half a PNG. PNGs are written mode 0644 (readable by all).
"""

import os

import imageio.v3 as iio
import numpy as np

from ogan_ign import atomic


def to_uint8(images):
    """[-1, 1] floats → uint8 in [0, 255]."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def table(images, pad=1, pad_value=255):
    """A (rows, cols, H, W, C) array of images → one (H', W', C) uint8 picture."""
    images = to_uint8(images)
    if images.ndim != 5:
        raise ValueError(f"expected (rows, cols, H, W, C) images, got shape {images.shape}")
    rows, cols, h, w, c = images.shape
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, np.uint8)
    for r in range(rows):
        for k in range(cols):
            top, left = pad + r * (h + pad), pad + k * (w + pad)
            out[top:top + h, left:left + w] = images[r, k]
    return out[..., 0] if c == 1 else out


def grid(images, cols=None):
    """A batch (N, H, W, C) laid out row by row, `cols` wide (square by default).

    Missing cells of the last row stay blank.
    """
    images = np.asarray(images, dtype=np.float32)
    n = images.shape[0]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    filler = np.ones((rows * cols - n,) + images.shape[1:], np.float32)  # white
    padded = np.concatenate([images, filler], axis=0)
    return padded.reshape((rows, cols) + images.shape[1:])


def save_png(path, picture):
    """Writes a uint8 picture to `path` atomically, mode 0644 (OSError as raised)."""
    with atomic.replacing(path) as tmp:
        iio.imwrite(tmp, picture, extension=".png")
        os.chmod(tmp, 0o644)
    return path


def save_table(path, images, pad=1):
    """Saves a (rows, cols, H, W, C) table of [-1, 1] images as one PNG."""
    return save_png(path, table(images, pad=pad))


def save_grid(path, images, cols=None, pad=1):
    """Saves a batch (N, H, W, C) of [-1, 1] images as one PNG grid."""
    return save_table(path, grid(images, cols), pad=pad)


def side_by_side(*batches):
    """Batches of equal length (N, H, W, C) → a table whose row i is
    (batches[0][i], batches[1][i], ...): e.g. real | reconstruction pairs."""
    return np.stack([np.asarray(b, np.float32) for b in batches], axis=1)
