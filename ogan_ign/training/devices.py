"""Where and how a step runs: the tf.distribute strategy, the precision, XLA.

Strategies: auto (MirroredStrategy over the visible GPUs, else the default),
default, mirrored, multi_worker (TF_CONFIG; only the chief writes files), tpu.
Precision: --mixed_precision auto picks bf16 where the devices compute in
bfloat16 natively (`resolve_precision`), and the model is built under that Keras
dtype policy (`precision_policy`). XLA: --jit_compile goes to `model.compile`;
with XLA on over several replicas the step runs as per-replica XLA shards whose
batch statistics are per replica (`one_loss.XlaShards`), which `run_record`
records for the resume check.
"""

import contextlib
import importlib.metadata
import os

import keras
import tensorflow as tf

from ogan_ign import conv_gradient, fused_batchnorm, one_loss
from ogan_ign.training.config import STRATEGIES, ConfigError, precision_word

# Keras's dtype policy for each precision word (config.PRECISIONS).
PRECISION_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def make_strategy(name):
    """The tf.distribute strategy for --strategy (ConfigError when unavailable)."""
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        # The cluster comes from TF_CONFIG; without it TensorFlow would train one
        # local worker silently.
        if not os.environ.get("TF_CONFIG", "").strip():
            raise ConfigError("--strategy=multi_worker needs the cluster in TF_CONFIG (JSON: "
                              "cluster and task); on one machine use --strategy=auto or mirrored")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, tf.errors.OpError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--strategy=tpu: no TPU found ({first})") from None
        return tf.distribute.TPUStrategy(resolver)
    raise ConfigError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def is_chief(strategy):
    """Whether this task writes checkpoints, logs and figures (one task does)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or isinstance(strategy, tf.distribute.TPUStrategy):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if not cluster or resolver.task_type in (None, "chief"):
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster


def cpu_flags():
    """The instruction-set flags of this machine's CPU (Linux), or an empty set."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_precision(name, strategy=None, gpu_capabilities=None, cpu=None):
    """(precision, why) for --mixed_precision, the precision a word of
    config.PRECISIONS (an old spelling is read as its word); "auto" picks bf16
    where the devices compute in bfloat16 natively, fp32 elsewhere.

    Native bfloat16: TPUs, NVIDIA GPUs of compute capability 8.0 or higher (every
    visible GPU must qualify), or, with no GPU, a CPU with AMX-BF16 or
    AVX512-BF16 (the loss math stays float32); elsewhere bfloat16 is emulated
    and slower than float32.
    `gpu_capabilities` (a list of (major, minor) or None per GPU) and `cpu` (a set
    of CPU flags) default to this machine's.
    """
    name = precision_word(name)
    if name != "auto":
        return name, "as asked"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "bf16", "TPU"
    if gpu_capabilities is None:
        gpu_capabilities = [tf.config.experimental.get_device_details(gpu).get("compute_capability")
                            for gpu in tf.config.list_physical_devices("GPU")]
    if gpu_capabilities:
        if all(c is not None and tuple(c) >= (8, 0) for c in gpu_capabilities):
            return "bf16", "GPUs with native bfloat16 (compute capability ≥ 8.0)"
        return "fp32", "a GPU without native bfloat16 (compute capability < 8.0)"
    cpu = cpu_flags() if cpu is None else cpu
    native = sorted({"amx_bf16", "avx512_bf16"} & set(cpu))
    if native:
        return "bf16", f"CPU with {'/'.join(native)}"
    return "fp32", "CPU without bfloat16 instructions"


def resolve_filter_gradient(name, precision, strategy=None, gpus=None, cpu=None):
    """(kind, why) for --filter_gradient: "native" or "as_conv" (ogan_ign.conv_gradient).

    "auto" picks as_conv where it was measured faster (README, speed): a bf16 step
    on a CPU with AVX512-BF16 and no AMX, whose bfloat16 filter-gradient kernel is
    no faster than its float32 one. Everywhere else (fp32, GPUs, TPUs, AMX CPUs)
    native, until measured there. `gpus` (a list) and `cpu` (a set of flags)
    default to this machine's.
    """
    if name != "auto":
        return name, "as asked"
    if precision != "bf16":
        return "native", f"{precision} step"
    if gpus is None:
        gpus = tf.config.list_physical_devices("GPU")
    if isinstance(strategy, tf.distribute.TPUStrategy) or gpus:
        return "native", "accelerators: not measured"
    cpu = cpu_flags() if cpu is None else cpu
    if "amx_bf16" in cpu:
        return "native", "CPU with AMX: not measured"
    if "avx512_bf16" in cpu:
        return "as_conv", "bf16 on a CPU with AVX512-BF16"
    return "native", "CPU without bfloat16 instructions"


def training_kernels(filter_gradient, batchnorm):
    """The ogan_ign.kernels a run installs on its networks for a resolved
    --filter_gradient ("native" | "as_conv") and --batchnorm ("keras" | "fused")."""
    return ((conv_gradient.KERNEL,) if filter_gradient == "as_conv" else ()) + (
        (fused_batchnorm.KERNEL,) if batchnorm == "fused" else ())


@contextlib.contextmanager
def precision_policy(name):
    """Sets Keras's global dtype policy of a precision (fp32, bf16, fp16, or an
    old spelling) while the model is built, then restores it."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(PRECISION_POLICIES[precision_word(name)])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def model_batch_statistics(model, strategy):
    """"global", or "per replica" when the step runs as XLA shards (one_loss.XlaShards)."""
    return "per replica" if one_loss.uses_xla_shards(model.jit_compile, strategy) else "global"


def package_version():
    try:
        return importlib.metadata.version("ogan_ign")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def run_record(model, strategy, precision, filter_gradient="native", batchnorm="keras"):
    """What the flags resolved to on this machine, for config.json's "run"."""
    return {
        "precision": precision,
        "filter_gradient": filter_gradient,
        "batchnorm": batchnorm,
        "strategy": type(strategy).__name__,
        "replicas": strategy.num_replicas_in_sync,
        "jit_compile": bool(model.jit_compile),
        "batch_statistics": model_batch_statistics(model, strategy),
        "versions": {"ogan_ign": package_version(), "tensorflow": tf.__version__,
                     "keras": keras.__version__},
    }
