"""Input-pipeline throughput of a source over the memory budget, beside what a
training step consumes: images/s of the decoding pass (the first run's check,
which writes the cache), of epochs read from the cache, and of the SingleLossGAN
and IGN steps at the same size.

Generates --num_images JPEGs of --source_size px (smooth colour fields with a little
noise, so they compress and decode like photos, not like white noise). For each of
--sizes, with the memory budget at 0 so that the folder goes through its cache:

* decoding epoch: `Catalog.resolve` with an empty cache folder — every image
  decoded from its JPEG, resized, written to the cache (what the first epoch of a
  large source costs; before the cache, every epoch cost this);
* second run: `resolve` again, which reads the cache's record and decodes nothing;
* cached epochs: `make_dataset` (batch --batch_size, shuffled, float32 in [-1, 1],
  as training reads it) over --cached_epochs epochs from the memory-mapped cache;
* step: `model.train_step` of the default networks (width 64, `--mixed_precision
  auto` resolved as the scripts do, XLA off as on a CPU) on a fixed batch of
  --batch_size, --step_steps steps after one warm-up; skipped with --models none.

    PYTHONPATH=. python bench/bench_data.py --num_images 300 --sizes 64,128,256
"""

import os
import shutil
import sys
import tempfile
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import tensorflow as tf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]
# pylint: disable=wrong-import-position
from flops import build, define_list, load_average
from ogan_ign import data, training

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_images", 2000, "JPEGs in the generated folder.")
flags.DEFINE_integer("source_size", 1024, "Side of the generated JPEGs (CelebA-HQ's and "
                     "FFHQ's originals are 1024 px).")
flags.DEFINE_string("sizes", "64,128,256", "Sizes the pipeline resizes to.")
flags.DEFINE_integer("batch_size", 64, "Batch of the pipeline and of the step.")
flags.DEFINE_integer("cached_epochs", 5, "Epochs timed from the cache.")
flags.DEFINE_integer("step_steps", 2, "Training steps timed per model and size.")
define_list("models", "gan,ign", ("gan", "ogan", "ign", "none"),
            "models whose step consumption is timed; none: skip")
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


def timed(function):
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def pipeline_rates(folder, size, cache_dir):
    """(decoding img/s, second run's resolve seconds, cached-epoch img/s)."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    resolve = lambda: data.Catalog(memory_budget=0).resolve(folder, image_size=size,
                                                            cache_dir=cache_dir)
    spec, decoding = timed(resolve)
    assert spec.cached
    spec, second_run = timed(resolve)
    batches = iter(data.make_dataset(spec, FLAGS.batch_size, memory_budget=0))
    steps = spec.num_examples // FLAGS.batch_size
    next(batches)  # the pipeline's start-up, not an epoch's cost
    _, seconds = timed(lambda: [next(batches) for _ in range(steps * FLAGS.cached_epochs)])
    return (spec.num_examples / decoding, second_run,
            steps * FLAGS.batch_size * FLAGS.cached_epochs / seconds)


def step_rate(kind, size):
    """img/s of `kind`'s training step at `size` px, as the scripts run it."""
    precision = training.resolve_precision("auto")[0]
    with training.precision_policy(precision):
        model, _ = build(kind, size)
        model.compile()
    step = tf.function(model.train_step)
    x = tf.constant(np.random.default_rng(0).uniform(
        -1, 1, (FLAGS.batch_size, size, size, 3)).astype("float32"))
    float(step(x)["loss/total"])  # traced and warmed up
    _, seconds = timed(lambda: [float(step(x)["loss/total"])
                                for _ in range(FLAGS.step_steps)])
    return FLAGS.batch_size * FLAGS.step_steps / seconds


def main(argv):
    del argv
    print(f"load average at start: {' '.join(load_average())}; {os.cpu_count()} CPUs")
    folder = FLAGS.folder or os.path.join(
        tempfile.gettempdir(), f"ogan_ign_bench_{FLAGS.num_images}x{FLAGS.source_size}")
    _, seconds = timed(lambda: make_folder(folder, FLAGS.num_images, FLAGS.source_size))
    print(f"folder {folder}: {FLAGS.num_images} JPEGs of {FLAGS.source_size} px "
          f"ready in {seconds:.1f} s")
    models = [m for m in FLAGS.models.split(",") if m != "none"]
    print("| size | decoding epoch | second run's check | cached epoch | cached / decoding | "
          + "".join(f"{m} step | " for m in models)
          + ("cached / fastest step |" if models else ""))
    cache_root = tempfile.mkdtemp(prefix="ogan_ign_bench_cache_")
    try:
        for size in [int(s) for s in FLAGS.sizes.split(",")]:
            decoding, second_run, cached = pipeline_rates(
                folder, size, os.path.join(cache_root, str(size)))
            steps = [step_rate(kind, size) for kind in models]
            print(f"| {size} px | {decoding:,.0f} img/s | {second_run:.2f} s | "
                  f"{cached:,.0f} img/s | {cached / decoding:,.1f}× | "
                  + "".join(f"{s:,.1f} img/s | " for s in steps)
                  + (f"{cached / max(steps):,.0f}× |" if steps else ""), flush=True)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)
    print(f"load average at end: {' '.join(load_average())}")


if __name__ == "__main__":
    app.run(main)
