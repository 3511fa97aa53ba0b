"""Section `speed`: img/s of each model (flops.build's networks and FLOP count)
at the preset's sizes and batch per replica, over the preset's grid of settings;
the scaling efficiency = img/s on N devices / (N × img/s on one); the share of
the matmul peak of the same precision, measured in this process. One device is
a MirroredStrategy with one replica, as the scripts run on a one-GPU machine.
The settings of a (model, size) are timed in turn over several rounds and the
median kept; groups not started within the time budget are listed as skipped.
"""

import dataclasses
import gc
import math
import time

import keras
import numpy as np
import tensorflow as tf

from flops import build as speed_model, matmul_peak
from gpu_check import reference
from gpu_check.presets import MODELS
from gpu_check.record import error_summary
from ogan_ign import training

def auto_precision(cpu=None):
    """What --mixed_precision auto resolves to here (fp32 / bf16; the grid uses
    training's precision words)."""
    return training.resolve_precision("auto", cpu=cpu)[0]


def grid_settings(grid, kind, auto, many_devices):
    """The (where, xla, precision) settings of `kind` in a speed grid, with the
    names "auto" and "half" resolved for a device whose auto precision is `auto`.

    Every all-devices row gets its one-device partner at the same XLA setting and
    precision (added when the grid lacks it), so the scaling ratio is formed on
    every CPU and GPU, whatever `auto` picks there. Order kept, duplicates dropped.
    """
    named = {"auto": auto, "half": "bf16" if auto == "bf16" else "fp16"}
    settings = []
    for model, where, xla, prec in grid:
        if model != kind or (where == "all" and not many_devices):
            continue
        setting = (where, xla, named.get(prec, prec))
        partner = ("one",) + setting[1:]
        for wanted in ([partner] if where == "all" else []) + [setting]:
            if wanted not in settings:
                settings.append(wanted)
    return settings


@dataclasses.dataclass
class Prepared:
    model: keras.Model
    step: object
    iterator: object
    flops_per_image: float
    batch: int          # global batch
    devices: int


def prepare(kind, size, setting, devices, batch_per_replica):
    """flops.build's model on `devices` (a MirroredStrategy, as the scripts run
    on GPUs) at `setting` (xla, precision), compiled, its train function traced
    and warmed up on a constant batch. The step is Keras's own train function,
    the one fit() calls."""
    xla, precision = setting
    strategy = reference.mirrored(devices)
    with training.precision_policy(precision), strategy.scope():
        model, flops_per_image = speed_model(kind, size)
        model.compile(jit_compile=xla == "on")
    batch = batch_per_replica * len(devices)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    data = tf.data.Dataset.from_tensors(x).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    iterator = iter(strategy.experimental_distribute_dataset(data.with_options(options)))
    model.make_train_function()
    prepared = Prepared(model, model.train_function, iterator, flops_per_image, batch,
                        len(devices))
    for _ in range(2):  # the first traces (and with XLA compiles)
        last_loss(prepared.step(iterator))
    return prepared


def last_loss(logs):
    return float(np.mean(np.asarray(logs["loss/total"])))


def seconds_per_step(prepared, steps):
    start = time.perf_counter()
    for _ in range(steps):
        logs = prepared.step(prepared.iterator)
    loss = last_loss(logs)  # waits for the last step
    return (time.perf_counter() - start) / steps, loss


def time_settings(prepared, steps, rounds):
    """{setting: (median img/s, spread, last loss)}, settings timed in turn."""
    times = {s: [] for s in prepared}
    losses = {}
    for _ in range(rounds):
        for setting, p in prepared.items():
            seconds, losses[setting] = seconds_per_step(p, steps)
            times[setting].append(seconds)
    result = {}
    for setting, seconds in times.items():
        median = float(np.median(seconds))
        result[setting] = (prepared[setting].batch / median,
                           (max(seconds) - min(seconds)) / median, losses[setting])
    return result


def release():
    gc.collect()
    keras.backend.clear_session()


@dataclasses.dataclass
class Table:
    """The speed section's result as it grows, group by group."""

    preset: object
    auto: str
    peak: dict          # FLOP/s of the matmul per precision
    rows: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    failed: list = dataclasses.field(default_factory=list)

    def result(self):
        preset = self.preset
        return {"peak_tflop_per_s": {k: v / 1e12 for k, v in self.peak.items()},
                "matmul_n": preset.matmul_n, "batch_per_replica": preset.speed_batch,
                "steps": preset.speed_steps, "rounds": preset.speed_rounds,
                "auto_precision": self.auto, "rows": self.rows, "skipped": self.skipped,
                "failed": self.failed, "summary": speed_summary(self.rows, self.auto)}


def time_group(run, table, kind, size, settings):
    """Prepares and times the settings of one (model, size); adds their rows."""
    preset, devices = run.preset, run.devices
    prepared = {}
    for where, xla, prec in settings:
        try:
            prepared[(where, xla, prec)] = prepare(kind, size, (xla, prec), devices[where],
                                                   preset.speed_batch)
        except Exception as error:  # noqa: BLE001 -- e.g. out of memory: the row says so
            table.failed.append(f"{kind} {size} px {xla}/{prec} on {len(devices[where])} "
                                f"device(s): {error_summary(error)}")
    timed = time_settings(prepared, preset.speed_steps, preset.speed_rounds)
    for (where, xla, prec), (rate, spread, loss) in timed.items():
        flops = prepared[(where, xla, prec)].flops_per_image
        table.rows.append({"model": kind, "size": size, "devices": len(devices[where]),
                           "xla": xla, "precision": prec, "img_per_s": rate, "spread": spread,
                           "gflop_per_image": flops / 1e9, "tflop_per_s": rate * flops / 1e12,
                           "of_peak": rate * flops / table.peak[prec], "loss": loss,
                           "finite": math.isfinite(loss)})
        run.check("speed", f"{kind} {size} px {xla}/{prec} on {len(devices[where])} device(s): "
                  "loss finite", math.isfinite(loss), loss=loss)
    del prepared
    release()


def speed(run):
    preset, devices = run.preset, run.devices
    peak = {}
    for name, dtype in (("fp32", tf.float32), ("bf16", tf.bfloat16), ("fp16", tf.float16)):
        with tf.device(devices["one"][0]):
            peak[name] = matmul_peak(dtype, preset.matmul_n)
    table = Table(preset, auto_precision(), peak)
    budget_end = time.perf_counter() + preset.speed_seconds
    for size in preset.speed_sizes:
        for kind in MODELS:
            settings = grid_settings(preset.speed_grid, kind, table.auto,
                                     len(devices["all"]) >= 2)
            if not settings:
                continue
            if time.perf_counter() > budget_end:
                table.skipped.append(f"{kind} {size} px")
                continue
            time_group(run, table, kind, size, settings)
            # What is done so far survives a crash of this process.
            run.report["sections"]["speed"] = dict(
                table.result(), status="failed: the process ended during this section", seconds=0.0)
            run.write()
    for line in table.failed:
        run.check("speed", line, False)
    return table.result()


def speed_summary(rows, auto):
    """Per model and size: XLA on/off at the auto precision on one device, the
    precisions against fp32 (XLA off), and the scaling efficiency."""
    def rate(kind, size, devices, xla, prec):
        for r in rows:
            if (r["model"], r["size"], r["xla"], r["precision"]) == (kind, size, xla, prec) \
                    and (r["devices"] == 1) == (devices == 1):
                return r["img_per_s"], r["devices"]
        return None, None

    summary = []
    for kind, size in sorted({(r["model"], r["size"]) for r in rows}, key=lambda k: (k[1], k[0])):
        entry = {"model": kind, "size": size}
        off, _ = rate(kind, size, 1, "off", auto)
        on, _ = rate(kind, size, 1, "on", auto)
        if off and on:
            entry["xla_on_over_off"] = on / off
            entry["faster"] = "on" if on > off else "off"
        fp32, _ = rate(kind, size, 1, "off", "fp32")
        for prec in ("bf16", "fp16"):
            other, _ = rate(kind, size, 1, "off", prec)
            if fp32 and other:
                entry[f"{prec}_over_fp32"] = other / fp32
        for xla in ("off", "on"):
            one, _ = rate(kind, size, 1, xla, auto)
            many, n = rate(kind, size, 2, xla, auto)
            if one and many:
                entry[f"scaling_xla_{xla}"] = many / (n * one)
        summary.append(entry)
    return summary


def recommendation(summary):
    """--jit_compile per model from the one-device rows (None: not measured)."""
    votes = {}
    for entry in summary:
        if "faster" in entry:
            votes.setdefault(entry["model"], []).append(entry["faster"])
    return {kind: ("on" if all(v == "on" for v in faster) else
                   "off" if all(v == "off" for v in faster) else "mixed")
            for kind, faster in votes.items()}
