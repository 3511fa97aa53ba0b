"""Training throughput of SingleLossGAN, O-GAN and IGN against this machine's
matmul peak: by default the step exactly as the training scripts run it, and any
other setting as a named comparison row.

    PYTHONPATH=. nice python bench/bench_scale.py [--sizes 32,64] [--batch_size 64]
        [--steps 5] [--rounds 3] [--models gan,ogan,ign] [--xla auto,off,on]
        [--precision auto,fp32,bf16] [--batchnorm auto,keras,fused]
        [--filter_gradient native,as_conv]

Every flag's default is `auto`: the step as the training scripts run it, with
`--mixed_precision auto`, `--jit_compile auto`, `--filter_gradient auto` and
`--batchnorm`'s default resolved on this machine as the scripts resolve them (bf16
where the CPU or GPU computes in bfloat16 natively; XLA off on the CPU; the filter
gradient as a convolution for bf16 on CPUs with AVX512-BF16 and no AMX; BatchNorm
on TensorFlow's fused kernel). That row is marked `default` in the table. Listing
more values adds rows: `--precision auto,fp32,bf16` times both precisions, `--xla
auto,on` XLA as well, `--batchnorm auto,keras` the same networks with BatchNorm as
Keras's own ops, `--filter_gradient native,as_conv` the same step with every
convolution's filter gradient computed by TensorFlow's kernel and as a forward
convolution (`ogan_ign.conv_gradient`). Settings that resolve to the same step are
timed once.

Peak: the best of a few tf.matmul of n×n float32 (and bfloat16) matrices in
graph mode, 2n³ FLOPs each, measured in the same process just before the models.

Training FLOPs per image (an estimate, stated so it can be checked):

    FLOPs/image = 2 · Σ_passes k_pass · MACs(net)

MACs(net) counts the forward multiply-adds of every Conv2D (out_h·out_w·k²·c_in·
c_out), Conv2DTranspose (in_h·in_w·k²·c_in·c_out) and Dense (in·out); k_pass is
3 for forward + backward (input and weight gradients), 4 for a pass whose one
forward serves a frozen use and a weights-only use (`split_pass.split_call`: the
forward, the input gradient of the first, the whole backward of the second);
the ×2 turns MACs into FLOPs. Passes per real image: SingleLossGAN and O-GAN run
G once (k = 3) and the critic twice, on x (k = 3) and once over G(z) for both
D′(G(z)) and D(sg G(z)) (k = 4); IGN runs f three times (f(x), f(z) with k = 3,
and f(f(z)) split, k = 4). BatchNorm, activations and the losses are left out,
so the achieved rate is a slight underestimate. The weights-only backward needs
no gradient for the pass's input, so 4 slightly overcounts those passes.

Networks are the libraries' defaults at width 64: DCGAN G and E (z_dim 128;
the critic of SingleLossGAN has one output) and IGN's DCGAN autoencoder
(latent 512). Each setting is timed over `--steps` steps after two warm-up
steps (XLA compiles in the first) and one untimed round, in `--rounds` rounds
that take the settings of one (model, size) in turn; the table prints the median
images/s, FLOP rate and its fraction of the peak of the same precision. Every
row runs the same code path as fit() (model.train_step in a tf.function,
jit_compile as resolved).
"""

import numpy as np
import tensorflow as tf
from absl import app, flags

from flops import (auto_settings, define_list, define_timing_flags, load_average, matmul_peak,
                   prepared_step, resolve_batchnorm, timed_in_turn)
from ogan_ign import training

FLAGS = flags.FLAGS
define_timing_flags(models="gan,ogan,ign", precision="auto")
define_list("xla", "auto", ("auto", "off", "on"),
            "XLA settings to time; auto: what --jit_compile auto gives here")
flags.DEFINE_integer("matmul_n", 2048, "side of the peak matmul")
define_list("batchnorm", "auto", ("auto", "keras", "fused"),
            "keras: BatchNorm as Keras's ops; fused: on TensorFlow's fused kernel "
            "(ogan_ign.fused_batchnorm); auto: --batchnorm's default in the scripts")
define_list("filter_gradient", "auto", ("auto", "native", "as_conv"),
            "native: Keras's convolutions; as_conv: their filter gradient as a forward "
            "convolution (ogan_ign.conv_gradient); auto: what --filter_gradient auto picks "
            "here for the row's precision")


def settings_to_time():
    """The (xla, precision, batchnorm, filter gradient) settings of the flags with
    `auto` resolved, each once, in flag order, and the scripts' own setting among
    them."""
    xla_auto, precision_auto, bn_auto = auto_settings()
    resolved = []
    for xla in FLAGS.xla.split(","):
        for precision in FLAGS.precision.split(","):
            for bn in FLAGS.batchnorm.split(","):
                for dw in FLAGS.filter_gradient.split(","):
                    p = precision_auto if precision == "auto" else precision
                    if dw == "auto":
                        dw = training.resolve_filter_gradient("auto", p)[0]
                    setting = (xla_auto if xla == "auto" else xla, p, resolve_batchnorm(bn), dw)
                    if setting not in resolved:
                        resolved.append(setting)
    dw_auto = training.resolve_filter_gradient("auto", precision_auto)[0]
    return resolved, (xla_auto, precision_auto, bn_auto, dw_auto)


def time_model(kind, size, settings, default, peak):
    """{setting: img/s} for one (model, size), printing a row per setting.

    All settings are built first and then timed in turn (`flops.timed_in_turn`)."""
    prepared = {s: prepared_step(kind, size, s, FLAGS.batch_size) for s in settings}
    runs = {s: (lambda step=step, x=x: step(x)["loss/total"])
            for s, (step, x, _, _) in prepared.items()}
    times = timed_in_turn(runs, FLAGS.steps, FLAGS.rounds)
    rates = {}
    for setting, (_, _, _, flops) in prepared.items():
        seconds = times[setting]
        rates[setting] = rate = FLAGS.batch_size / float(np.median(seconds))
        # How far apart the rounds were, relative to the median.
        spread = (max(seconds) - min(seconds)) / float(np.median(seconds))
        achieved = rate * flops
        xla, precision, bn, dw = setting
        print(f"{kind:6} {size:>3} {xla:>4} {precision:>5} {bn:>6} {dw:>7} {rate:8.1f} "
              f"{spread:7.0%} "
              f"{flops / 1e9:10.3f} {achieved / 1e9:8.1f} {achieved / peak[precision]:8.1%}"
              + ("  default" if setting == default else ""), flush=True)
    return rates


def summary_line(kind, size, rates, default):
    """The default against the fastest row, bf16/fp32 and fused/Keras BatchNorm
    at the default's other settings, where those rows were timed."""
    best = max(rates, key=rates.get)
    line = f"{kind:6} {size:>3}: fastest {'/'.join(best)} {rates[best]:.1f} img/s"
    if default in rates:
        line += f"; default {rates[default]:.1f} img/s, {rates[default] / rates[best]:.0%} of it"
    xla, _, bn, dw = default
    fp32, bf16 = rates.get((xla, "fp32", bn, dw)), rates.get((xla, "bf16", bn, dw))
    if fp32 and bf16:
        line += f"; bf16/fp32 {bf16 / fp32:.2f}×"
    for precision in ("fp32", "bf16"):
        keras_bn = rates.get((xla, precision, "keras", dw))
        fused = rates.get((xla, precision, "fused", dw))
        if keras_bn and fused:
            line += f"; fused/keras BatchNorm ({precision}) {fused / keras_bn:.2f}×"
        native, as_conv = rates.get((xla, precision, bn, "native")), rates.get(
            (xla, precision, bn, "as_conv"))
        if native and as_conv:
            line += f"; dw as conv/native ({precision}) {as_conv / native:.2f}×"
    return line


def main(_):
    print(f"load average before: {load_average()}", flush=True)
    settings, default = settings_to_time()
    print(f"default (the scripts' default settings here): XLA {default[0]}, {default[1]}, "
          f"{default[2]} BatchNorm, {default[3]} filter gradient", flush=True)
    peak = {"fp32": matmul_peak(tf.float32, FLAGS.matmul_n),
            "bf16": matmul_peak(tf.bfloat16, FLAGS.matmul_n)}
    print(f"matmul peak ({FLAGS.matmul_n}²): fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s, "
          f"bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s", flush=True)
    print(f"{'model':6} {'px':>3} {'xla':>4} {'prec':>5} {'bn':>6} {'dw':>7} {'img/s':>8} "
          f"{'spread':>7} "
          f"{'GFLOP/img':>10} {'GFLOP/s':>8} {'of peak':>8}", flush=True)
    lines = []
    for size in [int(s) for s in FLAGS.sizes.split(",")]:
        for kind in FLAGS.models.split(","):
            rates = time_model(kind, size, settings, default, peak)
            lines.append(summary_line(kind, size, rates, default))
    print("\nper model and size:", *lines, sep="\n", flush=True)
    print(f"load average after: {load_average()}", flush=True)


if __name__ == "__main__":
    app.run(main)
