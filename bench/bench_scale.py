"""Training throughput of SingleLossGAN, O-GAN and IGN against this machine's
matmul peak, XLA on and off, float32 and bfloat16 (issue 7's benchmark).

    PYTHONPATH=. nice python bench/bench_scale.py [--sizes 32,64] [--batch_size 64]
        [--steps 5] [--rounds 3] [--models gan,ogan,ign] [--xla off,on] [--precision fp32,bf16]
        [--batchnorm fused,keras]

Peak: the best of a few tf.matmul of n×n float32 (and bfloat16) matrices in
graph mode, 2n³ FLOPs each, measured in the same process just before the models.

Training FLOPs per image (an estimate, stated so it can be checked):

    FLOPs/image = 2 · 3 · Σ_passes MACs(net)

MACs(net) counts the forward multiply-adds of every Conv2D (out_h·out_w·k²·c_in·
c_out), Conv2DTranspose (in_h·in_w·k²·c_in·c_out) and Dense (in·out); the ×3
is forward + backward (input and weight gradients), the ×2 turns MACs into
FLOPs. Passes per real image: SingleLossGAN and O-GAN run G once and the critic
three times (x, G(z), sg G(z)); IGN runs f four times (f(x), f(z), f(f(z)),
f(sg f(z))). BatchNorm, activations and the losses are left out, so the
achieved rate is a slight underestimate. The backward of a stopped pass needs
no input gradient, so 3× slightly overcounts those passes.

Networks are the libraries' defaults at width 64: DCGAN G and E (z_dim 128;
the critic of SingleLossGAN has one output) and IGN's DCGAN autoencoder
(latent 512). Each configuration is timed over `--steps` steps after two warm-up
steps (XLA compiles in the first), in `--rounds` rounds that take the settings
of one (model, size) in turn; the table prints the median images/s, FLOP rate
and its fraction of the peak of the same precision. Nothing here is tuned per
configuration: they all run the same code path as fit() (model.train_step in a
tf.function, jit_compile as given).

`--batchnorm fused,keras` adds rows with the library's BatchNorm forced onto
Keras's unfused ops (what it runs under a strategy with XLA off), to show
what the fused kernel is worth in the same run.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags

from flops import batchnorm_kind, build, define_list, load_average, matmul_peak
from ogan_ign import training

FLAGS = flags.FLAGS
flags.DEFINE_string("sizes", "32,64", "image sides")
flags.DEFINE_integer("batch_size", 64, "images per step")
flags.DEFINE_integer("steps", 5, "timed steps per configuration and round")
flags.DEFINE_integer("rounds", 3, "rounds of timing, settings interleaved; the median is kept")
define_list("models", "gan,ogan,ign", ("gan", "ogan", "ign"), "which models")
define_list("xla", "off,on", ("off", "on"), "XLA settings to time")
define_list("precision", "fp32,bf16", ("fp32", "bf16"), "precisions to time")
flags.DEFINE_integer("matmul_n", 2048, "side of the peak matmul")
define_list("batchnorm", "fused", ("fused", "keras"),
            "the library's fused BatchNorm and/or Keras's unfused ops")


def prepared_step(kind, size, xla, precision, batchnorm):
    """The model's train_step as fit() runs it, traced and warmed up."""
    with training.precision_policy("bf16" if precision == "bf16" else "off"):
        model, flops_per_image = build(kind, size)
        model.compile(jit_compile=xla)
    step = tf.function(model.train_step, jit_compile=xla)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (FLAGS.batch_size, size, size, 3)).astype("float32"))
    with batchnorm_kind(batchnorm):  # the step is traced here
        for _ in range(2):
            float(step(x)["loss/total"])
    return step, x, flops_per_image


def seconds_per_step(step, x):
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        logs = step(x)
    float(logs["loss/total"])
    return (time.perf_counter() - start) / FLAGS.steps


def main(_):
    print(f"load average before: {load_average()}", flush=True)
    peak = {"fp32": matmul_peak(tf.float32, FLAGS.matmul_n),
            "bf16": matmul_peak(tf.bfloat16, FLAGS.matmul_n)}
    print(f"matmul peak ({FLAGS.matmul_n}²): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s", flush=True)
    print(f"{'model':6} {'px':>3} {'xla':>4} {'prec':>5} {'bn':>6} {'img/s':>8} {'spread':>7} "
          f"{'GFLOP/img':>10} {'GFLOP/s':>8} {'of peak':>8}", flush=True)
    results, keras_bn = {}, {}
    for size in [int(s) for s in FLAGS.sizes.split(",")]:
        for kind in FLAGS.models.split(","):
            # All settings of one (model, size) are built first and then timed
            # in turn, `--rounds` times: a slow spell of the machine then hits
            # every setting alike instead of one row.
            settings = [(xla, precision, bn) for xla in FLAGS.xla.split(",")
                        for precision in FLAGS.precision.split(",")
                        for bn in FLAGS.batchnorm.split(",")]
            prepared = {s: prepared_step(kind, size, s[0] == "on", s[1], s[2]) for s in settings}
            times = {s: [] for s in settings}
            for _ in range(FLAGS.rounds):
                for s, (step, x, _) in prepared.items():
                    times[s].append(seconds_per_step(step, x))
            for (xla, precision, bn), (_, _, flops) in prepared.items():
                seconds = times[(xla, precision, bn)]
                rate = FLAGS.batch_size / float(np.median(seconds))
                # How far apart the rounds were, relative to the median.
                spread = (max(seconds) - min(seconds)) / float(np.median(seconds))
                (results if bn == "fused" else keras_bn)[(kind, size, xla, precision)] = rate
                achieved = rate * flops
                print(f"{kind:6} {size:>3} {xla:>4} {precision:>5} {bn:>6} {rate:8.1f} "
                      f"{spread:7.0%} "
                      f"{flops / 1e9:10.3f} {achieved / 1e9:8.1f} "
                      f"{achieved / peak[precision]:8.1%}", flush=True)
            del prepared
    # The training scripts' defaults: --jit_compile auto (Keras: off on the CPU)
    # and --mixed_precision auto (bf16 where the hardware has native bfloat16).
    default_key = ("off", "bf16" if training.resolve_precision("auto")[0] == "bf16" else "fp32")
    print(f"\nper model and size: default ({default_key[0]}/{default_key[1]}: the scripts' "
          f"auto settings on this machine) vs the fastest; bf16 / fp32 (XLA off)")
    for size in [int(s) for s in FLAGS.sizes.split(",")]:
        for kind in FLAGS.models.split(","):
            mine = {k[2:]: v for k, v in results.items() if k[:2] == (kind, size)}
            if not mine:
                continue
            best = max(mine, key=mine.get)
            default = mine.get(default_key)
            line = f"{kind:6} {size:>3}: fastest {best[0]}/{best[1]} {mine[best]:.1f} img/s"
            if default:
                line += f"; default at {default / mine[best]:.0%} of it"
            if ("off", "bf16") in mine and ("off", "fp32") in mine:
                line += f"; bf16/fp32 = {mine[('off', 'bf16')] / mine[('off', 'fp32')]:.2f}×"
            print(line, flush=True)
    for key, rate in keras_bn.items():
        if key in results:
            print(f"{key[0]:6} {key[1]:>3} {key[2]}/{key[3]}: fused BatchNorm / Keras's "
                  f"= {results[key] / rate:.2f}×", flush=True)
    print(f"load average after: {load_average()}", flush=True)


if __name__ == "__main__":
    app.run(main)
