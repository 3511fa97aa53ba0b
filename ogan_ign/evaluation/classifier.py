"""The evaluation classifier: a small convnet trained once on a dataset's
labelled training split and cached. It labels generated samples (class coverage:
how many classes appear, and how large the biggest is, measures mode collapse,
the failure of GANs and of IGN, arXiv 2311.01462 sec. 6, that a sample grid
hides), compares the labels of images and their reconstructions, and gives the
feature space of the project's FIDs (`extractors.classifier_features`).
"""

import functools
import os
import time

import keras
import numpy as np
from keras import layers

from ogan_ign import atomic, data
from ogan_ign.evaluation.progress import announced


def build_classifier(image_size=28, channels=1, num_classes=10, name="classifier"):
    """Two conv blocks and a dense head (its accuracy: docs/RESULTS.md)."""
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


def train_classifier(train, test=None, epochs=3, batch_size=128, seed=0, num_classes=10,
                     verbose=1):
    """Trains `build_classifier` on train = (images in [-1, 1], labels); returns
    (model, test accuracy or None). test: optional (images, labels). verbose:
    Keras's (1: a progress bar per epoch, 0: silent)."""
    keras.utils.set_random_seed(seed)
    images, labels = np.asarray(train[0], np.float32), train[1]
    model = build_classifier(images.shape[1], images.shape[3], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(images, np.asarray(labels), batch_size=batch_size, epochs=epochs,
              shuffle=True, verbose=verbose)
    return model, None if test is None else _accuracy(model, test)


def _accuracy(model, test):
    """A compiled classifier's accuracy on test = (images, labels)."""
    return float(model.evaluate(np.asarray(test[0], np.float32), np.asarray(test[1]),
                                batch_size=512, verbose=0)[1])


def load_or_train_classifier(path, train, test=None, verbose=1, **kwargs):
    """The classifier cached at `path` (a .keras file), trained on `train` =
    (images, labels) and saved there if absent. Returns (model, test accuracy or
    None); the accuracy is measured on `test` whenever it is given. With
    `verbose`, says which of the two it does, shows Keras's progress bar while
    training and the time taken."""
    start = time.perf_counter()
    if os.path.exists(path):
        tested = "" if test is None else f" and testing it on {len(test[0])} images"
        with announced(f"loading the evaluation classifier from {path}{tested}", verbose):
            model = keras.saving.load_model(path)
            accuracy = None
            if test is not None:
                model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                              metrics=["accuracy"])
                accuracy = _accuracy(model, test)
        return model, accuracy
    epochs = kwargs.get("epochs", 3)
    if verbose:
        print(f"training the evaluation classifier once ({epochs} epochs on {len(train[0])} "
              f"images), cached at {path}", flush=True)
    model, accuracy = train_classifier(train, test=test, verbose=verbose, **kwargs)
    with atomic.replacing(path) as tmp:  # no half-saved cache, ever
        model.save(tmp)
    if verbose:
        shown = "" if accuracy is None else f", test accuracy {accuracy:.3f}"
        print(f"evaluation classifier trained in {time.perf_counter() - start:.0f} s{shown}",
              flush=True)
    return model, accuracy


def default_classifier_path(spec):
    """Where the classifier of a dataset spec is cached (shared with train_ign.py):
    ~/.cache/ogan_ign/classifier_<dataset>_<size>px_<channels>c.keras."""
    return os.path.expanduser(os.path.join(
        "~/.cache/ogan_ign", f"classifier_{spec.name}_{spec.image_size}px_{spec.channels}c.keras"))


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


def predicted_labels(classifier, images, batch_size=500):
    logits = classifier.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return np.argmax(logits, axis=-1)


def label_agreement(classifier, x, x_reconstructed, batch_size=500):
    """Share of images whose reconstruction the classifier gives the same label:
    does x → E → G (O-GAN) or x → f (IGN) keep what the garment is?"""
    return float(np.mean(predicted_labels(classifier, x, batch_size)
                         == predicted_labels(classifier, x_reconstructed, batch_size)))


def labelled_splits(dataset, data_dir=None, image_size=32, channels=None, train_limit=None,
                    test_limit=None, *, catalog=None):
    """(train, test) as (images, labels) arrays for labelled data, else None.
    `catalog` (a data.Catalog): the caller's, when it reads the same data again."""
    resolve = functools.partial((catalog or data.Catalog()).resolve, dataset,
                                data_dir=data_dir, image_size=image_size, channels=channels)
    return _labelled_arrays(resolve, train_limit, test_limit)[1]


def _labelled_arrays(resolve, train_limit=None, test_limit=None):
    """(the training split's DataSpec, (train, test) arrays or None when unlabelled);
    `resolve(split=…)` returns a split's DataSpec. Each split is resolved once."""
    train_spec = resolve(split="train")
    if not train_spec.labelled:
        return train_spec, None
    return train_spec, (data.load_arrays(train_spec, limit=train_limit),
                        data.load_arrays(resolve(split="test"), limit=test_limit))


def run_classifier(config, path=None, catalog=None):
    """(classifier, test accuracy) for a run's labelled data, trained once and
    cached at `path` (default `default_classifier_path`); (None, None) unlabelled.
    `catalog` (a data.Catalog): the caller's, when it reads the same data again
    (the training scripts pass the one their run trains from)."""
    resolve = functools.partial((catalog or data.Catalog()).resolve, config.dataset,
                                data_dir=config.data_dir, image_size=config.image_size,
                                channels=config.channels)
    with announced(f"reading {config.dataset} for the evaluation classifier"):
        spec, splits = _labelled_arrays(resolve)
    if splits is None:
        return None, None
    return load_or_train_classifier(path or default_classifier_path(spec), *splits)
