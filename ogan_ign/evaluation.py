"""Evaluation of generated samples.

Class coverage: a small convnet classifier trained on the labelled training
split (e.g. Fashion-MNIST) labels generated samples; how many classes appear,
and how large the biggest class is, measures mode collapse — the failure of
GANs and of IGN (arXiv 2311.01462, its sec. 6 "mode collapse") that a sample
grid hides.
"""

import os

import keras
import numpy as np
from keras import layers


def build_classifier(image_size=28, channels=1, num_classes=10, name="classifier"):
    """Two conv blocks and a dense head: ~91 % on Fashion-MNIST after 3 epochs."""
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = x_in
    for i, w in enumerate((32, 64)):
        h = layers.Conv2D(w, 3, padding="same", activation="relu", name=f"conv{i}a")(h)
        h = layers.Conv2D(w, 3, padding="same", activation="relu", name=f"conv{i}b")(h)
        h = layers.MaxPooling2D(2, name=f"pool{i}")(h)
    h = layers.Flatten(name="flatten")(h)
    h = layers.Dropout(0.3, name="dropout")(h)
    h = layers.Dense(128, activation="relu", name="dense")(h)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(h)
    return keras.Model(x_in, logits, name=name)


def train_classifier(images, labels, test=None, epochs=3, batch_size=128, seed=0,
                     num_classes=10, verbose=0):
    """Trains `build_classifier` on images in [-1, 1]; returns (model, test accuracy
    or None). test: optional (images, labels)."""
    keras.utils.set_random_seed(seed)
    images = np.asarray(images, np.float32)
    model = build_classifier(images.shape[1], images.shape[3], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(images, np.asarray(labels), batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=verbose)
    accuracy = None
    if test is not None:
        accuracy = float(model.evaluate(np.asarray(test[0], np.float32), np.asarray(test[1]),
                                        batch_size=512, verbose=0)[1])
    return model, accuracy


def load_or_train_classifier(path, train, test=None, **kwargs):
    """The classifier cached at `path` (a .keras file), trained on `train` =
    (images, labels) and saved there if absent. Returns (model, test accuracy or
    None); the accuracy is measured on `test` whenever it is given."""
    if os.path.exists(path):
        model = keras.saving.load_model(path)
        accuracy = None
        if test is not None:
            model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                          metrics=["accuracy"])
            accuracy = float(model.evaluate(np.asarray(test[0], np.float32),
                                            np.asarray(test[1]), batch_size=512, verbose=0)[1])
        return model, accuracy
    model, accuracy = train_classifier(*train, test=test, **kwargs)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.keras"  # written whole, then renamed: no half-saved cache
    model.save(tmp)
    os.replace(tmp, path)
    return model, accuracy


def class_coverage(classifier, images, num_classes=10, min_share=0.01, batch_size=256):
    """How many classes the classifier finds among generated images.

    A class counts as present when at least `min_share` of the images (and at
    least one) fall in it, so that a few misclassified blobs do not make a
    collapsed generator look diverse. Returns a dict: counts (per class),
    classes_present, max_share (share of the largest class) and
    effective_classes = exp(entropy of the class shares), which is
    num_classes for a uniform spread and 1 for a single class.
    """
    logits = classifier.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    predicted = np.argmax(logits, axis=-1)
    counts = np.bincount(predicted, minlength=num_classes)
    shares = counts / max(len(predicted), 1)
    threshold = max(1, int(np.ceil(min_share * len(predicted))))
    nonzero = shares[shares > 0]
    return {
        "counts": counts.tolist(),
        "classes_present": int(np.sum(counts >= threshold)),
        "max_share": float(shares.max()),
        "effective_classes": float(np.exp(-np.sum(nonzero * np.log(nonzero)))),
    }


def linear_probe(train_features, train_labels, test_features, test_labels, l2=1e-2):
    """Test accuracy of a linear classifier fitted on frozen features.

    Closed-form ridge regression onto one-hot labels (a least-squares linear
    classifier): deterministic, no training loop, so features from two sources —
    e.g. O-GAN's E(x) (arXiv 1903.01931) and raw pixels — compare on equal terms.
    Each feature is standardised with the training set's mean and std; `l2` is
    the ridge weight per training example.
    """
    def flat(a):
        a = np.asarray(a, np.float64)
        return a.reshape(len(a), -1)

    x_train, x_test = flat(train_features), flat(test_features)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-8
    x_train = np.concatenate([(x_train - mean) / std, np.ones((len(x_train), 1))], 1)
    x_test = np.concatenate([(x_test - mean) / std, np.ones((len(x_test), 1))], 1)
    train_labels = np.asarray(train_labels, np.int64)
    targets = np.eye(int(train_labels.max()) + 1)[train_labels]
    gram = x_train.T @ x_train + l2 * len(x_train) * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ targets)
    predicted = np.argmax(x_test @ weights, axis=1)
    return float(np.mean(predicted == np.asarray(test_labels)))
