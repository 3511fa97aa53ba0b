"""Each child's devices, and section `environment`: versions (TF, Keras, CUDA,
cuDNN), devices, and what the scripts' `--strategy auto`, `--mixed_precision
auto` and `--jit_compile auto` resolve to here (the last read from a model
compiled by Keras)."""

import contextlib
import platform

import keras
import numpy as np
import tensorflow as tf

from flops import load_average
from gpu_check import reference
from ogan_ign import gan, networks, training

CARVED_MB = 2048     # each of the two logical GPUs carved from one for the checks


def configure_devices(carve_gpu):
    """The devices of one child; must run before TensorFlow initialises them
    (logical devices cannot be changed afterwards).

    pair: two devices for the equality check: the first two GPUs; one GPU
    carved in two (carve_gpu, the checks child, whose nets are tiny); with no
    GPU, the CPU split in two. one: the first device. all: every GPU (the
    scaling rows), or the two logical CPUs."""
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) == 1 and carve_gpu:
        tf.config.set_logical_device_configuration(
            gpus[0], [tf.config.LogicalDeviceConfiguration(memory_limit=CARVED_MB)] * 2)
        setup = f"one GPU carved into two logical GPUs of {CARVED_MB} MB for the equality check"
    elif not gpus:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
        setup = ("no GPU: the CPU split into two logical CPUs (they share the same cores, so "
                 "the 'all devices' speed rows measure overhead, not scaling)")
    else:
        setup = f"{len(gpus)} GPU(s), as they are"
    kind = "GPU" if gpus else "CPU"
    logical = [d.name for d in tf.config.list_logical_devices(kind)]
    return {"kind": kind, "pair": logical[:2], "one": logical[:1],
            "all": logical[:1] if len(gpus) == 1 else logical, "setup": setup}


def jit_under(strategy):
    """What Keras makes of compile(jit_compile="auto") for a model built in `strategy`."""
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = gan.SingleLossGAN(networks.mlp_generator(2, 2, hidden=4, depth=1),
                                  networks.mlp_critic(2, 1, hidden=4, depth=1))
        model.compile(jit_compile="auto")
    return bool(model.jit_compile)


def physical_devices():
    """Each physical device's name and type, and a GPU's details (compute capability)."""
    devices = []
    for device in tf.config.list_physical_devices():
        details = tf.config.experimental.get_device_details(device) \
            if device.device_type == "GPU" else {}
        devices.append({"name": device.name, "type": device.device_type,
                        **{k: list(v) if isinstance(v, tuple) else v
                           for k, v in details.items()}})
    return devices


def auto_jit(strategy, gpus):
    """--jit_compile auto: {one device, as the scripts build, why}."""
    alone = jit_under(None)
    scripts = jit_under(strategy) if strategy is not tf.distribute.get_strategy() else alone
    if not gpus:
        why = "Keras turns XLA off on a machine without GPU or TPU"
    elif scripts != alone:
        why = ("Keras turns XLA off under any tf.distribute strategy, and --strategy auto "
               "is a MirroredStrategy whenever a GPU is visible, even one")
    else:
        why = "Keras's choice for this model on these devices"
    return {"one device, no strategy": alone,
            "as the scripts build (--strategy auto)": scripts, "why": why}


def environment(run):
    build = tf.sysconfig.get_build_info()
    devices = physical_devices()
    with reference.own_collective_keys():
        strategy = training.make_strategy("auto")
    replicas = strategy.num_replicas_in_sync
    precision, why = training.resolve_precision("auto", strategy)
    jit = auto_jit(strategy, [d for d in devices if d["type"] == "GPU"])
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, CUDA "
          f"{build.get('cuda_version', '-')}, cuDNN {build.get('cudnn_version', '-')}; "
          + "; ".join(f"{d['name']} {d.get('device_name', '')}".strip() for d in devices)
          + f"\n--strategy auto: {type(strategy).__name__.strip('_')} ({replicas} replica(s)); "
          f"--mixed_precision auto: {precision} ({why}); --jit_compile auto: "
          f"{'on' if jit['as the scripts build (--strategy auto)'] else 'off'} "
          f"({jit['why']})", flush=True)
    return {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__,
        "cuda": build.get("cuda_version", "none (not a CUDA build)"),
        "cudnn": build.get("cudnn_version", "none (not a CUDA build)"),
        "cuda_build": bool(build.get("is_cuda_build", False)),
        "physical_devices": devices,
        "logical_devices": [d.name for d in tf.config.list_logical_devices()],
        "device_setup": run.devices["setup"],
        "tensor_float_32": tf.config.experimental.tensor_float_32_execution_enabled(),
        "cpu_bf16": sorted({"avx512_bf16", "amx_bf16"} & training.cpu_flags()),
        "load_average": load_average(),
        "auto": {"strategy": f"{type(strategy).__name__.strip('_')}, {replicas} replica(s)",
                 "mixed_precision": f"{precision} ({why})", "jit_compile": jit},
    }
