"""The three kernels behind every convolution of a network: fp32 against bf16,
or XLA off against on.

    PYTHONPATH=. nice python bench/bench_conv.py [--compare bf16|xla]
        [--nets encoder,generator,ign] [--size 32] [--batch_size 64] [--repeats 25]

A stride-2 convolution between a large map L (batch, S, S, c_L) and a small map
(batch, S/2, S/2, c_s) costs, in a training step, three TensorFlow kernels of
equal multiply-add count:

    forward  Conv2D              L → small    (a Conv2DTranspose: its input gradient)
    dx       Conv2DBackpropInput small → L    (a Conv2DTranspose: its forward)
    dw       Conv2DBackpropFilter (L, small) → kernel   (both layer kinds)

For each conv layer of the library's networks (width 64, as in bench_scale.py)
the three are timed alone in graph mode, the two settings interleaved (median
of `--repeats`), and printed as GFLOP/s with the speed-up per kernel. The last
line of each net is the speed-up of the whole conv work.

A fourth column, "dw as conv", computes dw as a forward convolution instead
(`conv_gradient.filter_gradient_as_conv`: the large map with batch and channels swapped,
convolved with the small map as the filter, dilated by the stride), the same
sums in another order; it is not in the totals, and the last line compares it
with dw. It asks whether the filter gradient's slowness in bf16 is the kernel's
or the arithmetic's.

`--compare bf16` (fp32 → bf16, XLA off) bounds what bf16 can give a model whose
time is mostly convolutions. `--compare xla` (XLA off → on, fp32) finds the
kernels that XLA's CPU backend runs slowly.
"""

import time

import numpy as np
import tensorflow as tf
from absl import app, flags
from flops import define_list, load_average
from keras import layers

from ogan_ign import networks
from ogan_ign.conv_gradient import filter_gradient_as_conv

FLAGS = flags.FLAGS
define_list("nets", "encoder,generator,ign", ("encoder", "generator", "ign"),
            "networks whose convolutions to time")
flags.DEFINE_integer("size", 32, "image side")
flags.DEFINE_integer("batch_size", 64, "images per call")
flags.DEFINE_integer("repeats", 25, "timed calls per kernel")
flags.DEFINE_enum("compare", "bf16", ["bf16", "xla"],
                  "bf16: fp32 → bf16 with XLA off; xla: XLA off → on in fp32")

KERNELS = ("forward", "dx", "dw")
COLUMNS = KERNELS + ("dw as conv",)
BUILDERS = {
    "encoder": lambda size: networks.dcgan_encoder(size, 3, z_dim=128),
    "generator": lambda size: networks.dcgan_generator(size, 3, z_dim=128),
    "ign": lambda size: networks.dcgan_autoencoder(size, 3, latent=512),
}


def conv_geometry(layer):
    """(large map shape, small map shape, kernel shape) of a stride-2 conv layer."""
    k = layer.kernel_size[0]
    if isinstance(layer, layers.Conv2DTranspose):
        small, large = layer.input.shape, layer.output.shape
    else:
        large, small = layer.input.shape, layer.output.shape
    return large[1:], small[1:], (k, k, large[-1], small[-1])


def settings():
    """The two (name, dtype, jit_compile) settings being compared."""
    if FLAGS.compare == "bf16":
        return (("fp32", tf.float32, False), ("bf16", tf.bfloat16, False))
    return (("xla off", tf.float32, False), ("xla on", tf.float32, True))


def kernels(large, small, kernel, dtype, jit):
    """The three kernels as graph-mode functions on random tensors of `dtype`."""
    batch = FLAGS.batch_size
    big = tf.cast(tf.random.normal((batch,) + tuple(large)), dtype)
    little = tf.cast(tf.random.normal((batch,) + tuple(small)), dtype)
    w = tf.cast(tf.random.normal(kernel, stddev=0.02), dtype)
    big_shape = tf.constant((batch,) + tuple(large))
    return {
        "forward": tf.function(lambda: tf.nn.conv2d(big, w, 2, "SAME"), jit_compile=jit),
        "dx": tf.function(lambda: tf.nn.conv2d_transpose(little, w, big_shape, 2, "SAME"),
                          jit_compile=jit),
        "dw": tf.function(lambda: tf.raw_ops.Conv2DBackpropFilter(
            input=big, filter_sizes=kernel, out_backprop=little, strides=[1, 2, 2, 1],
            padding="SAME"), jit_compile=jit),
        "dw as conv": tf.function(lambda: filter_gradient_as_conv(big, little, kernel[0], 2),
                                  jit_compile=jit),
    }


def interleaved_medians(fns):
    """Median seconds of each function, the functions timed in turn."""
    for fn in fns.values():
        for _ in range(3):
            fn().numpy()
    times = {name: [] for name in fns}
    for _ in range(FLAGS.repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn().numpy()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


def main(_):
    print(f"load average before: {load_average()}", flush=True)
    for net_name in FLAGS.nets.split(","):
        net = BUILDERS[net_name](FLAGS.size)
        convs = [l for l in net.layers if isinstance(l, (layers.Conv2D, layers.Conv2DTranspose))]
        (a, _, _), (b, _, _) = settings()
        print(f"\n{net_name}, {FLAGS.size} px, batch {FLAGS.batch_size}: GFLOP/s {a} → {b} "
              f"(speed-up)")
        print(f"{'layer':14} {'large map':14} {'kernel':18} "
              + " ".join(f"{k:>22}" for k in COLUMNS))
        totals = {(p, k): 0.0 for p in (a, b) for k in COLUMNS}
        for layer in convs:
            large, small, kernel = conv_geometry(layer)
            flops = 2 * FLAGS.batch_size * small[0] * small[1] * np.prod(kernel)
            fns = {}
            for setting, dtype, jit in settings():
                for name, fn in kernels(large, small, kernel, dtype, jit).items():
                    fns[(setting, name)] = fn
            seconds = interleaved_medians(fns)
            cells = []
            for name in COLUMNS:
                before, after = seconds[(a, name)], seconds[(b, name)]
                totals[(a, name)] += before
                totals[(b, name)] += after
                cells.append(f"{flops / before / 1e9:5.0f} → {flops / after / 1e9:4.0f} "
                             f"({before / after:4.2f}×)")
            print(f"{layer.name:14} {str(tuple(large)):14} {str(kernel):18} "
                  + " ".join(f"{c:>22}" for c in cells), flush=True)
        per_kernel = ", ".join(f"{k} {totals[(a, k)] / totals[(b, k)]:.2f}×" for k in KERNELS)
        before = sum(totals[(a, k)] for k in KERNELS)
        after = sum(totals[(b, k)] for k in KERNELS)
        print(f"all convolutions of {net_name}: {before * 1e3:.1f} ms {a}, {after * 1e3:.1f} ms "
              f"{b}: speed-up {before / after:.2f}× ({per_kernel})", flush=True)
        print("  dw as a forward conv against dw: " + ", ".join(
            f"{p} {totals[(p, 'dw')] / totals[(p, 'dw as conv')]:.2f}×" for p in (a, b)),
            flush=True)
    print(f"load average after: {load_average()}", flush=True)


if __name__ == "__main__":
    app.run(main)
