"""What standing statistics do to IGN's projection of real images: the mean
RMS and L1 distance between f(x) and x for validation images x (Fashion-MNIST
train[50000:55000], docs/sampling/run.sh's split), with f's BatchNorm moving
statistics, with standing statistics over 64 batches of its noise (what the
sampler gets), and over 64 batches of training images (train[:50000], what
`--standing_stats 64` sets in the exported f, which projects).

    PYTHONPATH=. python docs/sampling/ign_projection.py runs/sampling/ign_50000_off_seed0 ...
"""

import os
import sys

import keras
import numpy as np

from ogan_ign import data, evaluation, standing


def distances(model, x):
    projected = evaluation.batched(model.project, x, 500)
    return evaluation.rms_distance(projected, x), float(np.mean(np.abs(projected - x)))


def main(run_dirs):
    if not run_dirs:
        sys.exit(__doc__)
    images = data.load_arrays(data.resolve("fashion_mnist", image_size=32))[0]
    x, train = images[50000:55000], images[:50000]
    print("| run | statistics | RMS f(x) − x | L1 f(x) − x |\n|---|---|---|---|")
    for run_dir in run_dirs:
        model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
        rms, l1 = distances(model, x)
        print(f"| {run_dir} | moving | {rms:.3f} | {l1:.3f} |")
        with standing.standing_statistics(model.f, standing.model_noise(model, 64, 0), 64):
            rms, l1 = distances(model, x)
        print(f"| {run_dir} | standing, 64 batches of noise | {rms:.3f} | {l1:.3f} |", flush=True)
        with standing.standing_statistics(model.f, standing.image_batches(train, 64, 0), 64):
            rms, l1 = distances(model, x)
        print(f"| {run_dir} | standing, 64 batches of training images | {rms:.3f} | {l1:.3f} |",
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
