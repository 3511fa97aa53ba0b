"""Is the linear probe fair to O-GAN's encoder? One probe, several features.

    PYTHONPATH=. python docs/ogan/probe_sweep.py RUN_DIR [RUN_DIR ...]

For each O-GAN run folder (its model.keras) this fits `evaluation.linear_probe`
(closed-form ridge on one-hot labels, features standardised) on the first 10,000
and on all 60,000 Fashion-MNIST training images, scores it on the 10,000 test
images, for every ridge weight in L2S, and prints one markdown table with rows:

- pixels: the 32×32 images themselves (1,024 dims);
- E(x): what `evaluate.py` probes (z_dim dims, BatchNorm in inference mode);
- N(E(x)): E(x) standardised per sample, the code `reconstruct` decodes;
- E(x) untrained: the same encoder with fresh weights (`keras.models.clone_model`
  re-initialises them, seed 0). The control: a random conv net with z_dim
  outputs is a linear feature too, so what training adds is E(x) minus this row,
  not E(x) minus pixels.
"""

import os
import sys

import keras
import numpy as np

from ogan_ign import data, evaluation

L2S = (1e-4, 1e-3, 1e-2, 1e-1)
TRAIN_SIZES = (10000, 60000)


def in_batches(fn, x, batch_size=500):
    return np.concatenate([np.asarray(fn(x[i:i + batch_size]))
                           for i in range(0, len(x), batch_size)])


def feature_sets(model, x):
    keras.utils.set_random_seed(0)
    fresh = keras.models.clone_model(model.encoder)
    return {
        "E(x)": in_batches(model.encode, x),
        "N(E(x))": in_batches(model.latent, x),
        "E(x) untrained": in_batches(lambda b: fresh(b, training=False), x),
    }


def main(run_dirs):
    if not run_dirs:
        sys.exit(__doc__)
    spec = lambda split: data.resolve("fashion_mnist", split=split, image_size=32)
    x_train, y_train = data.load_arrays(spec("train"))
    x_test, y_test = data.load_arrays(spec("test"), limit=10000)
    for run_dir in run_dirs:
        model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
        train, test = feature_sets(model, x_train), feature_sets(model, x_test)
        rows = [("pixels", x_train, x_test)] + [(k, train[k], test[k]) for k in train]
        print(f"\n{run_dir} (z_dim {model.z_dim})\n")
        print("| features | train images | " + " | ".join(f"l2 {l2:g}" for l2 in L2S) + " |")
        print("|---|---|" + "---|" * len(L2S))
        for name, a, b in rows:
            for n in TRAIN_SIZES:
                accuracies = [evaluation.linear_probe(a[:n], y_train[:n], b, y_test, l2=l2)
                              for l2 in L2S]
                print(f"| {name} | {n} | " + " | ".join(f"{v:.3f}" for v in accuracies) + " |",
                      flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
