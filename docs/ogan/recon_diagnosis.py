"""Why O-GAN's reconstructions G(0.9·N(E(x))) keep the class of x only ~3/4 of the
time (issue 26): two questions about a finished run, on 5,000 validation images
(train[50000:] of Fashion-MNIST, as `evaluate.py --reference validation`) and the
project's cached classifier.

1. Is it BatchNorm's statistics? Class agreement of x and its reconstruction with
   E and G each in inference mode (moving statistics), in training mode (the
   statistics of each batch of 500), or with standing statistics (G on its noise,
   E on training images or on generated ones; G on the codes of training images).
2. Is it real images against generated ones? The same agreement for x = G(z)
   (z fresh noise), beside ρ(z, E(G(z))) and the agreement of a reconstruction
   with its own reconstruction.

    PYTHONPATH=. python docs/ogan/recon_diagnosis.py runs/sampling/ogan_best_seed0 [...]
"""

import os
import sys

import keras
import numpy as np

import ogan_ign  # noqa: F401  (registers the model classes with Keras)
from ogan_ign import data, evaluation, standing
from ogan_ign.evaluation import classifier as classifiers

IMAGES, BATCH, STANDING_BATCHES = 5000, 500, 64
CLASSIFIER = "~/.cache/ogan_ign/classifier_fashion_mnist_32px_1c.keras"


def reconstruct(model, x, encoder_training=False, generator_training=False):
    """model.reconstruct(x), G(recon_scale·N(E(x))), in batches, with E and G each
    in the mode asked."""
    def decode(x_batch):
        z = model.latent(x_batch, training=encoder_training)
        return model.generator(model.recon_scale * z, training=generator_training)
    return evaluation.batched(decode, x, BATCH)


def statistics_rows(model, x, train, agree):
    """Question 1: {how the statistics were chosen: class agreement}. Every row
    starts from the run's own statistics (a training-mode call moves them)."""
    nets = (model.encoder, model.generator)
    saved = [[v.numpy() for v in net.non_trainable_variables] for net in nets]

    def reset():
        for net, values in zip(nets, saved):
            for v, value in zip(net.non_trainable_variables, values):
                v.assign(value)

    rows = {}
    for name, modes in (("moving E, moving G", (False, False)),
                        ("batch E, moving G", (True, False)),
                        ("moving E, batch G", (False, True)),
                        ("batch E, batch G", (True, True))):
        reset()
        rows[name] = agree(x, reconstruct(model, x, *modes))
    generated = (lambda k: model.generator(model.make_noise(64, 0, stream=1000 + k),
                                           training=False))
    for name, encoder_feed in (("moving E, standing G", None),
                               ("standing E (images), standing G",
                                standing.image_batches(train, 64, seed=0)),
                               ("standing E (generated), standing G", generated)):
        reset()
        if encoder_feed is not None:  # E's first: "generated" reads G's moving statistics
            standing.set_standing_statistics(model.encoder, encoder_feed, STANDING_BATCHES)
        standing.set_standing_statistics(
            model.generator, standing.model_noise(model, 64, seed=0), STANDING_BATCHES)
        rows[name] = agree(x, reconstruct(model, x))
    # G's statistics measured on what reconstruction feeds it: the codes
    # recon_scale·N(E(x)) of training images (E with its moving statistics).
    reset()
    images = standing.image_batches(train, 64, seed=0)
    standing.set_standing_statistics(
        model.generator, lambda k: model.recon_scale * model.latent(images(k)),
        STANDING_BATCHES)
    rows["moving E, G standing on codes of images"] = agree(x, reconstruct(model, x))
    reset()
    return rows


def cycle_rows(model, agree):
    """Question 2: agreement of G(z) with its reconstruction, ρ, and of that
    reconstruction with its own."""
    z = np.asarray(model.make_noise(IMAGES, 0, stream=7), np.float32)
    fakes = evaluation.batched(model.generate, z, BATCH)
    once = reconstruct(model, fakes)
    rho = float(np.mean([model.latent_correlation(z[i:i + BATCH])
                         for i in range(0, IMAGES, BATCH)]))  # equal batches: the mean
    return {"generated: G(z) vs its reconstruction": agree(fakes, once),
            "ρ(z, E(G(z))), inference mode": rho,
            "reconstruction vs its reconstruction": agree(once, reconstruct(model, once))}


def main(run_dirs):
    spec = data.resolve("fashion_mnist", split="train", image_size=32, channels=1)
    train, validation = evaluation.hold_out(data.load_arrays(spec), 10000)
    x = validation[0][:IMAGES]
    classifier = keras.saving.load_model(os.path.expanduser(CLASSIFIER))

    def agree(a, b):
        return classifiers.label_agreement(classifier, a, b)

    for run_dir in run_dirs:
        model = keras.saving.load_model(f"{run_dir}/model.keras")
        print(run_dir)
        for name, value in {**statistics_rows(model, x, train[0], agree),
                            **cycle_rows(model, agree)}.items():
            print(f"  {name:40s} {value:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
