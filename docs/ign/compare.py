"""Samples of finished IGN runs under both BatchNorm modes, and their class coverage.

    python docs/ign/compare.py RUN_DIR [RUN_DIR ...] --out docs/ign

For each run folder (from train_ign.py) writes <name>_moving_stats.png and
<name>_batch_stats.png (64 samples f(z) from the same noise) and prints the
coverage of 1000 samples under the cached Fashion-MNIST classifier, with f's
BatchNorm using its moving statistics (what `generate` returns) and the batch's.
"""

import argparse
import json
import os

import keras
import numpy as np

from ogan_ign import evaluation, images, ign  # noqa: F401  (ign registers IGN)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--out", default="docs/ign")
    parser.add_argument("--classifier",
                        default="~/.cache/ogan_ign/classifier_fashion_mnist_32px_1c.keras")
    parser.add_argument("--samples", type=int, default=1000)
    args = parser.parse_args()
    classifier = keras.saving.load_model(os.path.expanduser(args.classifier))
    for run in args.runs:
        model = keras.saving.load_model(os.path.join(run, "model.keras"))
        name = os.path.basename(os.path.normpath(run))
        result = {}
        for key, training in (("moving_stats", False), ("batch_stats", True)):
            x = np.asarray(model.generate(args.samples, seed=1, training=training), np.float32)
            images.save_grid(os.path.join(args.out, f"{name}_{key}.png"), x[:64], cols=16)
            coverage = evaluation.class_coverage(classifier, x)
            result[key] = {k: coverage[k] for k in ("classes_present", "max_share",
                                                    "effective_classes", "counts")}
        print(name, json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
