"""Prints docs/sampling/README.md's tables from the JSON files docs/sampling/run.sh
wrote (evaluate.py's "evaluation" objects), one row per run and setting, and the
mean of the seeds. Nothing is computed here beyond the means and the formatting.

    python docs/sampling/table.py runs/sampling/eval
"""

import collections
import glob
import json
import os
import re
import sys

NAME = re.compile(r"(?P<model>[a-z]+)_(?P<size>\d+)_(?P<aug>on|off|tc)_seed(?P<seed>\d+)"
                  r"_standing(?P<standing>\d+)\.json$")
KEYS = ("fid", "precision", "recall", "effective_classes")


def read(folder):
    rows = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        match = NAME.search(os.path.basename(path))
        if match:
            with open(path) as f:
                evaluation = json.load(f)["evaluation"]
            key = (match["model"], int(match["size"]), match["aug"], int(match["standing"]))
            rows.setdefault(key, {})[int(match["seed"])] = evaluation
    return rows


def table(rows, title, keep):
    print(f"\n{title}\n")
    print("| model | training images | DiffAugment | standing stats | seed | "
          + " | ".join(KEYS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(KEYS))
    for key in sorted(k for k in rows if keep(k)):
        seeds = rows[key]
        for seed, e in sorted(seeds.items()):
            print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | {seed} | "
                  + " | ".join(f"{e[k]:.3f}" for k in KEYS) + " |")
        if len(seeds) > 1:
            mean = collections.OrderedDict(
                (k, sum(e[k] for e in seeds.values()) / len(seeds)) for k in KEYS)
            print(f"| {key[0]} | {key[1]} | {key[2]} | {key[3]} | **mean** | "
                  + " | ".join(f"**{v:.3f}**" for v in mean.values()) + " |")


def main(folder):
    rows = read(folder)
    table(rows, "Standing statistics (64 batches of 64) against BatchNorm's moving "
          "statistics, full training data:", lambda k: k[1] == 50000 and k[2] == "off")
    table(rows, "DiffAugment against none (on: color, translation, cutout; tc: translation, "
          "cutout), by training-set size, without standing statistics:",
          lambda k: k[3] == 0 and k[0] != "ign")  # IGN has no DiffAugment


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/sampling/eval")
