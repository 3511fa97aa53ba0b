"""Where one training step's time goes, per TensorFlow op and per layer, from
TensorFlow's own profiler: the step exactly as bench_scale.py's default row runs
it (the training scripts' step; precision and XLA as `auto` resolves them here).

    PYTHONPATH=. nice python bench/profile_ops.py [--model ogan] [--size 32]
        [--precision auto|fp32|bf16] [--batchnorm auto|keras|fused]
        [--filter_gradient auto|native|as_conv] [--steps 10] [--top 15]

`--steps` steps are traced after two warm-up steps; the trace's op events (the
kernels TensorFlow ran, on whichever thread) are summed three ways and
divided by the steps:

- by op type (e.g. _MklNativeConv2DBackpropFilter, Cast, Mul), the question
  "is it the filter-gradient convolutions, the casts, the layout changes?", with
  how many kernels of each type ran per step;
- by (network, layer class, role), role being forward, input gradient, filter
  gradient (the op types say which) or other, the question "is it BatchNorm in
  bf16, the convs, the activations?"; ops outside the networks are the loss and
  the optimizer;
- single ops by name;

each table lists its `--top` largest rows and sums the rest in one line.

Times are summed over threads: where TensorFlow runs two ops at once the op sum
exceeds the step's wall time, printed beside it. The profiler adds a little time
of its own, so its wall time is slightly above bench_scale.py's. Run it on an
idle machine: like every timing here, other load inflates the kernels it hits.
"""

import collections

from absl import app, flags

from flops import load_average, prepared_step, resolve_batchnorm
from ogan_ign import training
from op_trace import layer_classes, role, traced_ops, where

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "ogan", ["gan", "ogan", "ign"], "which model's step")
flags.DEFINE_integer("size", 32, "image side")
flags.DEFINE_enum("precision", "auto", ["auto", "fp32", "bf16"],
                  "compute precision; auto: what --mixed_precision auto picks here")
flags.DEFINE_enum("batchnorm", "auto", ["auto", "keras", "fused"],
                  "keras: BatchNorm as Keras's ops; fused: on TensorFlow's fused kernel "
                  "(ogan_ign.fused_batchnorm); auto: --batchnorm's default in the scripts")
flags.DEFINE_enum("filter_gradient", "auto", ["auto", "native", "as_conv"],
                  "native: Keras's convolutions; as_conv: their filter gradient as a forward "
                  "convolution (ogan_ign.conv_gradient); auto: what the scripts pick here")
flags.DEFINE_integer("batch_size", 64, "images per step")
flags.DEFINE_integer("steps", 10, "traced steps")
flags.DEFINE_integer("top", 15, "rows of each table")


def profile():
    """((precision, batchnorm, filter gradient), wall ms per step, op events, layer
    classes) of the default step."""
    precision = training.resolve_precision(FLAGS.precision)[0]
    dw = training.resolve_filter_gradient(FLAGS.filter_gradient, precision)[0]
    batchnorm = resolve_batchnorm(FLAGS.batchnorm)
    setting = ("off", precision, batchnorm, dw)
    step, x, model, _ = prepared_step(FLAGS.model, FLAGS.size, setting, FLAGS.batch_size)
    wall_ms, events = traced_ops(lambda: step(x)["loss/total"], FLAGS.steps)
    return (precision, batchnorm, dw), wall_ms, events, layer_classes(model)


def table(title, totals, total, rows, counts=None):
    """The `rows` largest entries, then the rest in one line; with `counts`, how
    many ops of each entry ran per step."""
    print(f"\n{title}")
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])
    for key, ps in ranked[:rows]:
        label = " / ".join(key) if isinstance(key, tuple) else key
        runs = "" if counts is None else f"  ({counts[key] / FLAGS.steps:g} per step)"
        print(f"  {ps / 1e9 / FLAGS.steps:8.2f} ms {ps / total:6.1%}  {label}{runs}")
    rest = sum(ps for _, ps in ranked[rows:])
    if rest:
        print(f"  {rest / 1e9 / FLAGS.steps:8.2f} ms {rest / total:6.1%}  "
              f"({len(ranked) - rows} more)")


def main(_):
    print(f"load average before: {load_average()}", flush=True)
    (precision, batchnorm, dw), wall_ms, events, classes = profile()
    by_type, by_layer, by_name, type_counts = (collections.Counter() for _ in range(4))
    for name, op_type, ps in events:
        by_type[op_type] += ps
        type_counts[op_type] += 1
        by_layer[(*where(name, classes), role(name, op_type))] += ps
        by_name[f"{name} ({op_type})"] += ps
    total = sum(by_type.values())
    print(f"{FLAGS.model} {FLAGS.size} px, batch {FLAGS.batch_size}, {precision}, "
          f"{batchnorm} BatchNorm, {dw} filter gradient, XLA off: {wall_ms:.1f} ms per step "
          f"({FLAGS.batch_size / wall_ms * 1e3:.1f} img/s, profiled), op time summed over "
          f"threads {total / 1e9 / FLAGS.steps:.1f} ms per step")
    table("by op type:", by_type, total, FLAGS.top, type_counts)
    table("by network / layer class / role:", by_layer, total, FLAGS.top)
    table(f"the {FLAGS.top} most expensive ops:", by_name, total, FLAGS.top)
    print(f"\nload average after: {load_average()}", flush=True)


if __name__ == "__main__":
    app.run(main)
