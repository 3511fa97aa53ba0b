"""Shared by the benchmarks: multiply-add counts of the conv and dense layers,
the timed models with their training FLOPs (bench_scale.py's docstring has the
formula), the matmul peak, the machine's load (printed before and after a run,
to judge its figures), comma-list flags checked before any work starts, and
the settings the scripts' default flags resolve to, the warmed-up training step
that bench_scale.py and bench_torch.py time and profile_ops.py traces.
Defines a flag only when called to (`define_list`, `define_timing_flags`)."""

import time

import keras
import numpy as np
import tensorflow as tf
from absl import flags
from keras import layers

from ogan_ign import gan, ign, kernels, networks, ogan, training


def layer_macs(layer):
    """Forward multiply-adds of one Conv2D (out_h·out_w·k²·c_in·c_out),
    Conv2DTranspose (in_h·in_w·k²·c_in·c_out) or Dense (in·out) per image; 0 else."""
    if isinstance(layer, layers.Conv2DTranspose):
        _, h, w, c_in = layer.input.shape
        return h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
    if isinstance(layer, layers.Conv2D):
        _, h, w, c_out = layer.output.shape
        return h * w * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] * c_out
    if isinstance(layer, layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def macs(model):
    """Forward multiply-adds of a model's conv and dense layers, per image."""
    return sum(macs(layer) if isinstance(layer, keras.Model) else layer_macs(layer)
               for layer in model.layers)


def load_average():
    """The 1, 5 and 15 minute load averages, as /proc/loadavg gives them."""
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def define_list(name, default, choices, help):
    """A comma-separated string flag whose items must be among `choices`: a typo
    stops the benchmark with one line instead of timing (and labelling) the
    wrong thing."""
    flags.DEFINE_string(name, default, f"{help} (comma-separated: {', '.join(choices)})")
    flags.register_validator(
        name, lambda value: bool(value) and set(value.split(",")) <= set(choices),
        message=f"--{name} takes a comma-separated list of {', '.join(choices)}")


def define_timing_flags(models, precision):
    """The flags bench_scale.py and bench_torch.py share, with the defaults
    `models` and `precision` (comma lists): --sizes, --batch_size, --steps,
    --rounds (settings timed in turn each round, the median kept), --models,
    --precision."""
    flags.DEFINE_string("sizes", "32,64", "image sides")
    flags.DEFINE_integer("batch_size", 64, "images per step")
    flags.DEFINE_integer("steps", 5, "timed steps per setting and round")
    flags.DEFINE_integer("rounds", 3, "rounds of timing, settings interleaved (after one "
                         "untimed round); the median is kept")
    define_list("models", models, ("gan", "ogan", "ign"), "which models")
    define_list("precision", precision, ("auto", "fp32", "bf16"),
                "precisions to time; auto: what --mixed_precision auto picks here")


def timed_in_turn(runs, steps, rounds):
    """{key: [seconds per step, one per round]} of `runs` ({key: a no-argument
    call of one step returning its loss}): every run `steps` times in turn
    (the loss read once at the end, so the last step has finished), `rounds`
    times, so a slow spell of the machine hits every run alike. One untimed
    round goes first: building the later runs leaves the first one's memory
    cold, and its first round read up to 40 % slow."""
    times = {key: [] for key in runs}
    for timed in [False] + [True] * rounds:
        for key, run in runs.items():
            start = time.perf_counter()
            for _ in range(steps):
                loss = run()
            float(loss)
            if timed:
                times[key].append((time.perf_counter() - start) / steps)
    return times


def matmul_peak(dtype, n, repeats=5):
    """Best FLOP/s of an n×n matmul chain in graph mode."""
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    chain = 4

    @tf.function
    def run(x):
        for _ in range(chain):
            x = tf.matmul(x, a) * tf.constant(0.01, dtype)
        return x

    run(a).numpy()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        run(a).numpy()
        best = max(best, chain * 2 * n**3 / (time.perf_counter() - start))
    return best


def resolve_batchnorm(name):
    """A bench's --batchnorm word: "auto" is the training scripts' default
    (training.Config's --batchnorm), "keras" and "fused" themselves."""
    return training.Config().batchnorm if name == "auto" else name


def auto_settings():
    """(xla, precision, batchnorm) the training scripts' default flags resolve to
    here: Keras's jit_compile="auto" for a model built outside any strategy,
    --mixed_precision auto (fp32 / bf16) and --batchnorm's default."""
    probe = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    probe.compile(jit_compile="auto")
    return ("on" if probe.jit_compile else "off", training.resolve_precision("auto")[0],
            resolve_batchnorm("auto"))


def build(kind, size):
    """(model, training FLOPs per image) of `kind` at `size` px, the libraries'
    default nets at width 64, seeded."""
    keras.utils.set_random_seed(0)
    if kind == "gan":
        g = networks.dcgan_generator(size, 3, z_dim=128)
        d = networks.dcgan_encoder(size, 3, z_dim=1, name="critic")
        # The critic's passes over G(z) are one (split_pass.split_call): a forward, the
        # input gradient for G and the weights' backward: k = 1 + 1 + 2.
        return gan.SingleLossGAN(g, d), 2 * (3 * macs(g) + (3 + 4) * macs(d))
    if kind == "ogan":
        e = networks.dcgan_encoder(size, 3, z_dim=128)
        g = networks.dcgan_generator(size, 3, z_dim=128)
        return ogan.OGAN(e, g), 2 * (3 * macs(g) + (3 + 4) * macs(e))
    f = networks.dcgan_autoencoder(size, 3, latent=512)
    # f(x) and f(z) in full; f(f(z)) once for both of its uses (split_pass.split_call).
    return ign.IGN(f), 2 * (2 * 3 + 4) * macs(f)


def prepared_step(kind, size, setting, batch_size):
    """(step, x, model, training FLOPs per image): the model's train_step as fit()
    runs it, traced and warmed up on one fixed batch; setting = (xla on|off,
    precision fp32|bf16, batchnorm keras|fused, filter gradient native|as_conv),
    its kernels installed as the training driver installs them."""
    xla, precision, batchnorm, filter_gradient = setting
    with training.precision_policy(precision):
        model, flops_per_image = build(kind, size)
        model.compile(jit_compile=xla == "on")
    for net in model.nets:  # as the training driver does
        kernels.install(net, *training.training_kernels(filter_gradient, batchnorm))
    step = tf.function(model.train_step, jit_compile=xla == "on")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (batch_size, size, size, 3)).astype("float32"))
    for _ in range(2):
        float(step(x)["loss/total"])
    return step, x, model, flops_per_image
