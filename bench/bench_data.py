"""Input-pipeline throughput: images/s that ogan_ign.data delivers from a folder.

Generates --num_images JPEGs of --source_size px (smooth colour fields with a little
noise, so they compress and decode like photos, not like white noise), then times
`resolve` (it decodes and resizes every image once and keeps them in memory), the
first epoch from memory and the epochs after it; with --stream, make_dataset decodes
again in every epoch (what happens to sources over the memory budget).

    python bench/bench_data.py --num_images=10000 --image_size=128
"""

import os
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ogan_ign import data  # pylint: disable=wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 10000, "JPEGs in the generated folder.")
flags.DEFINE_integer("source_size", 256, "Side of the generated JPEGs.")
flags.DEFINE_integer("image_size", 128, "Size the pipeline resizes to.")
flags.DEFINE_integer("batch_size", 64, "Global batch size.")
flags.DEFINE_integer("later_epochs", 3, "Epochs timed after the first one.")
flags.DEFINE_boolean("stream", False, "Decode in every epoch (memory budget 0).")
flags.DEFINE_string("folder", None, "Where the JPEGs go (reused when it already holds "
                    "--num_images of them); default a folder in the temp directory.")


def make_folder(folder, num_images, size):
    os.makedirs(folder, exist_ok=True)
    if len([f for f in os.listdir(folder) if f.endswith(".jpg")]) == num_images:
        return
    rng = np.random.default_rng(0)
    for i in range(num_images):
        coarse = rng.integers(0, 256, [6, 6, 3], dtype=np.uint8)
        image = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
        noise = rng.integers(-8, 9, image.shape, dtype=np.int16)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(folder, f"{i:06d}.jpg"), quality=90)


def main(argv):
    del argv
    folder = FLAGS.folder or os.path.join(
        tempfile.gettempdir(), f"ogan_ign_bench_{FLAGS.num_images}x{FLAGS.source_size}")
    start = time.perf_counter()
    make_folder(folder, FLAGS.num_images, FLAGS.source_size)
    print(f"folder {folder}: {FLAGS.num_images} JPEGs of {FLAGS.source_size} px "
          f"ready in {time.perf_counter() - start:.1f} s")

    start = time.perf_counter()
    spec = data.resolve(folder, image_size=FLAGS.image_size)
    print(f"resolve (decodes every image once): "
          f"{spec.num_examples / (time.perf_counter() - start):,.0f} images/s "
          f"({time.perf_counter() - start:.2f} s)")
    start = time.perf_counter()
    budget = 0 if FLAGS.stream else data.DEFAULT_MEMORY_BUDGET
    ds = data.make_dataset(spec, FLAGS.batch_size, memory_budget=budget)
    steps = spec.num_examples // FLAGS.batch_size
    batches = iter(ds)
    for epoch in range(1 + FLAGS.later_epochs):
        for _ in range(steps):
            next(batches)
        elapsed = time.perf_counter() - start
        label = "first epoch" if epoch == 0 else f"epoch {epoch + 1}"
        print(f"{label}: {steps * FLAGS.batch_size / elapsed:,.0f} images/s "
              f"({elapsed:.2f} s, {FLAGS.image_size} px, "
              f"{'decoded every epoch' if FLAGS.stream else 'from memory'})")
        start = time.perf_counter()

if __name__ == "__main__":
    app.run(main)
