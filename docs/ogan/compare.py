"""Sample quality of the Fashion-MNIST runs of docs/ogan/RESULTS.md, on one scale.

No Inception weights can be fetched here, so the distance is a Fréchet distance
(the FID formula, arXiv 1706.08500) in the 128-d penultimate features of the
Fashion-MNIST classifier of `ogan_ign.evaluation`, between 5,000 samples and
5,000 test images; plus that classifier's class coverage of the samples. The
numbers rank runs against each other; they are not comparable to published FIDs.
`evaluate.py` is the project's full evaluation (10,000 samples, KID, precision /
recall, its own cached classifier); this quick one produced RESULTS.md's FD column.

    PYTHONPATH=. python docs/ogan/compare.py runs/ogan/model.keras runs/dcgan/generator.keras
"""

import os
import sys

import keras
import tensorflow as tf

from ogan_ign import data, evaluation
from ogan_ign.ogan import OGAN

N = 5000


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
    features = evaluation.classifier_features(classifier)
    embed = lambda x: evaluation.embed(features, x)
    frechet = evaluation.frechet_distance
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
