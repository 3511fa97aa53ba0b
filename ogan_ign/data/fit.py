"""The one image fitting: any decoded image → uint8 S×S×C, the same pixels from
every source (folders, archives and TFDS)."""

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from ogan_ign.data.common import to_unit_range


def fit_image(image, image_size, channels):
    """A Pillow image → uint8 S×S×C: 16-bit samples scaled to 8 bits (v / 257); alpha
    composited over black, the -1 background (rgb · a / 255, rounded); grey ↔ RGB
    (ITU-R 601 luma); centre-cropped to a square; resized with an antialiased
    bilinear filter. Compositing comes before resizing, so the colour of a
    transparent pixel never bleeds into its neighbours."""
    mode = image.mode
    if mode.startswith("I") or mode == "F":  # 16- or 32-bit grey (16-bit PNG)
        scale = 1.0 if mode == "F" else 1 / 257
        values = np.asarray(image, np.float32) * scale
        image = Image.fromarray(np.round(np.clip(values, 0, 255)).astype(np.uint8))
    elif mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = np.asarray(image.convert("RGBA"), np.float32)
        rgb = rgba[..., :3] * (rgba[..., 3:] / 255.0)  # over black
        image = Image.fromarray(np.round(rgb).astype(np.uint8))
        if mode in ("LA", "La") and channels == 1:
            image = image.convert("L")
    if image.mode not in ("L", "RGB"):
        image = image.convert("L" if image.mode == "1" else "RGB")
    target = "RGB" if channels == 3 else "L"
    if image.mode != target:
        image = image.convert(target)
    width, height = image.size
    side = min(width, height)
    if width != height:
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side))
    if side != image_size:
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    x = np.asarray(image, np.uint8)
    return x[..., None] if x.ndim == 2 else x


def fit_encoded(raw, image_size, channels):
    """Encoded image bytes → `fit_image`, decoded at the smallest DCT scale still
    ≥ S for JPEGs (libjpeg does that for free)."""
    with Image.open(io.BytesIO(raw)) as image:
        image.draft("RGB" if channels == 3 else "L", (image_size, image_size))
        image.load()
        return fit_image(image, image_size, channels)


def fit_array(pixels, image_size, channels):
    """A decoded uint8 (or 16-bit grey) H×W×C array, C = 1 grey, 2 grey + alpha,
    3 RGB, 4 RGBA, as TFDS hands it out → `fit_image`."""
    pixels = np.asarray(pixels)
    return fit_image(Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels),
                     image_size, channels)


def fit_tensor(image, image_size, channels):
    """`fit_array` inside a tf.data pipeline: uint8 H×W×C tensor → uint8 S×S×C."""
    fitted = tf.numpy_function(lambda x: fit_array(x, image_size, channels), [image],
                               tf.uint8, stateful=False)
    return tf.ensure_shape(fitted, [image_size, image_size, channels])


def frame_fashion_mnist(x, image_size, channels):
    """Fashion-MNIST's uint8 B×28×28×1 → float32 B×S×S×C in [-1, 1]: native at 28 px;
    at 32 px padded with 2 px of background (-1), as DCGAN-style 32 px models expect,
    so strokes stay pixel-exact; at 64 px and above the padded 32 px image resized
    (antialiased bilinear, in float), so the garment fills the same fraction of the
    frame at every size. Grey, opaque and square, it needs no other step of
    `fit_image`."""
    x = to_unit_range(tf.convert_to_tensor(x))
    if image_size != 28:
        x = tf.pad(x, [[0, 0], [2, 2], [2, 2], [0, 0]], constant_values=-1.0)
    if image_size not in (28, 32):
        x = tf.image.resize(x, [image_size, image_size], method="bilinear", antialias=True)
    if channels == 3:
        x = tf.tile(x, [1, 1, 1, 3])
    return x
