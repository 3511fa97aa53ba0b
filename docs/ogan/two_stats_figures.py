"""The write-up's three O-GAN figures of finished runs, as a --standing_stats export
shows them (two sets of G's BatchNorm statistics: noise for samples, codes of
training images for reconstructions and interpolations), runs side by side.

    PYTHONPATH=. python docs/ogan/two_stats_figures.py docs/ogan/figures/NAME \\
        runs/sampling/ogan_best_6k_seed0 runs/sampling/ogan_best_recon12_6k_seed0

writes NAME_samples.png (64 samples from the same noise), NAME_reconstructions.png
(16 validation images | G(0.9·N(E(x))) pairs, 4 pairs a row) and
NAME_interpolations.png (8 rows: x1, 8 codes on the path, x2; both laid out by
train_ogan.py's own figure functions), one panel per run,
left to right, 8 white pixels apart. Data: docs/sampling/run.sh's split of
Fashion-MNIST (standing statistics on train[:50000], figures of train[50000:]).
"""

import os
import sys

import keras
import numpy as np

from ogan_ign import data, evaluation, images, one_loss, standing

# the figures' layouts is the training script's own: import it from the repository root
# (so the script runs with or without PYTHONPATH=.)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import train_ogan  # noqa: E402

BATCHES = 64        # evaluate.py --standing_stats 64
BATCH = 64          # the runs' batch size
SEED = 0
VALIDATION = 10000
GAP = 8


def figures(run_dir, train, shown):
    model = keras.saving.load_model(f"{run_dir}/model.keras")
    model = standing.exported_copy(model, BATCHES, standing.model_noise(model, BATCH, SEED),
                                   standing.image_batches(train, BATCH, SEED))
    z = model.make_noise(64, SEED, stream=one_loss.METRICS)
    samples = images.table(images.grid(np.asarray(model.generate(z), np.float32), cols=8))
    recon = images.table(train_ogan.reconstruction_table(model, shown[:16]))
    interp = images.table(train_ogan.interpolation_table(model, shown[16:24], shown[24:32]))
    return {"samples": samples, "reconstructions": recon, "interpolations": interp}


def beside(pictures):
    height = max(p.shape[0] for p in pictures)
    gap = np.full((height, GAP), 255, np.uint8)
    padded = [np.pad(p, ((0, height - p.shape[0]), (0, 0)), constant_values=255)
              for p in pictures]
    return np.concatenate(sum(([p, gap] for p in padded), [])[:-1], axis=1)


def main(prefix, run_dirs):
    spec = data.resolve("fashion_mnist", split="train", image_size=32, channels=1)
    train, held_out = evaluation.hold_out(data.load_arrays(spec), VALIDATION)
    per_run = [figures(run_dir, train[0], held_out[0]) for run_dir in run_dirs]
    for kind in per_run[0]:
        path = images.save_png(f"{prefix}_{kind}.png", beside([f[kind] for f in per_run]))
        print(path)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
