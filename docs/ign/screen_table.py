"""Prints the table of issue 24's rows (docs/ign/screen.sh) from evaluate.py's JSON
files: FID and its ratio to the single-loss GAN of the same width, steps and
seed, the temperature τ the samples were drawn at (IGN rows; — for the GAN and for
scores written before evaluate.py recorded it), the sample metrics of f(z) and of
f(f(z)), reconstruction and idempotence. Nothing is computed here beyond the ratios
and the formatting.

    python docs/ign/screen_table.py [runs/sampling/eval24]
"""

import glob
import json
import os
import re
import sys

KEYS = ("precision", "recall", "coverage", "effective_classes", "ff_fid", "ff_recall",
        "recon_l1", "idem_gap")


def gan_of(name):
    """The GAN row of the same width, steps and seed."""
    match = re.search(r"_(w64_\d+)_seed(\d+)", name)
    if match:
        return f"gan_{match.group(1)}_seed{match.group(2)}"
    seed = re.search(r"_seed(\d+)", name).group(1)
    return f"gan_50000_off_seed{seed}"


def main(folder):
    rows = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            rows[os.path.basename(path)[:-5]] = json.load(f)["evaluation"]
    print("| run | steps | τ | FID | ÷ GAN | " + " | ".join(KEYS) + " |")
    print("|---|---|---|---|---|" + "---|" * len(KEYS))
    for name, e in sorted(rows.items()):
        gan = rows.get(gan_of(name))
        ratio = f"{e['fid'] / gan['fid']:.2f}" if gan else "—"
        cells = [f"{e[k]:.3f}" if k in e else "—" for k in KEYS]
        print(f"| {name} | {e.get('steps', '—')} | {e.get('temperature', '—')} | "
              f"{e['fid']:.2f} | {ratio} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/sampling/eval24")
