"""The child processes of the check, with their output in files."""

import contextlib
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Child:
    """A subprocess of this project's Python with the repository importable. Its
    stderr, and its stdout when `capture` (else it shares ours), go to files in
    `out`, so that nothing waits on a full pipe."""

    def __init__(self, out, name, command, results=None, capture=True):
        self.name, self.command, self.results = name, command, results
        self.logs = [os.path.join(out, f"{name}.{n}.txt") for n in ("stdout", "stderr")]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        self.start = time.perf_counter()
        with contextlib.ExitStack() as files:
            stdout = files.enter_context(open(self.logs[0], "w")) if capture else None
            stderr = files.enter_context(open(self.logs[1], "w"))
            self.process = subprocess.Popen([sys.executable] + command, cwd=ROOT, env=env,
                                            stdout=stdout, stderr=stderr)
        self.code = None

    def wait(self, timeout):
        """Waits for the child; its CPU seconds are what the children this process
        has waited for used meanwhile (one child is waited for at a time)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            self.code = self.process.wait(timeout=max(timeout - self.seconds(), 1))
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.code = self.process.wait()
            raise RuntimeError(f"{self.name} did not finish within {timeout} s") from None
        finally:
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            self.cpu_seconds = round(after.ru_utime + after.ru_stime
                                     - before.ru_utime - before.ru_stime, 1)
            self.wall_seconds = round(self.seconds(), 1)
        return self.code

    def seconds(self):
        return time.perf_counter() - self.start

    def output(self):
        """(stdout, stderr) as written so far."""
        return [open(path).read() if os.path.exists(path) else "" for path in self.logs]

    def failure(self):
        """`<name> exited with <code>: <last stderr line>`."""
        errors = [line for line in self.output()[1].splitlines() if line.strip()]
        return f"{self.name} exited with {self.code}: {errors[-1] if errors else 'no output'}"[:300]
