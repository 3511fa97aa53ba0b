"""Where coverage is lost: evaluate.py's coverage (Naeem et al. 2020: the share of
real images whose k-NN ball, k = 3, holds a sample) split by the real images' class,
and each class's share of the samples (the classifier's labels), for finished runs
side by side, scored as `evaluate.py --dataset fashion_mnist --reference validation
[--standing_stats N] [--temperature T]` scores them (the same 10,000 samples, the
same 10,000 validation images, the same classifier features).

    PYTHONPATH=. python docs/ign/coverage_by_class.py RUN_DIR[:N[:T]] [...]

RUN_DIR:N samples with standing statistics over N batches of 64 (RUN_DIR alone: the
exported statistics), RUN_DIR:N:T an IGN at temperature T. Prints one markdown
table: per class, the coverage of each run and its samples' share (in brackets).
"""

import os
import sys

import keras
import numpy as np

import ogan_ign  # noqa: F401  (registers the model classes with Keras)
from ogan_ign import data, evaluation, ign
from ogan_ign.evaluation import scores

CLASSES = ("T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "boot")
K, VALIDATION = 3, 10000


def parsed(item):
    """RUN_DIR[:N[:T]] → (run_dir, N or "", T or ""); the run's model.keras must exist."""
    run_dir, batches, temperature = (item.split(":") + ["", ""])[:3]
    if not os.path.exists(os.path.join(run_dir, "model.keras")):
        raise SystemExit(f"{run_dir} holds no model.keras (a finished run)")
    return run_dir, batches, temperature


def covered_and_shares(run, train, real_features, features, classifier):
    """(covered flag per validation image, share of samples per class) of one run."""
    run_dir, batches, temperature = run
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    if temperature:
        if not isinstance(model, ign.IGN):
            raise SystemExit(f"{run_dir}: a temperature is IGN's")
        model.temperature = float(temperature)
    settings = evaluation.ScoreSettings(standing_stats=int(batches or 0), standing_batch=64)
    if settings.standing_stats:
        model = scores.exported(model, settings, train)
    samples = evaluation.generate_samples(model, VALIDATION, settings.seed)
    flags = evaluation.covered(real_features, evaluation.embed(features, samples), K)
    labels = evaluation.predicted_labels(classifier, samples)
    return flags, np.bincount(labels, minlength=len(CLASSES)) / len(labels)


def main(items):
    runs = [parsed(item) for item in items]
    spec = data.resolve("fashion_mnist", split="train", image_size=32, channels=1)
    classifier_path = evaluation.default_classifier_path(spec)
    if not os.path.exists(classifier_path):
        raise SystemExit(f"no classifier at {classifier_path}: run evaluate.py once first")
    train, (x_val, y_val) = evaluation.hold_out(data.load_arrays(spec), VALIDATION)
    classifier = keras.saving.load_model(classifier_path)
    features = evaluation.classifier_features(classifier)
    real_features = evaluation.embed(features, x_val)
    names = [os.path.basename(run_dir.rstrip("/")) + (f" τ {t}" if t else "")
             for run_dir, _, t in runs]
    scored = []
    for name, run in zip(names, runs):  # ~40 s a run: say which, on stderr (the table is stdout)
        print(f"{name}: 10,000 samples, their coverage and classes ...", file=sys.stderr,
              flush=True)
        scored.append(covered_and_shares(run, train, real_features, features, classifier))
    runs = scored
    print("| class | validation images | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(items))
    for c, name in enumerate(CLASSES):
        mine = y_val == c
        cells = [f"{covered[mine].mean():.3f} ({share[c]:.3f})" for covered, share in runs]
        print(f"| {name} | {mine.sum()} | " + " | ".join(cells) + " |")
    cells = [f"**{covered.mean():.3f}**" for covered, _ in runs]
    print(f"| all | {len(y_val)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
