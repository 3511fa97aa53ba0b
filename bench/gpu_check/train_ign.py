"""Section `train_ign`: train_ign.py on Fashion-MNIST with its defaults (the
preset's steps and arguments) in a child process; its first line states the
replicas and the precision it chose."""

import os
import shutil

from gpu_check.processes import Child


def start_train_ign(run):
    folder = os.path.join(run.out, "train_ign")
    shutil.rmtree(folder, ignore_errors=True)
    return Child(run.out, "train_ign", ["train_ign.py", f"--out_dir={folder}",
                                        f"--steps={run.preset.train_steps}",
                                        *run.preset.train_args])


def train_ign_result(run, child, timeout=900):
    """The section of the train_ign.py run: its command, first line (replicas and
    precision), last progress line and last line."""
    code = child.wait(timeout)
    run.process(child)
    if code:
        raise RuntimeError(child.failure())
    lines = [line for line in child.output()[0].splitlines() if line.strip()]
    progress = [line for line in lines if line.startswith("step ")]
    # The driver's start line (data, replicas, precision); lines before it announce
    # the script's own preparations.
    start = [line for line in lines if "replica(s)" in line]
    return {"command": "python " + " ".join(child.command),
            "run_seconds": round(child.seconds(), 1),
            "first_line": (start or lines or [""])[0],
            "last_progress": progress[-1] if progress else "",
            "last_line": lines[-1] if lines else "",
            "output": [os.path.basename(path) for path in child.logs]}
