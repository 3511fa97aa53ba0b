"""The first process's report, and which child runs which section: the first
process only orchestrates and writes the report; it never touches a device.
`options` are the parsed flags of __main__.py."""

import dataclasses
import json
import os
import time

import tensorflow as tf
from absl import app

from gpu_check.determinism import determinism
from gpu_check.environment import configure_devices, environment
from gpu_check.equality import equality
from gpu_check.markdown import markdown
from gpu_check.precision import precision
from gpu_check.presets import PRESETS
from gpu_check.processes import ROOT, Child
from gpu_check.record import Run, exit_status
from gpu_check.speed import speed
from gpu_check.train_ign import start_train_ign, train_ign_result
from ogan_ign import atomic, training

# Sections per child, about even in time; determinism last: it cannot be undone.
WORKERS = {"checks": ("equality",),
           "speed": ("environment", "precision", "speed", "determinism")}
SECTIONS = {"environment": environment, "equality": equality, "precision": precision,
            "speed": speed, "determinism": determinism}
ORDER = ("environment", "equality", "precision", "determinism", "speed", "train_ign")
TIMEOUT = {"full": 1200, "quick": 600}   # per child process, seconds
PACKAGE = os.path.relpath(os.path.dirname(os.path.abspath(__file__)), ROOT)


class Report(Run):
    """The first process's record: the children's sections merged in, written
    as gpu_check.json and gpu_check.md."""

    def merge(self, worker, names):
        """Takes a finished worker's sections and checks; a section it did not
        record failed with the worker's exit status and last error line."""
        self.process(worker)
        results = {"sections": {}, "checks": []}
        if os.path.exists(worker.results):
            with open(worker.results) as f:
                results = json.load(f)
        self.report["checks"] += results["checks"]
        for name in names:
            self.report["sections"][name] = results["sections"].get(name) or {
                "status": f"failed: {worker.failure()}", "seconds": 0.0}
        self.write()

    def process(self, child):
        self.report.setdefault("processes", {})[child.name] = {
            "wall_seconds": child.wall_seconds, "cpu_seconds": child.cpu_seconds,
            "exit_status": child.code}

    def passed(self):
        return exit_status(self.report) == 0

    def write(self):
        self.report["seconds_total"] = round(time.perf_counter() - self.start, 1)
        self.report["passed"] = self.passed()
        training.write_json(os.path.join(self.out, "gpu_check.json"), self.report)
        with atomic.replacing(os.path.join(self.out, "gpu_check.md")) as tmp, \
                open(tmp, "w") as f:
            f.write(markdown(self.report))


def mode(options):
    return "quick" if options.quick else "full"


def preset(options):
    """The mode's preset with the flags' overrides."""
    chosen = PRESETS[mode(options)]
    return dataclasses.replace(
        chosen, train_steps=options.train_steps or chosen.train_steps,
        speed_seconds=options.speed_seconds or chosen.speed_seconds,
        mismatch=1e-3 if options.inject_mismatch else 0.0)


def worker(name, options):
    """One child: configures its devices, runs its sections, records each."""
    run = Run(options.out, preset(options), mode(options), results=options.results)
    run.devices = configure_devices(carve_gpu=name == "checks")  # speed: devices as they are
    for section in WORKERS[name]:
        run.section(section, SECTIONS[section])
    return 0


def start_worker(run, name, options):
    forwarded = [f"--out={run.out}"]  # absolute
    forwarded += ["--quick"] * options.quick + ["--inject_mismatch"] * options.inject_mismatch
    if options.speed_seconds:
        forwarded.append(f"--speed_seconds={options.speed_seconds}")
    results = os.path.join(run.out, f"worker_{name}.json")
    if os.path.exists(results):
        os.remove(results)
    return Child(run.out, f"worker_{name}", [PACKAGE, f"--worker={name}",
                                             f"--results={results}"] + forwarded, results,
                 capture=False)


def finish_worker(run, child):
    try:
        child.wait(TIMEOUT[run.report["mode"]])
    except RuntimeError:
        pass  # recorded by merge as the sections' failure
    run.merge(child, WORKERS[child.name[len("worker_"):]])


def check_flags(argv, options):
    """One-line errors for bad flags, before any work starts."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not options.out:
        raise app.UsageError("--out is required (a folder for the report)")
    for name in ("train_steps", "speed_seconds"):
        value = getattr(options, name)
        if value is not None and value <= 0:
            raise app.UsageError(f"--{name} must be positive, got {value}")


def orchestrate(run, options):
    """Starts the three children and merges what they record. With a GPU they
    run one after the other (each would want the GPU's memory, and the speed
    figures want the GPU alone); on a CPU they run side by side."""
    timeout = TIMEOUT[run.report["mode"]]
    sequential = bool(tf.config.list_physical_devices("GPU"))
    trainer = start_train_ign(run)
    if sequential:
        run.section("train_ign", lambda r: train_ign_result(r, trainer, timeout))
    workers = []
    for name in WORKERS:
        workers.append(start_worker(run, name, options))
        if sequential:
            finish_worker(run, workers.pop())
    if not sequential:  # the shortest first, so that its time is its own
        run.section("train_ign", lambda r: train_ign_result(r, trainer, timeout))
    for child in workers:
        finish_worker(run, child)


def main(argv, options):
    check_flags(argv, options)
    if options.worker:
        return worker(options.worker, options)
    out = os.path.abspath(options.out)  # the children run in the repository's root
    os.makedirs(out, exist_ok=True)
    run = Report(out, preset(options), mode(options))
    orchestrate(run, options)
    run.report["sections"] = {k: run.report["sections"][k] for k in ORDER}
    run.write()
    print("\n" + markdown(run.report), flush=True)
    print(f"report: {os.path.join(out, 'gpu_check.md')} "
          f"({'passed' if run.passed() else 'FAILED'}, {run.report['seconds_total']} s)")
    return exit_status(run.report)
