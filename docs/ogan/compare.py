"""Sample quality of the Fashion-MNIST runs of docs/ogan/RESULTS.md, on one scale.

No Inception weights can be fetched here, so the distance is a Fréchet distance
(the FID formula, arXiv 1706.08500) in the 128-d penultimate features of the
Fashion-MNIST classifier of `ogan_ign.evaluation`, between 5,000 samples and
5,000 test images; plus that classifier's class coverage of the samples. The
numbers rank runs against each other; they are not comparable to published FIDs.

    PYTHONPATH=. python docs/ogan/compare.py runs/ogan/model.keras runs/dcgan/generator.keras
"""

import os
import sys

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import data, evaluation
from ogan_ign.ogan import OGAN

N = 5000


def frechet(a, b):
    """‖μa − μb‖² + tr(Σa + Σb − 2(Σa Σb)^½), with tr((Σa Σb)^½) from the
    eigenvalues of Σa^½ Σb Σa^½ (symmetric, so no general matrix square root)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
                 - 2 * np.sum(np.sqrt(np.clip(middle, 0, None))))


def generator_of(path):
    model = keras.saving.load_model(path)
    return model.generator if isinstance(model, OGAN) else model


def main(paths):
    spec = data.resolve("fashion_mnist", image_size=32)
    test_spec = data.resolve("fashion_mnist", image_size=32, split="test")
    test = data.load_arrays(test_spec, limit=N)
    classifier, accuracy = evaluation.load_or_train_classifier(
        os.path.join(os.environ.get("TMPDIR", "/tmp"), "ogan_fmnist32_classifier.keras"),
        train=data.load_arrays(spec, limit=20000), test=test, epochs=2)
    features = keras.Model(classifier.inputs, classifier.get_layer("dense").output)
    embed = lambda x: features.predict(x, batch_size=500, verbose=0).astype(np.float64)
    real = embed(test[0])
    print(f"classifier test accuracy {accuracy:.3f}; real-vs-real(train) FD "
          f"{frechet(embed(data.load_arrays(spec, limit=N)[0]), real):.2f}")
    for path in paths:
        generator = generator_of(path)
        z = tf.random.stateless_normal((N, generator.input_shape[-1]), seed=[0, 1])
        samples = generator.predict(z, batch_size=500, verbose=0)
        coverage = evaluation.class_coverage(classifier, samples)
        print(f"{path}: FD {frechet(embed(samples), real):.2f}  "
              f"effective classes {coverage['effective_classes']:.2f}  "
              f"max share {coverage['max_share']:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
