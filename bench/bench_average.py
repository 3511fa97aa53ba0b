"""The cost of --ema: IGN training steps with and without the weight average.

The average (ogan_ign.averaging.WeightAverage) runs as a callback after every
step, outside the compiled step: one tf.function that reads every weight once
and writes its average once. Measured side by side in one process, interleaved:

    PYTHONPATH=. python bench/bench_average.py [--width 32] [--batch_size 64] [--steps 30]

Prints ms per step of each and their ratio (with average / without).
"""

import time

from absl import app, flags
import keras
import numpy as np

from ogan_ign import averaging, ign, networks

FLAGS = flags.FLAGS
flags.DEFINE_integer("width", 32, "channels of f's first conv")
flags.DEFINE_integer("image_size", 32, "image side")
flags.DEFINE_integer("batch_size", 64, "images per step")
flags.DEFINE_integer("steps", 30, "timed steps per measurement")
flags.DEFINE_integer("repeats", 3, "measurements per setting, interleaved; the best is kept")


def build():
    keras.utils.set_random_seed(0)
    f = networks.dcgan_autoencoder(FLAGS.image_size, 1, 512, FLAGS.width)
    model = ign.IGN(f, seed=0)
    model.compile()
    return model


def seconds_per_step(model, x, callbacks):
    model.fit(x, batch_size=FLAGS.batch_size, epochs=1, verbose=0, shuffle=False,
              steps_per_epoch=2, callbacks=callbacks)  # warm (traced) before timing
    start = time.perf_counter()
    model.fit(x, batch_size=FLAGS.batch_size, epochs=1, verbose=0, shuffle=False,
              steps_per_epoch=FLAGS.steps, callbacks=callbacks)
    return (time.perf_counter() - start) / FLAGS.steps


def main(argv):
    del argv
    x = np.random.default_rng(0).uniform(
        -1, 1, (FLAGS.batch_size * (FLAGS.steps + 2), FLAGS.image_size, FLAGS.image_size, 1)
    ).astype(np.float32)
    plain, averaged = build(), build()
    average = averaging.WeightAverage(averaged, decay=0.999)
    best = {"without": float("inf"), "with": float("inf")}
    for _ in range(FLAGS.repeats):
        best["without"] = min(best["without"], seconds_per_step(plain, x, []))
        best["with"] = min(best["with"], seconds_per_step(averaged, x, [average]))
    print(f"IGN width {FLAGS.width}, {FLAGS.image_size} px, batch {FLAGS.batch_size}, "
          f"{len(average.weights)} averaged weights "
          f"({sum(int(np.prod(w.shape)) for w in average.weights):,} values)")
    for name, seconds in best.items():
        print(f"  {name:7s} the average: {1000 * seconds:8.1f} ms/step")
    print(f"  ratio with / without: {best['with'] / best['without']:.3f}")


if __name__ == "__main__":
    app.run(main)
