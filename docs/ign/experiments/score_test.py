"""Scores finished research runs ONCE on the Fashion-MNIST test split (issue 15).

    python docs/ign/experiments/score_test.py runs/ign_research/paper [--ema] ...
    python docs/ign/experiments/score_test.py runs/ign        # a train_ign.py run

For each run folder of `ign_experiment.py`: rebuilds the model from its
config.json, loads f.weights.h5 (f_ema.weights.h5 with --ema; with --step N the
weights kept at scored step N, f[_ema]_0000N.weights.h5) and the Fourier
statistics. A `train_ign.py` run folder is scored from its model.keras (the
averaged weights when it ran with --ema; --ema and --step do not apply). Each
model is scored on 10,000 samples f(z) and f(f(z)) against the 10,000 test
images exactly as the validation scores were computed (`ign_experiment.score`,
KID over 100 subsets as evaluate.py). Writes test_scores[_ema][_N].json in the
run folder and prints one line per run.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ign_experiment as X  # noqa: E402  (the runner beside this file)

from ogan_ign import data, ign, images  # noqa: E402


def fourier_statistics(run):
    """The run's Fourier statistics; recomputed, as the runner does, from
    train[:FOURIER_EXAMPLES] when the run was stopped before writing them."""
    path = os.path.join(run, "fourier_statistics.npy")
    if os.path.isfile(path):
        return np.load(path)
    return ign.fourier_statistics(X.split_arrays()[0][:X.FOURIER_EXAMPLES])


def is_train_ign(config):
    """Whether a run folder's config.json is train_ign.py's (the driver's "model" block)."""
    return "model" in config


def load_research_run(run, config, weights_file):
    """The IGN of an ign_experiment.py run (`config` its config.json) with `weights_file` in f."""
    config = argparse.Namespace(**config)
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if config.precision == "bf16" else "float32")
    model = X.build_model(config)
    model.f.load_weights(os.path.join(run, weights_file))
    if config.noise == "fourier":
        model.spectrum.assign(fourier_statistics(run))
    return model


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--ema", action="store_true", help="score the EMA weights")
    p.add_argument("--num_samples", type=int, default=10000)
    p.add_argument("--step", type=int, default=0,
                   help="score the weights kept at this scored step (f[_ema]_<step>.weights.h5); "
                        "0: the final ones")
    args = p.parse_args()
    weights_file = X.weights_file(args.ema, args.step)
    configs = {}
    for run in args.runs:
        if not os.path.isfile(os.path.join(run, "config.json")):
            sys.exit(f"error: {run} has no config.json")
        with open(os.path.join(run, "config.json")) as f:
            configs[run] = json.load(f)
        name = "model.keras" if is_train_ign(configs[run]) else weights_file
        if not os.path.isfile(os.path.join(run, name)):
            sys.exit(f"error: {run} has no {name}")
    test = data.load_arrays(data.resolve("fashion_mnist", image_size=32, split="test"))[0]
    reference = X.Reference(test, X.load_classifier())
    for run in args.runs:
        config = configs[run]
        if is_train_ign(config):
            model, weights = keras.saving.load_model(os.path.join(run, "model.keras")), "model.keras"
        else:
            model, weights = load_research_run(run, config, weights_file), weights_file
        metrics = X.score(model, model.f, reference, args.num_samples, kid_subsets=100)
        suffix = ("_ema" if args.ema else "") + (f"_{args.step}" if args.step else "")
        images.save_grid(os.path.join(run, f"test_samples{suffix}.png"), metrics.pop("samples"))
        metrics.update(split="test", weights=weights, step=args.step or config["steps"],
                       num_samples=args.num_samples)
        with open(os.path.join(run, f"test_scores{suffix}.json"), "w") as out:
            json.dump(metrics, out, indent=1)
        print(run, suffix, " ".join(f"{k} {v:.4g}" for k, v in metrics.items()
                                    if isinstance(v, float)), flush=True)


if __name__ == "__main__":
    main()
