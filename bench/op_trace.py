"""Reading TensorFlow's profiler trace (for bench/profile_ops.py): which op kernels
ran, how long, and where in a model each belongs. Defines no flag, so tests and
other benches can import it."""

import glob
import re
import shutil
import tempfile

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2


def op_events(space):
    """(op name, op type, picoseconds) of every op kernel in the trace."""
    for plane in space.planes:
        metadata = plane.event_metadata
        for line in plane.lines:  # the compute threads, and the caller's for small ops
            for event in line.events:
                meta = metadata[event.metadata_id]
                if meta.display_name:  # op events carry their type; others do not
                    yield meta.name.partition(":")[0], meta.display_name, event.duration_ps


def unsuffixed(component):
    """A name scope's component without the `_<n>` TensorFlow adds to repeat uses."""
    return re.sub(r"_\d+$", "", component)


def layer_classes(model):
    """{(network name, layer name): layer class name} of the model's networks."""
    return {(net.name, layer.name): type(layer).__name__
            for net in model.layers for layer in getattr(net, "layers", [])}


def role(op_name, op_type):
    """forward; or, under the gradient tape, filter gradient (the conv's weight
    gradient: TensorFlow's BackpropFilter kernel, or every op of
    `ogan_ign.conv_gradient`'s "filter_gradient" scope), input gradient (a conv
    computing the gradient of its input: a transposed conv's is a Conv2D), matmul
    gradient (a Dense's, both kinds) or other gradient (element-wise ops,
    reductions, casts)."""
    if not op_name.startswith("gradient_tape/"):
        return "forward"
    if "BackpropFilter" in op_type or "/filter_gradient/" in op_name:
        return "filter gradient"
    if op_type.endswith(("Conv2D", "Conv2DBackpropInput")):
        return "input gradient"
    return "matmul gradient" if op_type.endswith("MatMul") else "other gradient"


def where(op_name, classes):
    """(network, layer class) the op belongs to, or ("—", loss/optimizer/other)."""
    parts = [unsuffixed(p) for p in op_name.split("/")]
    if parts and parts[0] == "gradient_tape":
        parts = parts[1:]
    for net, layer in zip(parts, parts[1:]):
        if (net, layer) in classes:
            return net, classes[(net, layer)]
    first = parts[0].lower() if parts else ""
    if first in ("rm_sprop", "rmsprop", "adam", "sgd") or "optimizer" in first:
        return "—", "optimizer"
    return "—", "loss, averages, other"


def traced_ops(run, steps):
    """(wall ms per call, op events) of `steps` calls of `run` (which returns a
    tensor, read once at the end) under TensorFlow's profiler."""
    folder = tempfile.mkdtemp(prefix="profile_ops_")
    tf.profiler.experimental.start(folder)
    try:
        clock = tf.timestamp()
        for _ in range(steps):
            out = run()
        float(tf.reduce_sum(tf.cast(out, tf.float32)))
        wall_ms = 1e3 * float(tf.timestamp() - clock) / steps
    finally:
        tf.profiler.experimental.stop()
    space = xplane_pb2.XSpace()
    with open(glob.glob(f"{folder}/**/*.xplane.pb", recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    shutil.rmtree(folder, ignore_errors=True)
    return wall_ms, list(op_events(space))
