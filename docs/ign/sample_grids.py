"""Sample grids of finished runs side by side, each as its export with
`--standing_stats N` would sample (IGN: its sampling copy of f; see
docs/sampling/README.md), from the same fixed noise seed.

    PYTHONPATH=. python docs/ign/sample_grids.py --out docs/ign/figures/w64.png \
        RUN_DIR[:N[:T]] [RUN_DIR[:N[:T]] ...]

RUN_DIR:N samples with standing statistics over N batches of the run's batch
size (noise seeded by --seed; IGN's f also gets N batches of the run's training
images, which only `project` uses); RUN_DIR alone samples with the exported
statistics; RUN_DIR:N:T samples an IGN at temperature T (evaluate.py's
--temperature). Each run gives an 8 × 8 grid; the grids are laid left to right in
the order given, a blank column between them. With --idempotence (IGN runs) each run
gives instead 8 rows z | f(z) | f(f(z)) | f(f(f(z))), train_ign.py's figure of that
name, drawn from its export.
"""

import argparse
import json
import math
import os
import sys
import zipfile

import keras
import numpy as np

import ogan_ign  # noqa: F401  (registers the model classes with Keras)
from ogan_ign import data, images, one_loss, standing

# the idempotence figure's layout is the training script's own: import it from the repository root
# (so the script runs with or without PYTHONPATH=.)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
import train_ign  # noqa: E402

ROWS = 8


def exported(run_dir, batches, seed, temperature=None):
    """The run's model.keras as it samples: with standing statistics over `batches`
    batches when > 0, at an IGN's `temperature` when given."""
    model = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    if temperature is not None:
        model.temperature = temperature
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    if batches:
        spec = data.resolve(config["dataset"], image_size=config["image_size"],
                            channels=config["channels"])
        train = data.load_arrays(spec, limit=10000)[0]
        model = standing.exported_copy(
            model, batches, standing.model_noise(model, config["batch_size"], seed),
            standing.image_batches(train, config["batch_size"], seed))
    return model


def table_of(model, seed, idempotence=False):
    """The run's table: ROWS² samples as a grid, or with `idempotence` ROWS rows of
    train_ign.py's z | f(z) | f(f(z)) | f(f(f(z)))."""
    if idempotence:
        return images.table(train_ign.idempotence_table(
            model, model.make_noise(ROWS, seed, stream=one_loss.FIGURES)))
    z = model.make_noise(ROWS * ROWS, seed, stream=one_loss.FIGURES)
    return images.table(images.grid(np.asarray(model.generate(z), np.float32)))


def saved_class(run_dir):
    """The class name model.keras was saved as, read from its config alone;
    ValueError with one line when the file is no Keras archive."""
    path = os.path.join(run_dir, "model.keras")
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("config.json"))["class_name"]
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise ValueError(f"{path} is not a saved Keras model ({type(e).__name__}: {e})") from None


def parse_run(item, idempotence=False):
    """(run_dir, batches, temperature or None) of one RUN_DIR[:N[:T]] argument;
    ValueError with one line for a folder without a finished run (with
    `idempotence`, without a finished IGN run), an N that is not a count or a T
    that is not a positive number."""
    run_dir, _, rest = item.partition(":")
    batches, _, temperature = rest.partition(":")
    for name in ("model.keras", "config.json"):
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise ValueError(f"{item}: {run_dir} holds no {name} (not a finished run)")
    kind = saved_class(run_dir) if idempotence else None
    if idempotence and kind != "IGN":
        raise ValueError(f"{item}: --idempotence needs an IGN run, {run_dir} holds a "
                         f"model of class {kind}")
    if not (batches or "0").isdigit():
        raise ValueError(f"{item}: N must be a count of batches (0, 64, ...), got {batches!r}")
    value = None
    if temperature:
        try:
            value = float(temperature)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{item}: T must be a positive temperature, got {temperature!r}")
    return run_dir, int(batches or 0), value


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR, RUN_DIR:N or RUN_DIR:N:T")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--idempotence", action="store_true",
                        help="IGN runs: rows z | f(z) | f(f(z)) | f(f(f(z))) instead of samples")
    args = parser.parse_args()
    try:
        runs = [parse_run(item, args.idempotence) for item in args.runs]  # before any work
    except ValueError as e:
        parser.error(str(e))
    pictures = []
    for k, (run_dir, batches, temperature) in enumerate(runs, 1):
        # Said before the work: standing statistics take tens of seconds a run.
        print(f"[{k}/{len(runs)}] {run_dir}: " + (f"{ROWS} rows of f applied" if args.idempotence
                                                  else f"{ROWS * ROWS} samples")
              + (f", standing statistics over {batches} batches" if batches else "")
              + (f", temperature {temperature:g}" if temperature else "") + " ...", flush=True)
        model = exported(run_dir, batches, args.seed, temperature)
        pictures.append(table_of(model, args.seed, args.idempotence))
    gap = np.full(pictures[0].shape[:1] + (8,) + pictures[0].shape[2:], 255, np.uint8)
    row = [p for picture in pictures for p in (picture, gap)][:-1]
    images.save_png(args.out, np.concatenate(row, axis=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
