"""Is f(f(z)) behind f(z) because of the outer f's BatchNorm statistics? (issue 24)

In training the outer f of L_idem / L_tight normalises a batch of samples f(z) by
that batch's statistics; an export with --standing_stats gives f the statistics
of training images (f projects data) and its sampling copy those of noise. This
scores, on the validation split, f(z) (the export's sampler) and f(f(z)) with the
outer f holding the statistics of: training images (the export, as evaluate.py
scores ff_*), noise (the sampling copy applied twice), and batches of samples f(z)
(what the outer f saw in training); 10,000 samples, the classifier feature space.
Then mean |f(x) − x| of the held-out images under each of those sets.

    PYTHONPATH=. python docs/ign/ff_diagnosis.py runs/sampling/ign_control0.8_rec40_seed0
"""

import json
import sys

import keras
import numpy as np

from ogan_ign import data, evaluation, standing
from ogan_ign.evaluation import extractors, metrics, scores
from ogan_ign.evaluation.metrics import batched

BATCHES, BATCH, SEED, N, VALIDATION = 64, 64, 0, 10000, 10000


def main(run_dir):
    spec = data.resolve("fashion_mnist", split="train", image_size=32, channels=1)
    train, held_out = evaluation.hold_out(data.load_arrays(spec), VALIDATION)
    classifier = keras.saving.load_model(evaluation.default_classifier_path(spec))
    features = extractors.classifier_features(classifier)
    real = extractors.embed(features, held_out[0])
    radii = metrics.knn_radii(real)
    model = keras.saving.load_model(f"{run_dir}/model.keras")
    model = standing.exported_copy(model, BATCHES, standing.model_noise(model, BATCH, SEED),
                                   standing.image_batches(train[0], BATCH, SEED))
    samples = scores.generate_samples(model, N, seed=SEED)
    on_samples = standing.network_copy(model.f)
    make_noise = standing.model_noise(model, BATCH, SEED)
    standing.set_standing_statistics(
        on_samples, lambda k: model.sampler(make_noise(k), training=False), BATCHES)
    outer = {"data (the export)": model.f, "noise (f_sampling twice)": model.f_sampling,
             "samples f(z) (as in training)": on_samples}
    rows = {"f(z)": samples}
    rows.update({f"f(f(z)), outer f on {name}": batched(lambda y, net=net: net(
        y, training=False), samples) for name, net in outer.items()})
    out = {}
    for name, images in rows.items():
        fake = extractors.embed(features, np.asarray(images, np.float32))
        precision, recall = metrics.precision_recall(real, fake, real_radii=radii)
        out[name] = {"fid": metrics.frechet_distance(real, fake), "precision": precision,
                     "recall": recall}
        print(f"{name:45s} FID {out[name]['fid']:.2f}  precision {precision:.3f}  "
              f"recall {recall:.3f}", flush=True)
    # f as a projector of real images under each set: held-out reconstruction.
    x = held_out[0]
    for name, net in outer.items():
        f_x = batched(lambda y, net=net: net(y, training=False), x)
        l1 = float(np.mean(np.abs(f_x - x)))
        out[f"recon_l1, f on {name}"] = l1
        print(f"recon_l1 of held-out images, f on {name:32s} {l1:.4f}", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
