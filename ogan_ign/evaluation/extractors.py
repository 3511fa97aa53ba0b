"""Feature spaces the sample metrics are computed in: the penultimate layer of
the project's classifier, or InceptionV3 given as a weights file."""

import os

import keras
import numpy as np
from keras import layers

from ogan_ign.evaluation.metrics import EvaluationError, feature_matrix

FEATURE_LAYER = "dense"  # build_classifier's penultimate layer: 128 ReLU units
INCEPTION_SIZE = 299


def classifier_features(classifier, layer=FEATURE_LAYER):
    """x → the classifier's penultimate activations, the feature space of the
    project's FIDs on (Fashion-)MNIST. These distances rank models trained on the
    same data; they are not comparable with Inception FIDs in papers."""
    return keras.Model(classifier.inputs, classifier.get_layer(layer).output,
                       name=f"{classifier.name}_features")


def inception_features(weights_path, image_size, channels):
    """x in [-1, 1] (image_size², channels) → InceptionV3's 2048-d pool features.

    The weights cannot be downloaded here, so `weights_path` must name a Keras
    InceptionV3 "notop" weights file. Images are resized to 299 px and grey is
    repeated to RGB; [-1, 1] is already InceptionV3's input range. Note that
    the standard FID uses the TF1 graph's weights (pytorch-fid / TTUR); Keras's
    ImageNet weights give close but not identical values.
    """
    if not weights_path:
        raise EvaluationError(
            "InceptionV3 weights cannot be downloaded here (no internet): pass the path of "
            "a Keras inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5, or use the "
            "classifier features")
    if not os.path.isfile(weights_path):
        raise EvaluationError(f"InceptionV3 weights file not found: {weights_path}")
    inception = keras.applications.InceptionV3(
        include_top=False, weights=weights_path, pooling="avg",
        input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    x_in = keras.Input((image_size, image_size, channels), name="x")
    h = layers.Resizing(INCEPTION_SIZE, INCEPTION_SIZE, interpolation="bilinear")(x_in)
    if channels == 1:
        h = layers.Concatenate()([h, h, h])
    return keras.Model(x_in, inception(h), name="inception_features")


def embed(feature_model, images, batch_size=500):
    """Features of images in [-1, 1], float64 (N, d)."""
    out = feature_model.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0)
    return feature_matrix(out)
