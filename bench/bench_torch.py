"""ogan_ign's default training step against PyTorch running the same nets and
the same step, in one process: images per second side by side, and their ratio.

    bash bench/torch/setup.sh        # once: .venv-torch, TensorFlow and torch (CPU)
    PYTHONPATH=. .venv-torch/bin/python bench/bench_torch.py [--sizes 32,64]
        [--precision fp32,bf16] [--models ogan,ign] [--steps 5] [--rounds 3]
        [--batch_size 64] [--checks_only]

First, per model and size, the twins are checked equal, and the script stops
with one line if they are not:
  (a) parameter counts: trainable weights and BatchNorm moving statistics
      (Keras) against parameters and float buffers (torch);
  (b) forward outputs in training mode of each Keras net (fp32) and its torch
      twin with the copied weights, on one fixed batch: max |diff| ≤ 1e-4;
  (c) float64 gradients of the whole single loss (the model's
      `compute_terms(x, z)["loss/total"]` against `torch_nets.LOSSES`) w.r.t.
      every trained weight, for one fixed batch and fixed noise:
      max |diff| ≤ 1e-10 · max |gradient|, and the two losses equal as closely.
The checks use `--check_batch` images (4).

Then, per model and size, the project's step exactly as bench_scale.py times
its `default` row (`flops.prepared_step`: model.train_step in a tf.function,
XLA, precision and filter gradient as the scripts' `auto` flags resolve them
here), plus a row per other precision of `--precision` (its filter gradient
as `auto` resolves it for that precision), each against the torch step of
`torch_nets.TorchStep` at the same precision (bf16: autocast), with the same
initial weights and batch, in each form of `--torch_passes`: "split" does the
project's work (the critic's passes over G(z), IGN's outer f over f(z), as one
forward with two partial backwards), "separate" runs them as two passes (a
frozen copy and a pass on the detached fakes: the papers' form, what a PyTorch
user writes); the ratio is against the faster form. Both forms are checked (c). Each side warms up two steps, then both are timed
(after one untimed round) over `--steps` steps in `--rounds` rounds that
alternate them, so a slow spell of the machine hits both; the table prints the
median img/s of each, the ratio project/torch (issue #27 asks ≥ 1.1 for the
default row) and the spread of the rounds. The CPU's bfloat16 flags (AMX-BF16, AVX512-BF16)
decide what bf16 can gain; they are printed with the versions and threads.

Models: bench_scale's (flops.build): width 64, z_dim 128, IGN's latent 512,
3 channels. torch runs `--torch_threads` threads (2, this machine's cores).
Time on an idle machine: torch's OpenMP threads wait for each other at every
op, so while another process holds a core a 2-thread torch step slows down
many times over (TensorFlow's thread pool much less), and the ratio says
nothing; the script measures how many cores other processes keep busy just
before timing and warns above 0.2.
"""

import os
import time

import keras
import numpy as np
import tensorflow as tf
import torch
from absl import app, flags

import torch_nets
from flops import (auto_settings, build, define_timing_flags, load_average, prepared_step,
                   timed_in_turn)
from ogan_ign import training
from ogan_ign.training import devices
from tests.float64 import float64

FLAGS = flags.FLAGS
define_timing_flags(models="ogan,ign", precision="fp32,bf16")
flags.DEFINE_integer("check_batch", 4, "images of the equality checks")
flags.DEFINE_integer("torch_threads", 2, "torch.set_num_threads")
flags.DEFINE_boolean("checks_only", False, "run the equality checks and stop")
flags.DEFINE_list("torch_passes", list(torch_nets.PASSES),
                  "the torch step's forms, each timed: split (one forward for the critic's "
                  "two passes over the fakes, as the project's step) and separate (two, the "
                  "paper's form)")

FORWARD_TOLERANCE = 1e-4    # fp32, absolute
GRADIENT_TOLERANCE = 1e-10  # float64, relative to the largest gradient entry
BUSY_CORES = 0.2            # cores busy with other processes above which timing warns


class TwinMismatch(Exception):
    """The torch twins differ from the Keras nets: nothing is timed."""


def to_torch(x):
    """A NHWC batch of images or a (batch, d) batch of vectors as torch takes it."""
    x = np.asarray(x)
    return torch_nets.to_torch_images(x, torch.float64 if x.dtype == np.float64 else
                                      torch.float32) if x.ndim == 4 else torch.as_tensor(x)


def to_nhwc(y):
    y = y.detach()
    return (y.permute(0, 2, 3, 1) if y.dim() == 4 else y).numpy()


def fixed_inputs(model, batch, size, dtype):
    """(x_real, z) of one fixed draw: images U[-1, 1], noise N(0, I) of the
    shape the model's first net takes (z for G, images for IGN's f)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(dtype)
    z = rng.normal(size=(batch,) + tuple(model.nets[0].inputs[0].shape[1:])).astype(dtype)
    return x, z


def check_counts(model, twins):
    """(a): ((Keras trainable, torch parameters), (Keras moving statistics,
    torch float buffers)), each summed over the model's nets."""
    def size(tensors):
        return sum(int(np.prod(t.shape)) for t in tensors)

    keras_counts = (sum(size(n.trainable_weights) for n in model.nets),
                    sum(size(n.non_trainable_weights) for n in model.nets))
    torch_counts = (sum(size(list(t.parameters())) for t in twins),
                    sum(size([b for b in t.buffers() if b.is_floating_point()]) for t in twins))
    if keras_counts != torch_counts:
        raise TwinMismatch(f"parameter counts differ: Keras {keras_counts}, torch {torch_counts}")
    return keras_counts


def check_forward(model, twins):
    """(b): the largest |Keras − torch| over the outputs of every net in training
    mode, on N(0, 1) inputs."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for net, twin in zip(model.nets, twins):
        inputs = rng.normal(size=(FLAGS.check_batch,) + tuple(net.inputs[0].shape[1:]))
        inputs = inputs.astype("float32")
        twin.train()
        diff = np.abs(np.asarray(net(inputs, training=True)) - to_nhwc(twin(to_torch(inputs))))
        worst = max(worst, float(diff.max()))
    if worst > FORWARD_TOLERANCE:
        raise TwinMismatch(f"forward outputs differ by {worst:.3g} > {FORWARD_TOLERANCE}")
    return worst


def check_gradients(kind, size, passes):
    """(c): (max |loss diff|, max |gradient diff|, max |gradient|) in float64
    over every trained weight, the model built as flops.build builds it, the
    torch loss in the form `passes`."""
    with float64():
        model, _ = build(kind, size)
        twins = [torch_nets.twin(net, torch.float64) for net in model.nets]
        x, z = fixed_inputs(model, FLAGS.check_batch, size, "float64")
        variables = model.trainable_for_step()
        with tf.GradientTape() as tape:
            loss = model.compute_terms(tf.constant(x), tf.constant(z))["loss/total"]
        grads = tape.gradient(loss, variables)
    loss_twin = torch_nets.LOSSES[kind](*twins, to_torch(x), to_torch(z), passes=passes)
    loss_twin.backward()
    pairs = {id(v): (t, layout) for net, twin in zip(model.nets, twins)
             for v, t, layout in torch_nets.weight_pairs(net, twin)}
    worst, largest = 0.0, 0.0
    for variable, grad in zip(variables, grads):
        tensor, layout = pairs[id(variable)]
        expected = layout(grad.numpy())
        worst = max(worst, float(np.abs(expected - tensor.grad.numpy()).max()))
        largest = max(largest, float(np.abs(expected).max()))
    loss_diff = abs(float(loss) - loss_twin.item())
    if max(worst, loss_diff) > GRADIENT_TOLERANCE * largest:
        raise TwinMismatch(f"float64 loss/gradients differ: loss by {loss_diff:.3g}, gradients "
                           f"by {worst:.3g} (largest gradient {largest:.3g})")
    return loss_diff, worst, largest


def check_model(kind, size):
    """Checks (a)–(c) of one model and size; prints one line."""
    with training.precision_policy("fp32"):
        model, _ = build(kind, size)
    twins = [torch_nets.twin(net) for net in model.nets]
    (trainable, statistics) = check_counts(model, twins)
    forward = check_forward(model, twins)
    gradients = []
    for passes in FLAGS.torch_passes:
        loss_diff, grad_diff, largest = check_gradients(kind, size, passes)
        gradients.append(f"{passes}: float64 loss |diff| {loss_diff:.2e}, gradient max "
                         f"|diff| {grad_diff:.2e} (max |gradient| {largest:.2e})")
    print(f"check {kind:5} {size:>3} px: parameters {trainable:,} (+{statistics:,} BatchNorm "
          f"statistics) equal; forward max |diff| {forward:.2e}; " + "; ".join(gradients),
          flush=True)


# ------------------------------------------------------------------ timing
def settings_to_time():
    """The project's (xla, precision, batchnorm, filter gradient) per precision
    of --precision, each once, and the scripts' default among them: bench_scale's
    rows with its other flags at `auto`."""
    xla, precision_auto, batchnorm = auto_settings()

    def setting(precision):
        precision = precision_auto if precision == "auto" else precision
        return (xla, precision, batchnorm,
                training.resolve_filter_gradient("auto", precision)[0])

    settings = []
    for precision in FLAGS.precision.split(","):
        if setting(precision) not in settings:
            settings.append(setting(precision))
    return settings, setting("auto")


def prepared_steps(kind, size, setting):
    """[project's step, torch's step per --torch_passes], each a no-argument call
    returning the loss, all warmed up, each torch step on twins holding the
    project model's weights."""
    step, x, model, _ = prepared_step(kind, size, setting, FLAGS.batch_size)
    x_torch = to_torch(x.numpy())
    runs = [lambda: step(x)["loss/total"]]
    for passes in FLAGS.torch_passes:
        twins = [torch_nets.twin(net) for net in model.nets]
        torch_step = torch_nets.TorchStep(kind, twins, model.nets[0].inputs[0].shape[1:],
                                          setting[1], passes)
        for _ in range(2):
            float(torch_step(x_torch))
        runs.append(lambda torch_step=torch_step: torch_step(x_torch))
    return runs


def time_model(kind, size, settings, default):
    """Prints a row per setting: project and torch img/s (each form), alternating
    in rounds; the ratio is against the faster torch form."""
    prepared = {s: prepared_steps(kind, size, s) for s in settings}
    runs = {(s, side): run for s, steps in prepared.items() for side, run in enumerate(steps)}
    times = timed_in_turn(runs, FLAGS.steps, FLAGS.rounds)
    for s in settings:
        sides = range(len(prepared[s]))
        rates = [FLAGS.batch_size / float(np.median(times[s, side])) for side in sides]
        spreads = [(max(times[s, side]) - min(times[s, side])) / float(np.median(times[s, side]))
                   for side in sides]
        _, precision, _, dw = s
        print(f"{kind:6} {size:>3} {precision:>5} {dw:>7} "
              + f"{rates[0]:9.1f}" + "".join(f" {rate:14.1f}" for rate in rates[1:])
              + f" {rates[0] / max(rates[1:]):8.2f}× "
              + "".join(f"{spread:7.0%}" for spread in spreads)
              + ("  default" if s == default else ""), flush=True)


def busy_cores(seconds=1.0):
    """Cores the machine spent busy over `seconds` while this process slept,
    from /proc/stat: what other processes take from the timing."""
    def times():
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # all, idle + iowait

    (total0, idle0), _ = times(), time.sleep(seconds)
    total1, idle1 = times()
    busy = 1.0 - (idle1 - idle0) / max(total1 - total0, 1)
    return busy * (os.cpu_count() or 1)


def machine_line():
    flags_here = devices.cpu_flags()
    bf16 = ", ".join(f"{name} {'yes' if name in flags_here else 'no'}"
                     for name in ("amx_bf16", "avx512_bf16"))
    return (f"CPU: {bf16}; TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def main(_):
    unknown = sorted(set(FLAGS.torch_passes) - set(torch_nets.PASSES))
    if unknown or not FLAGS.torch_passes:
        raise SystemExit(f"bench_torch: --torch_passes takes {', '.join(torch_nets.PASSES)}, "
                         f"got {','.join(FLAGS.torch_passes) or 'nothing'}")
    torch.set_num_threads(FLAGS.torch_threads)
    sizes = [int(s) for s in FLAGS.sizes.split(",")]
    print(machine_line(), flush=True)
    try:
        for size in sizes:
            for kind in FLAGS.models.split(","):
                check_model(kind, size)
    except TwinMismatch as error:
        raise SystemExit(f"bench_torch: {error}") from None
    if FLAGS.checks_only:
        return
    settings, default = settings_to_time()
    print(f"load average before: {load_average()}", flush=True)
    busy = busy_cores()
    print(f"cores busy with other processes (1 s, this one idle): {busy:.2f}", flush=True)
    if busy > BUSY_CORES:
        print(f"warning: other processes hold {busy:.2f} cores; torch's OpenMP threads slow "
              "down far more than TensorFlow's pool then, so the ratios are not comparable "
              "(time on an idle machine)", flush=True)
    print(f"default (the scripts' default settings here): XLA {default[0]}, {default[1]}, "
          f"{default[2]} BatchNorm, {default[3]} filter gradient", flush=True)
    forms = "".join(f" {'torch ' + p:>14}" for p in FLAGS.torch_passes)
    print(f"{'model':6} {'px':>3} {'prec':>5} {'dw':>7} {'project':>9}{forms} "
          f"{'ratio':>9} " + "".join(f"{'spread':>7}" for _ in range(len(FLAGS.torch_passes) + 1))
          + "    (img/s; ratio project / the faster torch form; spread of the rounds, "
          "same order)", flush=True)
    for size in sizes:
        for kind in FLAGS.models.split(","):
            time_model(kind, size, settings, default)
    print(f"load average after: {load_average()}", flush=True)
    print(machine_line(), flush=True)


if __name__ == "__main__":
    app.run(main)
