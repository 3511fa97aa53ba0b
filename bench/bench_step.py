"""Training-step throughput: the single loss against two alternating optimizers.

Same DCGAN nets (32×32×3, width 64, z_dim 128), same batch, same objective and
penalty, measured side by side in one process:

    PYTHONPATH=. python bench/bench_step.py [--batch_size 64] [--steps 30] [--repeats 3]

The single-loss step runs the generator forward once; the alternating step
runs it twice (once for the critic's update, once for its own). But the single
loss also back-propagates into the critic's weights through D(G(z)) (those
gradients cancel against D(sg(G(z)))'s, after being computed), which the
alternating generator step skips. Counting a backward pass as two forwards,
with g and d the generator's and critic's forward costs:

    single loss:  3g + 9d        alternating:  4g + 8d

so the single loss is ahead only by (g − d): about even for the DCGAN pair,
whose generator and critic cost about the same.
"""

import time

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

from ogan_ign import gan, networks

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 64, "images per step")
flags.DEFINE_integer("image_size", 32, "image side")
flags.DEFINE_integer("steps", 30, "timed steps per measurement")
flags.DEFINE_integer("repeats", 3, "measurements per model, interleaved; the best is kept")
flags.DEFINE_string("objective", "wgan", "wgan | hinge | ns")
flags.DEFINE_string("penalty", "qp", "qp | gp | none")


def build(cls):
    keras.utils.set_random_seed(0)
    model = cls(networks.dcgan_generator(FLAGS.image_size, 3, z_dim=128),
                networks.dcgan_encoder(FLAGS.image_size, 3, z_dim=1, name="critic"),
                objective=FLAGS.objective,
                penalty=None if FLAGS.penalty == "none" else FLAGS.penalty)
    model.compile(jit_compile=False)
    return model


def images_per_second(model, step, batch):
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        logs = step(batch)
    float(logs["loss/total"])  # wait for the last step
    return FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start)


def main(_):
    rng = np.random.default_rng(0)
    shape = (FLAGS.batch_size, FLAGS.image_size, FLAGS.image_size, 3)
    batch = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    models = {"single loss (1 optimizer)": build(gan.SingleLossGAN),
              "alternating (2 optimizers)": build(gan.TwoPlayerGAN)}
    steps = {name: tf.function(m.train_step) for name, m in models.items()}
    for name in models:  # trace and warm up
        for _ in range(3):
            steps[name](batch)
    best = {name: 0.0 for name in models}
    for _ in range(FLAGS.repeats):  # interleaved so both see the same machine load
        for name, model in models.items():
            best[name] = max(best[name], images_per_second(model, steps[name], batch))
    print(f"DCGAN {FLAGS.image_size}x{FLAGS.image_size}x3, batch {FLAGS.batch_size}, "
          f"{FLAGS.objective} + {FLAGS.penalty}, {FLAGS.steps} steps x {FLAGS.repeats}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads")
    for name, value in best.items():
        print(f"  {name:28s} {value:8.1f} images/s")
    single, alternating = best.values()
    print(f"  ratio single / alternating   {single / alternating:8.2f}x")


if __name__ == "__main__":
    app.run(main)
