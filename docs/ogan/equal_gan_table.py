"""Prints the table of issue 26's rows (docs/ogan/equal_gan.sh) from evaluate.py's
JSON files: FID and its ratio to the single-loss GAN of the same seed and steps,
precision, recall, the three logistic probes, reconstruction class agreement.
Nothing is computed here beyond the ratios and the formatting.

    python docs/ogan/equal_gan_table.py [runs/sampling/eval26]
"""

import glob
import json
import os
import re
import sys

KEYS = ("fid", "precision", "recall", "probe_encoder", "probe_untrained", "probe_pixels",
        "recon_agreement")


def gan_of(name, rows):
    """The GAN row of the same seed and steps: its twin gan_<tag>_* when the pair was
    run by `equal_gan.sh confirm` (same z size and average) or by a stage that varies
    O-GAN's own terms (their tags dropped — _l<λ>, _e<λ_E>, _recon<λ_x>,
    _erecon<λ_xE>, _pool<p>, _real<λ_r> — one twin for every weight), else the plain GAN."""
    twin = "gan_" + re.sub(r"_(l|e|recon|erecon|pool|real)[0-9.]+(?=_)", "",
                           name[len("ogan_"):])
    if name.startswith("ogan_") and twin in rows:
        return twin
    seed = re.search(r"_seed(\d+)$", name).group(1)
    return f"gan_6k_seed{seed}" if "_6k_" in name else f"gan_50000_off_seed{seed}"


def main(folder):
    rows = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            rows[os.path.basename(path)[:-5]] = json.load(f)["evaluation"]
    print("| run | steps | FID | ÷ GAN | " + " | ".join(KEYS[1:]) + " |")
    print("|---|---|---|---|" + "---|" * (len(KEYS) - 1))
    for name, e in sorted(rows.items()):
        gan = rows.get(gan_of(name, rows))
        ratio = f"{e['fid'] / gan['fid']:.2f}" if gan else "—"
        cells = [f"{e[k]:.3f}" if k in e else "—" for k in KEYS[1:]]
        print(f"| {name} | {e.get('steps', '—')} | {e['fid']:.2f} | {ratio} | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/sampling/eval26")
