"""What the sections of one process share: the preset, the devices, the
checks, and the file their results go to after every section (so a crash
keeps what was finished)."""

import datetime
import sys
import time
import traceback

from flops import load_average
from ogan_ign import training


def error_summary(error):
    """`Type: first line of the message`, at most 300 characters."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else type(error).__name__
    return f"{type(error).__name__}: {line}"[:300]


class Run:
    """The record of one process's sections; a worker writes it to `results`."""

    def __init__(self, out, preset, mode, results=None):
        self.out, self.preset, self.results = out, preset, results
        self.devices = {}
        self.report = {"mode": mode, "started": datetime.datetime.now(datetime.timezone.utc)
                       .isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                       "sections": {}, "checks": []}
        self.start = time.perf_counter()
        self.report["load_average"] = load_average()

    def check(self, section, name, passed, value=None, limit=None, **detail):
        """Records one check; returns whether it passed."""
        self.report["checks"].append({"section": section, "name": name, "passed": bool(passed),
                                      "value": value, "limit": limit, **detail})
        return bool(passed)

    def section(self, name, function):
        """Runs one section; its result or its failure is recorded at once."""
        print(f"--- {name}", flush=True)
        start, cpu = time.perf_counter(), time.process_time()
        entry = {}
        try:
            entry.update(function(self) or {})
            entry["status"] = "ok"
        except Exception as error:  # noqa: BLE001 -- recorded, the other sections go on
            entry["status"] = f"failed: {error_summary(error)}"
            entry["traceback"] = traceback.format_exc()
            print(traceback.format_exc(), file=sys.stderr, flush=True)
        entry["seconds"] = round(time.perf_counter() - start, 1)
        entry["cpu_seconds"] = round(time.process_time() - cpu, 1)  # this process's threads
        self.report["sections"][name] = entry
        print(f"--- {name}: {entry['status']} ({entry['seconds']} s)", flush=True)
        self.write()

    def write(self):
        training.write_json(self.results, self.report)


def exit_status(report):
    """1 when a check failed or a section did not finish, else 0."""
    ok = (all(s["status"] == "ok" for s in report["sections"].values())
          and all(c["passed"] for c in report["checks"]))
    return 0 if ok else 1
