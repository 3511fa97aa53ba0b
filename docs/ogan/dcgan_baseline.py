"""The comparison baseline of docs/ogan/RESULTS.md: a plain two-optimizer DCGAN
(arXiv 1511.06434) on the same networks, data and steps as the O-GAN runs.

`gan.TwoPlayerGAN` with the non-saturating objective and no penalty: two
Adam(2e-4, β1 = 0.5), one critic then one generator update per batch, none of
the single-loss engine. Writes samples.png and generator.keras into --out_dir.

    PYTHONPATH=. python docs/ogan/dcgan_baseline.py --width 32 --steps 3000 \\
        --out_dir runs/dcgan_baseline
"""

import os
import sys
import time

from absl import app
from absl import flags
import keras
import numpy as np
import tensorflow as tf

from ogan_ign import data, images, networks
from ogan_ign.gan import TwoPlayerGAN

flags.DEFINE_string("out_dir", "runs/dcgan_baseline", "where samples.png and generator.keras go")
flags.DEFINE_integer("image_size", 32, "image side")
flags.DEFINE_integer("width", 64, "channels of the first critic conv")
flags.DEFINE_integer("z_dim", 128, "noise size")
flags.DEFINE_integer("batch_size", 64, "batch size")
flags.DEFINE_integer("steps", 3000, "training steps")
flags.DEFINE_integer("seed", 0, "seed")
flags.DEFINE_list("save_at", [], "also write generator_<step>.keras at these steps, e.g. 3000")
FLAGS = flags.FLAGS


def fail(message):
    """A one-line error and exit status 2, before any work starts."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    del argv
    try:
        save_at = sorted({int(step) for step in FLAGS.save_at})
    except ValueError:
        fail(f"--save_at takes step numbers, got {','.join(FLAGS.save_at)}")
    if any(step < 1 or step > FLAGS.steps for step in save_at):
        fail(f"--save_at steps must be within 1..{FLAGS.steps}, got {save_at}")
    keras.utils.set_random_seed(FLAGS.seed)
    spec = data.resolve("fashion_mnist", image_size=FLAGS.image_size)
    generator = networks.dcgan_generator(spec.image_size, spec.channels, FLAGS.z_dim, FLAGS.width)
    critic = networks.dcgan_encoder(spec.image_size, spec.channels, 1, FLAGS.width, name="critic")
    model = TwoPlayerGAN(generator, critic, z_dim=FLAGS.z_dim, objective="ns", penalty=None,
                         seed=FLAGS.seed)
    model.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
                  generator_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    dataset = data.make_dataset(spec, FLAGS.batch_size, seed=FLAGS.seed)
    os.makedirs(FLAGS.out_dir, exist_ok=True)

    class SaveAt(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 in save_at:
                generator.save(os.path.join(FLAGS.out_dir, f"generator_{batch + 1}.keras"))

    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=FLAGS.steps, epochs=1, verbose=2, callbacks=[SaveAt()])
    print(f"{FLAGS.steps} steps in {time.perf_counter() - start:.0f} s", flush=True)
    z = tf.random.stateless_normal((64, FLAGS.z_dim), seed=[FLAGS.seed, 0])
    images.save_grid(os.path.join(FLAGS.out_dir, "samples.png"),
                     np.asarray(generator(z, training=False)))
    generator.save(os.path.join(FLAGS.out_dir, "generator.keras"))


if __name__ == "__main__":
    app.run(main)
