"""What a run's f can reach at best, on the validation split (issue 15).

    python docs/ign/experiments/bounds.py runs/ign_research/paper

Scores, exactly like the screening rows (5,000 "samples" against the 10,000
validation images, `ign_experiment.sample_metrics`): (1) the data floor: 5,000
training images train[:5000] themselves; (2) their reconstructions f(x) by the
run's final raw weights (with --step N, those kept at scored step N). IGN's
samples f(z) are outputs of the same f, so (2) bounds what they can look like
if z were mapped perfectly onto the data: if even f(x) has low recall, the blur
is f's, not the noise's. Writes bounds.json (bounds_N.json) in the run folder.
"""

import argparse
import json
import os
import sys

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ign_experiment as X  # noqa: E402

from ogan_ign import evaluation  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run")
    p.add_argument("--num", type=int, default=5000)
    p.add_argument("--step", type=int, default=0,
                   help="use the weights kept at this scored step; 0: the final ones")
    args = p.parse_args()
    weights = X.weights_file(False, args.step)
    with open(os.path.join(args.run, "config.json")) as f:
        config = argparse.Namespace(**json.load(f))
    x_train, x_val = X.split_arrays()
    reference = X.Reference(x_val, X.load_classifier())
    keras.mixed_precision.set_global_policy(
        "mixed_bfloat16" if config.precision == "bf16" else "float32")
    model = X.build_model(config)
    model.f.load_weights(os.path.join(args.run, weights))
    x = x_train[:args.num]
    out = {}
    for name, images in (("data", x), ("reconstruction", X._batched(
            lambda y: model.f(y, training=False), x))):
        metrics = X.sample_metrics(reference, evaluation.embed(reference.features_model, images),
                                   50, 0)
        out[name] = metrics
        print(name, " ".join(f"{k} {v:.4g}" for k, v in metrics.items()), flush=True)
    out["weights"] = weights
    name = f"bounds_{args.step}.json" if args.step else "bounds.json"
    with open(os.path.join(args.run, name), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
