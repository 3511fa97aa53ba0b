"""Evaluation of generated samples, one module per job:

- `metrics`: pure functions of arrays. Sample quality in a feature space, FID
  (Heusel et al. 2017, arXiv 1706.08500), KID (Bińkowski et al. 2018, arXiv
  1801.01401), improved precision / recall (Kynkäänniemi et al. 2019, arXiv
  1904.06991) and coverage (Naeem et al. 2020, arXiv 2002.09797); the linear
  probe of O-GAN's E(x) (arXiv 1903.01931); RMS distances and IGN's idempotence
  gap (arXiv 2311.01462).
- `extractors`: the feature spaces, an InceptionV3 given as a weights file or the
  classifier's penultimate layer (whose distances are NOT comparable with the
  Inception FIDs of papers).
- `classifier`: a small convnet trained once on the labelled training split and
  cached; class coverage of samples (mode collapse, which a sample grid hides)
  and label agreement of images and their reconstructions.
- `scores`: every metric that applies to a whole model, and the data floor.
- `callback`: class coverage while a model trains.

Every public name is importable from `ogan_ign.evaluation` itself.
"""

from ogan_ign.evaluation.callback import CoverageCallback
from ogan_ign.evaluation.classifier import (build_classifier, class_coverage,
                                            default_classifier_path, label_agreement,
                                            labelled_splits, load_or_train_classifier,
                                            predicted_labels, run_classifier, train_classifier)
from ogan_ign.evaluation.extractors import (FEATURE_LAYER, INCEPTION_SIZE, classifier_features,
                                            embed, inception_features)
from ogan_ign.evaluation.metrics import (PROBES, EvaluationError, batched, coverage,
                                         covered, encoder_probe,
                                         frechet_distance, frechet_gaussians, idempotence_gap,
                                         kernel_distance, knn_radii, linear_probe,
                                         logistic_fit, logistic_probe, pixel_probe,
                                         polynomial_mmd2, precision_recall, rms_distance,
                                         sample_metrics, standardised)
from ogan_ign.evaluation.progress import announced
from ogan_ign.evaluation.scores import (ScoreSettings, encoder_probes, evaluate_data,
                                        evaluate_model, evaluation_noise, generate_samples,
                                        hold_out, sample_function, untrained_copy)

__all__ = [
    "CoverageCallback", "EvaluationError", "FEATURE_LAYER", "INCEPTION_SIZE", "PROBES",
    "ScoreSettings", "announced",
    "batched", "build_classifier", "class_coverage", "coverage", "covered", "classifier_features",
    "default_classifier_path", "embed", "encoder_probe", "encoder_probes", "evaluate_data",
    "evaluate_model",
    "evaluation_noise", "frechet_distance", "frechet_gaussians", "generate_samples", "hold_out",
    "idempotence_gap", "inception_features", "kernel_distance", "knn_radii", "label_agreement",
    "labelled_splits", "linear_probe", "load_or_train_classifier", "logistic_fit",
    "logistic_probe", "pixel_probe", "polynomial_mmd2",
    "precision_recall", "predicted_labels", "rms_distance", "run_classifier", "sample_function",
    "sample_metrics", "standardised", "train_classifier", "untrained_copy",
]
