"""Evaluates a run folder or a saved model → metrics JSON and one line on screen.

    python evaluate.py --run_dir runs/ogan                 # config.json + model.keras
    python evaluate.py --model runs/dcgan/generator.keras --dataset fashion_mnist
    python evaluate.py --floor --dataset fashion_mnist --output runs/floor.json

Samples (default 10,000) are compared with the test split in a feature space:
FID, KID, precision / recall and coverage (k = 3); with labels, class coverage; for O-GAN the
linear probes (--probe) of E(x), of the same encoder untrained and of pixels, and
the label agreement of x and its reconstruction; for
IGN the reconstruction error, idempotence gaps and f(f(z)) scored as the samples
are (ff_*). See ogan_ign/evaluation/.

Feature space: the penultimate layer of the project's small classifier for the
dataset (trained once on the labelled training split and cached), or InceptionV3
with --features inception --inception_weights FILE (it cannot be downloaded
here). Classifier-feature FIDs rank models on the same data; they are not
comparable with the Inception FIDs of papers.

--reference validation scores against the last --num_real images of the training
split instead (Fashion-MNIST: train[50000:]), for runs trained on the rest
(docs/sampling/run.sh): settings are chosen there, and the test split is scored
once, for the chosen one. The classifier is trained on the whole labelled training
split either way: it is the ruler, not a model under test.

--floor scores the training split itself as the "samples": the best any model
can do against the test split in this feature space. A folder of images has no
test split: its own images are the reference set then.

Output: --output, else the run folder's metrics.json (or the one beside
--model), merged: the evaluation goes under the key "evaluation" and every
other key stays. Mistakes are one line on stderr and exit status 2.
"""

import quiet_start  # noqa: F401  (first: TensorFlow starts without its start-up lines)

import dataclasses
import json
import os
import time

from absl import flags
from absl import logging
import keras

from ogan_ign import cli, data, evaluation, ign, standing, training
from ogan_ign.settings import help_of
from ogan_ign.training import ConfigError

flags.DEFINE_string("run_dir", None, "a run folder: config.json and model.keras")
flags.DEFINE_string("model", None, "a saved .keras model (an ogan_ign model or a generator "
                    "z → x); needs --dataset unless --run_dir gives it")
flags.DEFINE_boolean("floor", False, "score the training split as samples (the reference floor)")
flags.DEFINE_string("dataset", None, "default: the run's; fashion_mnist, a TFDS name or a folder")
flags.DEFINE_string("data_dir", None, "default: the run's")
flags.DEFINE_integer("image_size", None, "default: the run's, else 32")
flags.DEFINE_integer("channels", None, "default: the run's, else the data's own")
flags.DEFINE_integer("num_real", 10000, "reference images (test or validation)")
flags.DEFINE_enum("reference", "test", ["test", "validation"],
                  "the reference images samples are scored against: the test split, or the "
                  "validation split = the last --num_real images of the training split (for "
                  "runs trained on the others; choose settings on it, report test once)")
flags.DEFINE_enum("features", "classifier", ["classifier", "inception"], "the feature space")
flags.DEFINE_string("classifier", None, "cached classifier .keras (trained there if absent); "
                    "default ~/.cache/ogan_ign/classifier_<dataset>_<size>px_<channels>c.keras")
flags.DEFINE_string("inception_weights", None, "InceptionV3 notop weights (.h5), for "
                    "--features inception")
flags.DEFINE_string("output", None, "the JSON file written")
cli.define_settings_flags(evaluation.ScoreSettings, exclude=("standing_stats", "standing_batch"))
STANDING = {f.name: f for f in dataclasses.fields(training.Config)}["standing_stats"]
flags.DEFINE_integer("standing_stats", STANDING.default, help_of(STANDING))
TEMPERATURE = {f.name: f for f in dataclasses.fields(ign.IGNSettings)}["temperature"]
flags.DEFINE_float("temperature", None, f"IGN only: {help_of(TEMPERATURE)}; default: the "
                   "model's own")
FLAGS = flags.FLAGS


def run_settings():
    """(run config dict or {}, model path or None, output path) from the flags."""
    if FLAGS.floor and (FLAGS.run_dir or FLAGS.model):
        raise ConfigError("--floor scores the data itself: give no --run_dir or --model")
    if not FLAGS.floor and bool(FLAGS.run_dir) == bool(FLAGS.model):
        raise ConfigError("give either --run_dir or --model (or --floor)")
    if FLAGS.standing_stats < 0:
        raise ConfigError(f"--standing_stats must be >= 0 (0 = off), got {FLAGS.standing_stats}")
    if FLAGS.floor and FLAGS.standing_stats:
        raise ConfigError("--floor scores the data itself: --standing_stats has no generator")
    if FLAGS.temperature is not None and (FLAGS.floor or not FLAGS.temperature > 0):
        raise ConfigError(f"--temperature needs an IGN to sample from and must be > 0, got "
                          f"{FLAGS.temperature}" + (" with --floor" if FLAGS.floor else ""))
    config, model_path, output = {}, FLAGS.model, FLAGS.output
    if FLAGS.run_dir:
        config_path = os.path.join(FLAGS.run_dir, "config.json")
        if not os.path.isfile(config_path):
            raise ConfigError(f"{FLAGS.run_dir} is not a run folder: no config.json")
        with open(config_path) as f:
            config = json.load(f)
        model_path = os.path.join(FLAGS.run_dir, "model.keras")
        if not os.path.isfile(model_path):
            raise ConfigError(f"{FLAGS.run_dir} has no model.keras yet (is it still training?)")
        output = output or os.path.join(FLAGS.run_dir, "metrics.json")
    elif model_path:
        if not os.path.isfile(model_path):
            raise ConfigError(f"no such model file: {model_path}")
        output = output or os.path.join(os.path.dirname(os.path.abspath(model_path)),
                                        "metrics.json")
    elif not output:
        raise ConfigError("--floor needs --output")
    return config, model_path, output


def setting(name, config, default):
    value = FLAGS[name].value
    return value if value is not None else config.get(name, default)


def load_model(path):
    # This script imports ogan_ign, which registers its model classes with Keras:
    # keras.saving.load_model finds a saved OGAN / IGN / SingleLossGAN only then.
    try:
        return keras.saving.load_model(path)
    except Exception as e:  # pylint: disable=broad-except  # Keras raises many kinds
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot load {path}: {first}") from None


def training_record(run_dir, model):
    """Steps and wall time of the run, from its metrics.json when the training
    script wrote one, else the step counter of the saved optimizer and the time
    between config.json (written at the start) and model.keras (at the end)."""
    record = {}
    path = os.path.join(run_dir, "metrics.json") if run_dir else None
    if path and os.path.isfile(path):
        with open(path) as f:
            stored = json.load(f)
        record.update({k: stored[k] for k in ("steps", "wall_seconds") if k in stored})
    if "steps" not in record and getattr(model, "optimizer", None) is not None:
        record["steps"] = int(model.optimizer.iterations.numpy())
    if run_dir and "wall_seconds" not in record:
        start = os.path.getmtime(os.path.join(run_dir, "config.json"))
        end = os.path.getmtime(os.path.join(run_dir, "model.keras"))
        record["wall_seconds_from_files"] = round(end - start, 1)
    return record


def feature_space(spec, train, test):
    """(feature model, classifier or None, description dict)."""
    classifier, description = None, {}
    if train[1] is not None:
        path = FLAGS.classifier or evaluation.default_classifier_path(spec)
        classifier, accuracy = evaluation.load_or_train_classifier(path, train, test)
        description.update(classifier=path, classifier_test_accuracy=accuracy)
    if FLAGS.features == "inception":
        model = evaluation.inception_features(FLAGS.inception_weights, spec.image_size,
                                              spec.channels)
        description["features"] = f"InceptionV3 pool3 ({FLAGS.inception_weights})"
        return model, classifier, description
    if classifier is None:
        raise ConfigError(f"{spec.name} has no labels to train a feature classifier on; "
                         "use --features inception --inception_weights FILE")
    description["features"] = (f"classifier penultimate layer '{evaluation.FEATURE_LAYER}' "
                                "(not comparable with Inception FIDs)")
    return evaluation.classifier_features(classifier), classifier, description


def summary(name, metrics):
    keys = ("fid", "kid", "precision", "recall", "coverage", "probe_encoder", "probe_pixels",
            "recon_agreement", "recon_rms", "recon_l1", "idem_gap", "ff_fid", "effective_classes")
    shown = "  ".join(f"{k} {metrics[k]:.4g}" for k in keys if k in metrics)
    return f"{name}: {shown}"


def open_model(model_path):
    """The model, loaded and checked before any data is read or classifier trained,
    so that a broken file is reported in seconds; at --temperature if given."""
    with evaluation.announced(f"opening {model_path}"):
        model = load_model(model_path)
        evaluation.sample_function(model)  # an ogan_ign model or a generator z → x
    if FLAGS.temperature is not None:
        if not isinstance(model, ign.IGN):
            raise ConfigError(f"--temperature is IGN's; {model_path} holds a "
                              f"{type(model).__name__}")
        model.temperature = FLAGS.temperature
    return model


def evaluate():
    config, model_path, output = run_settings()
    # Standing statistics over batches of the run's training batch size.
    standing_batch = config.get("batch_size", standing.BATCH_SIZE)
    if FLAGS.standing_stats and standing_batch < 2:
        raise ConfigError(f"--standing_stats needs batches of at least 2; the run's "
                          f"--batch_size is {standing_batch}")
    model = None if FLAGS.floor else open_model(model_path)
    spec_args = dict(data_dir=setting("data_dir", config, None),
                     image_size=setting("image_size", config, 32),
                     channels=setting("channels", config, None))
    dataset = setting("dataset", config, None)
    if not dataset:
        raise ConfigError("--dataset is required with --model or --floor")
    spec = data.resolve(dataset, split="train", **spec_args)
    test_spec = data.resolve(dataset, split="test", **spec_args)
    if FLAGS.floor and spec.kind == "folder":
        raise ConfigError("--floor needs a dataset with a test split; a folder is one split")
    start = time.perf_counter()
    with evaluation.announced(f"reading {spec.name}: the training split and "
                              f"{FLAGS.num_real} {FLAGS.reference} images"):
        train = data.load_arrays(spec)
        test = data.load_arrays(test_spec, limit=FLAGS.num_real)
    features, classifier, description = feature_space(spec, train, test)
    if FLAGS.reference == "validation":
        try:
            train, test = evaluation.hold_out(train, FLAGS.num_real)
        except ValueError as e:  # hold_out's own bound, in the flags' words
            raise ConfigError(f"--reference validation holds out --num_real {FLAGS.num_real} of "
                              f"{spec.name}'s {len(train[0])} training images: {e}") from None
    description["reference"] = FLAGS.reference
    settings = dict(k=FLAGS.k, kid_subsets=FLAGS.kid_subsets,
                    kid_subset_size=FLAGS.kid_subset_size, seed=FLAGS.seed,
                    probe_examples=FLAGS.probe_examples, probe=FLAGS.probe)
    if FLAGS.floor:
        name = f"{spec.name} train vs test"
        limited = (train[0][:FLAGS.num_samples],
                   None if train[1] is None else train[1][:FLAGS.num_samples])
        metrics = evaluation.evaluate_data(features, classifier, test, limited, **settings)
        record = {"kind": "data (train split)"}
    else:
        name = FLAGS.run_dir or model_path
        settings.update(standing_stats=FLAGS.standing_stats, standing_batch=standing_batch)
        metrics = evaluation.evaluate_model(model, features, classifier, test, train,
                                            num_samples=FLAGS.num_samples, verbose=True,
                                            **settings)
        record = {"kind": type(model).__name__, "model": model_path,
                  **training_record(FLAGS.run_dir, model)}
        if isinstance(model, ign.IGN):
            record["temperature"] = model.temperature
    result = {**record, "dataset": spec.name, "image_size": spec.image_size,
              "channels": spec.channels, **description, **settings, **metrics,
              "eval_seconds": round(time.perf_counter() - start, 1)}
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    training.merge_json(output, {"evaluation": result})
    print(summary(name, metrics), flush=True)


def main(argv):
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    with cli.user_errors():
        if len(argv) > 1:
            raise ConfigError(f"unexpected arguments: {' '.join(argv[1:])}")
        evaluate()


if __name__ == "__main__":
    cli.run(main)
