"""Every metric that applies to a whole model (an IGN, an O-GAN, a SingleLossGAN
or a bare generator z → x), and the data floor: training images scored as if
they were samples."""

import numpy as np
import tensorflow as tf

from ogan_ign import one_loss
from ogan_ign.evaluation.classifier import class_coverage, label_agreement
from ogan_ign.evaluation.extractors import embed
from ogan_ign.evaluation.metrics import (EvaluationError, batched, encoder_probe,
                                         idempotence_gap, linear_probe, rms_distance,
                                         sample_metrics)
from ogan_ign.evaluation.progress import announced


def evaluation_noise(model, n, seed):
    """The noise samples are drawn from: the model's own (`noise`), else N(0, I)
    of a bare generator's input size; the EVALUATION stream, which no training
    step draws."""
    if isinstance(model, one_loss.OneLossModel):
        return np.asarray(model.make_noise(n, seed, stream=one_loss.EVALUATION))
    generator = sample_function(model)
    return tf.random.stateless_normal((n, generator.inputs[0].shape[-1]),
                                      seed=one_loss.fixed_seed(seed, one_loss.EVALUATION)).numpy()


def sample_function(model):
    """The network that maps noise to samples: a model's `sampler`, or `model`
    itself when it is a bare generator z → x."""
    if isinstance(model, one_loss.OneLossModel):
        return model.sampler
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 2:
        raise EvaluationError(f"{model.name} is neither a ogan_ign model nor a generator z → x "
                              f"(its inputs are {[tuple(i.shape) for i in model.inputs]})")
    return model


def generate_samples(model, n, seed=0, batch_size=500):
    """n samples in [-1, 1] from an IGN (f of its own noise), a SingleLossGAN or
    O-GAN (its generator), or a bare generator z → x (e.g. a saved DCGAN);
    BatchNorm in inference mode."""
    network = sample_function(model)
    return batched(lambda z: network(z, training=False), evaluation_noise(model, n, seed),
                    batch_size)


def evaluate_model(model, feature_model, classifier, test, train=None, num_samples=10000,
                   probe_examples=10000, k=3, kid_subsets=100, kid_subset_size=1000, seed=0,
                   verbose=False):
    """Every metric that applies to `model`, as a flat dict.

    test, train: (images, labels or None) in [-1, 1]. Samples are compared with
      the test images (held out from training) in `feature_model`'s space: fid,
      kid, kid_std, precision, recall. With a classifier (labelled data):
      sample class coverage (classes_present, effective_classes, max_share).
    O-GAN: probe_encoder = linear probe of E(x) (fitted on `probe_examples`
      training images, scored on the test images); reconstruction = G(0.9·N(E(x)))
      of the test images: recon_agreement (same classifier label as x), recon_rms.
    IGN: reconstruction f(x) of the test images (recon_agreement, recon_rms) and
      the idempotence gaps RMS(f(f(y)), f(y)) for y = its noise z (idem_gap, the
      generated samples' gap) and y = test images (idem_gap_data).
    verbose: say what is computed and how long each part took.
    """
    x_test, y_test = test
    with announced(f"generating {num_samples} samples", verbose):
        samples = generate_samples(model, num_samples, seed)
    with announced(f"FID, KID, precision / recall of the samples against {len(x_test)} "
                   "test images" + (", class coverage" if classifier is not None else ""),
                   verbose):
        metrics = _set_metrics(feature_model, classifier, x_test, samples, k, kid_subsets,
                               kid_subset_size, seed)

    encode = getattr(model, "encode", None)
    if encode and train is not None and train[1] is not None and y_test is not None \
            and probe_examples:
        with announced(f"linear probe of E(x) on {min(probe_examples, len(train[0]))} "
                       "training images", verbose):
            metrics["probe_encoder"] = encoder_probe(encode, train, test, probe_examples)
    project = getattr(model, "project", None)
    reconstruct = getattr(model, "reconstruct", None)
    with announced("reconstructions and idempotence gaps of the test images", verbose
                   and (project is not None or reconstruct is not None)):
        if project:
            # The samples are f(z), so RMS(f(samples), samples) is the gap on z.
            metrics["idem_gap"] = rms_distance(batched(project, samples, 500), samples)
            metrics["idem_gap_data"] = idempotence_gap(project, x_test)
        if reconstruct is not None:
            x_rec = batched(reconstruct, x_test, 500)
            metrics["recon_rms"] = rms_distance(x_rec, x_test)
            if classifier is not None:
                metrics["recon_agreement"] = label_agreement(classifier, x_test, x_rec)
    return metrics


def _set_metrics(feature_model, classifier, x_real, x_other, k, kid_subsets, kid_subset_size,
                 seed):
    """FID, KID, precision / recall and class coverage of `x_other` against the
    real images: the part the model rows and the data floor share."""
    metrics = {"num_samples": int(len(x_other)), "num_real": int(len(x_real))}
    metrics.update(sample_metrics(embed(feature_model, x_real), embed(feature_model, x_other),
                                  k, kid_subsets, kid_subset_size, seed))
    if classifier is not None:
        coverage = class_coverage(classifier, x_other)
        metrics.update(classes_present=coverage["classes_present"],
                       effective_classes=coverage["effective_classes"],
                       max_share=coverage["max_share"])
    return metrics


def evaluate_data(feature_model, classifier, test, train, probe_examples=10000, k=3,
                  kid_subsets=100, kid_subset_size=1000, seed=0):
    """The floor: training images scored as if they were samples, against the
    test images, the same way as `evaluate_model`; plus the linear probe of raw
    pixels, the reference for O-GAN's encoder probe."""
    x_test, y_test = test
    x_train, y_train = train
    metrics = _set_metrics(feature_model, classifier, x_test, x_train, k, kid_subsets,
                           kid_subset_size, seed)
    if y_train is not None and y_test is not None and probe_examples:
        metrics["probe_pixels"] = linear_probe(x_train[:probe_examples], y_train[:probe_examples],
                                               x_test, y_test)
    return metrics
