"""Prints the results table of docs/RESULTS.md from evaluate.py's JSON files.

    python docs/results_table.py "floor=runs/results/floor.json" \\
        "DCGAN=runs/results/dcgan2.json:447:3000" "SingleLossGAN=runs/results/gan.json" ...

Each argument is label=path[:wall_seconds[:steps]]; steps and wall time are read
from the file (the training script's metrics.json, the saved optimizer's step
counter, or the run folder's file times) unless given after colons, for a
saved bare generator whose script only printed them. Nothing is computed here
beyond formatting: every number comes from the "evaluation" object evaluate.py wrote.
"""

import json
import sys

COLUMNS = ("steps", "wall", "FID ↓", "KID ×10³ ↓", "precision ↑", "recall ↑",
           "linear probe ↑", "recon. agreement ↑", "idempotence gap ↓")


def cell(value, digits=3):
    return "—" if value is None else f"{value:.{digits}f}"


def row(label, path, wall=None, steps=None):
    with open(path) as f:
        e = json.load(f)["evaluation"]
    steps = steps if steps is not None else e.get("steps")
    wall = wall if wall is not None else e.get("wall_seconds", e.get("wall_seconds_from_files"))
    probe = e.get("probe_encoder", e.get("probe_pixels"))
    kid = f"{1e3 * e['kid']:.2f} ± {1e3 * e['kid_std']:.2f}"
    values = ["—" if steps is None else str(steps), "—" if wall is None else f"{float(wall) / 60:.1f} min",
              cell(e["fid"]), kid, cell(e["precision"]), cell(e["recall"]), cell(probe),
              cell(e.get("recon_agreement")), cell(e.get("idem_gap"))]
    return f"| {label} | " + " | ".join(values) + " |"


def main(args):
    print("| run | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---|" * len(COLUMNS))
    for arg in args:
        label, _, rest = arg.partition("=")
        path, _, rest = rest.partition(":")
        wall, _, steps = rest.partition(":")
        print(row(label, path, float(wall) if wall else None, int(steps) if steps else None))


if __name__ == "__main__":
    main(sys.argv[1:])
