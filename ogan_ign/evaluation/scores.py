"""Every metric that applies to a whole model (an IGN, an O-GAN, a SingleLossGAN
or a bare generator z → x), and the data floor: training images scored as if
they were samples."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from ogan_ign import one_loss, standing
from ogan_ign.settings import hparam
from ogan_ign.evaluation.classifier import class_coverage, label_agreement
from ogan_ign.evaluation.extractors import embed
from ogan_ign.evaluation.metrics import (PROBES, EvaluationError, batched, encoder_probe,
                                         idempotence_gap, pixel_probe, rms_distance,
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


def generate_samples(model, n, seed=0, batch_size=500, standing_stats=0,
                     standing_batch=standing.BATCH_SIZE):
    """n samples in [-1, 1] from an IGN (f of its own noise), a SingleLossGAN or
    O-GAN (its generator), or a bare generator z → x (e.g. a saved DCGAN);
    BatchNorm in inference mode, with standing statistics over `standing_stats`
    batches of `standing_batch` noise draws (seeded by `seed`) when > 0."""
    network = sample_function(model)
    if isinstance(model, one_loss.OneLossModel):
        make_noise = standing.model_noise(model, standing_batch, seed)
    else:
        make_noise = standing.normal_noise(network.inputs[0].shape[-1], standing_batch, seed)
    with standing.standing_statistics(network, make_noise, standing_stats):
        return batched(lambda z: network(z, training=False), evaluation_noise(model, n, seed),
                       batch_size)


def exported(model, settings, train):
    """`model` as a training run with --standing_stats exports it
    (`standing.exported_copy`): standing statistics of noise draws (seeded by
    settings.seed) for its sampler and, for IGN's f, of the training images (for
    O-GAN's reconstructing G, of their codes)."""
    if train is not None:
        make_images = standing.image_batches(train[0], settings.standing_batch, settings.seed)
    else:
        def make_images(k):
            raise EvaluationError(f"standing statistics of {type(model).__name__} need the "
                                  "training images")
    return standing.exported_copy(
        model, settings.standing_stats,
        standing.model_noise(model, settings.standing_batch, settings.seed), make_images)


def hold_out(arrays, count):
    """(rest, held out) of an (images, labels or None) pair: the last `count` images
    are held out, the others kept, both in the source's order. The validation
    reference of a run trained on the others (evaluate.py --reference validation);
    0 < count < len(images)."""
    images, labels = arrays
    if not 0 < count < len(images):
        raise ValueError(f"hold_out needs 0 < count < {len(images)}, got {count}")
    cut = len(images) - count
    if labels is None:
        return (images[:cut], None), (images[cut:], None)
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


@dataclasses.dataclass(frozen=True)
class ScoreSettings:
    """How samples are scored: the home of evaluate.py's flags of the same names
    (and train_ogan.py's --probe_examples and --probe)."""
    num_samples: int = hparam(10000, "generated samples (--floor: training images)")
    probe_examples: int = hparam(10000, "training images of the linear probes of O-GAN's E(x), "
                                        "of the same encoder untrained and of raw pixels "
                                        "(train_ogan.py scores them on half as many test "
                                        "images); 0 = no probe")
    probe: str = hparam("logistic", "the linear probe: logistic (multinomial logistic "
                                    "regression) or ridge (least squares onto one-hot "
                                    "labels, the probe of earlier results)", choices=PROBES)
    k: int = hparam(3, "neighbours of the precision / recall manifolds")
    kid_subsets: int = hparam(100, "KID subsets")
    kid_subset_size: int = hparam(1000, "KID subset size")
    seed: int = hparam(0, "seed of the noise and the KID subsets")
    # Given by the caller (evaluate.py: training.Config's --standing_stats and
    # the run's batch size): batches of standing statistics for the samples, 0 =
    # off, of this many noise draws each.
    standing_stats: int = 0
    standing_batch: int = standing.BATCH_SIZE


def evaluate_model(model, feature_model, classifier, test, train=None, verbose=False,
                   **settings):
    """Every metric that applies to `model`, as a flat dict; settings: the fields
    of `ScoreSettings`.

    test, train: (images, labels or None) in [-1, 1]. Samples are compared with
      the test images (held out from training) in `feature_model`'s space: fid,
      kid, kid_std, precision, recall. With a classifier (labelled data):
      sample class coverage (classes_present, effective_classes, max_share).
    O-GAN: `encoder_probes` (probe_encoder, probe_untrained, probe_pixels: the
      `probe` of E(x), of the encoder untrained and of pixels); reconstruction = G(0.9·N(E(x)))
      of the test images: recon_agreement (same classifier label as x), recon_rms, recon_l1.
    Standing statistics (`standing_stats` > 0): an ogan_ign model is scored as
      its export with --standing_stats would be (`exported`: the sampler's of
      noise, IGN's f's of the `train` images, so its reconstructions too); a bare
      generator samples with them.
    IGN: reconstruction f(x) of the test images (recon_agreement, recon_rms,
      recon_l1) and the idempotence gaps RMS(f(f(y)), f(y)) for y = its noise z
      (idem_gap, the generated samples' gap) and y = test images (idem_gap_data);
      f(f(z)) scored as the samples are, its keys prefixed ff_ (ff_fid, ff_recall…).
    verbose: say what is computed and how long each part took.
    """
    settings = ScoreSettings(**settings)
    x_test, y_test = test
    standing_stats = settings.standing_stats
    if standing_stats and isinstance(model, one_loss.OneLossModel):
        with announced(f"standing statistics: {standing_stats} batches", verbose):
            model = exported(model, settings, train)
        standing_stats = 0  # in the copy's statistics now
    with announced(f"generating {settings.num_samples} samples", verbose):
        samples = generate_samples(model, settings.num_samples, settings.seed,
                                   standing_stats=standing_stats,
                                   standing_batch=settings.standing_batch)
    coverage = ", class coverage" if classifier is not None else ""
    with announced(f"FID, KID, precision / recall of the samples against {len(x_test)} "
                   f"held-out images{coverage}", verbose):
        real = embed(feature_model, x_test)  # once, also for f(f(z)) below
        metrics = _set_metrics(feature_model, classifier, real, samples, settings)

    encode = getattr(model, "encode", None)
    examples = settings.probe_examples
    if encode and train is not None and train[1] is not None and y_test is not None \
            and examples:
        with announced(f"{settings.probe} probes of E(x), of E untrained and of pixels, on "
                       f"{min(examples, len(train[0]))} training images", verbose):
            metrics.update(encoder_probes(model, train, test, examples, settings.probe,
                                          settings.seed))
    refine = getattr(model, "refine", None)
    twice = None
    if refine:
        with announced("f(f(z)): the samples refined once more (IGN's refiner), scored the "
                       "same way", verbose):
            twice = batched(refine, samples, 500)
            scored = _set_metrics(feature_model, classifier, real, twice, settings)
            metrics.update({f"ff_{k}": v for k, v in scored.items()
                            if k not in ("num_samples", "num_real")})
    with announced("reconstructions and idempotence gaps of the held-out images", verbose
                   and (refine or hasattr(model, "reconstruct"))):
        metrics.update(_reconstruction_metrics(model, classifier, x_test, samples, twice))
    return metrics


def untrained_copy(network, seed):
    """`network` rebuilt with fresh weights from its initialisers (and fresh
    BatchNorm statistics), Keras's global random seed set to `seed` first."""
    keras.utils.set_random_seed(seed)
    return keras.models.clone_model(network)


def encoder_probes(model, train, test, examples, probe="logistic", seed=0):
    """O-GAN's encoder against its two controls, each a linear probe (fitted on
    `examples` training images, scored on the test images): probe_encoder on
    E(x), probe_untrained on the same encoder with fresh weights (what the code's
    shape alone gives) and probe_pixels on the raw images."""
    fresh = untrained_copy(model.encoder, seed)
    return {
        "probe_encoder": encoder_probe(model.encode, train, test, examples, probe),
        "probe_untrained": encoder_probe(lambda x: fresh(x, training=False), train, test,
                                         examples, probe),
        "probe_pixels": pixel_probe(train, test, examples, probe),
    }


def _reconstruction_metrics(model, classifier, x_test, samples, twice):
    """IGN's idempotence gaps (a model with `project` and `refine`; `twice` =
    refine(samples)) and the reconstruction error (RMS and mean |·|) and label
    agreement of the test images (a model with `reconstruct`)."""
    metrics = {}
    refine = getattr(model, "refine", None)
    reconstruct = getattr(model, "reconstruct", None)
    if refine:
        # The samples are f(z), so RMS(f(samples), samples) is the gap on z; on data,
        # RMS(f(f(x)), f(x)) with the outer f the refiner, as for samples.
        metrics["idem_gap"] = rms_distance(twice, samples)
        metrics["idem_gap_data"] = idempotence_gap(model.project, x_test, again=refine)
    if reconstruct is not None:
        x_rec = batched(reconstruct, x_test, 500)
        metrics["recon_rms"] = rms_distance(x_rec, x_test)
        metrics["recon_l1"] = float(np.mean(np.abs(np.asarray(x_rec, np.float64) - x_test)))
        if classifier is not None:
            metrics["recon_agreement"] = label_agreement(classifier, x_test, x_rec)
    return metrics


def _set_metrics(feature_model, classifier, real_features, x_other, settings):
    """FID, KID, precision / recall, coverage and class coverage of `x_other`
    against the real images (given as their features in `feature_model`'s space):
    the part the model rows and the data floor share."""
    metrics = {"num_samples": int(len(x_other)), "num_real": int(len(real_features))}
    metrics.update(sample_metrics(real_features, embed(feature_model, x_other),
                                  settings.k, settings.kid_subsets, settings.kid_subset_size,
                                  settings.seed))
    if classifier is not None:
        coverage = class_coverage(classifier, x_other)
        metrics.update(classes_present=coverage["classes_present"],
                       effective_classes=coverage["effective_classes"],
                       max_share=coverage["max_share"])
    return metrics


def evaluate_data(feature_model, classifier, test, train, **settings):
    """The floor: training images scored as if they were samples, against the
    test images, the same way as `evaluate_model` (settings: `ScoreSettings`'s
    fields but num_samples; the training images given are the samples); plus the
    linear probe of raw pixels, the reference for O-GAN's encoder probe."""
    settings = ScoreSettings(**settings)
    x_test, y_test = test
    x_train, y_train = train
    metrics = _set_metrics(feature_model, classifier, embed(feature_model, x_test), x_train,
                           settings)
    examples = settings.probe_examples
    if y_train is not None and y_test is not None and examples:
        metrics["probe_pixels"] = pixel_probe(train, test, examples, settings.probe)
    return metrics
