"""Whether O-GAN's encoder gains from BatchNorm statistics of images: the
reconstruction label agreement and the logistic probe of E(x) on the validation
images (Fashion-MNIST train[50000:], docs/sampling/run.sh's split) with E's
moving statistics, and with standing statistics over 64 batches of 64 training
images (train[:50000]).

    PYTHONPATH=. python docs/sampling/ogan_encoder_stats.py runs/sampling/ogan_best_seed0
"""

import os
import sys

import keras

from ogan_ign import data, evaluation, standing


def scores(model, train, val, classifier):
    rec = evaluation.batched(model.reconstruct, val[0], 500)
    agreement = evaluation.label_agreement(classifier, val[0], rec)
    probe = evaluation.encoder_probe(model.encode, train, val, 10000, "logistic")
    return f"recon agreement {agreement:.4f}, probe E(x) {probe:.4f}"


def main(run_dirs):
    if not run_dirs:
        sys.exit(__doc__)
    spec = data.resolve("fashion_mnist", image_size=32, channels=1)
    everything = data.load_arrays(spec)
    train, val = evaluation.hold_out(everything, 10000)
    classifier, _ = evaluation.load_or_train_classifier(
        evaluation.default_classifier_path(spec), everything, val)
    for run_dir in run_dirs:
        model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
        print(f"{run_dir}, moving statistics: {scores(model, train, val, classifier)}")
        with standing.standing_statistics(model.encoder,
                                          standing.image_batches(train[0], 64, 0), 64):
            print(f"{run_dir}, E with statistics of images: "
                  f"{scores(model, train, val, classifier)}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
