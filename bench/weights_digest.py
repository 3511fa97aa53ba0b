"""A digest of every value a short training run leaves in its checkpoint, per model.

    python bench/weights_digest.py                       # prints one line per run
    python bench/weights_digest.py --save /tmp/before.json
    python bench/weights_digest.py --compare /tmp/before.json   # exit 1 if any differs

Runs train_gan.py, train_ogan.py and train_ign.py as a user does (flags → config →
driver → data → model → step → checkpoint) for a few steps on a small generated
folder of PNGs with a fixed seed, then hashes every variable of the last
checkpoint (name, dtype, shape and bytes, sorted by name): the weights, BatchNorm's
statistics, the optimizer's slots, the weight average and the step counter. Two
code versions that train alike give equal digests; a changed checkpoint name (an
old run could no longer resume) changes the digest too.

It is how a change that should move no number is proved to move none: save the
digests before, compare after. float32 and bf16 runs both; the digests hold on
one machine (other CPUs may pick other kernels), so compare on the same one.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMMON = ("--image_size=32", "--batch_size=8", "--steps=4", "--ckpt_every=2",
          "--sample_every=0", "--log_every=2", "--num_samples=4", "--seed=3")
RUNS = {
    "gan fp32": ("train_gan.py", "--width=4", "--z_dim=8", "--mixed_precision=off"),
    "ogan fp32": ("train_ogan.py", "--width=4", "--z_dim=8", "--mixed_precision=off"),
    "ign fp32": ("train_ign.py", "--width=4", "--latent=8", "--mixed_precision=off",
                 "--coverage_samples=0", "--fourier_examples=16"),
    "ign bf16": ("train_ign.py", "--width=4", "--latent=8", "--mixed_precision=bf16",
                 "--coverage_samples=0", "--fourier_examples=16"),
}


def make_folder(folder, count=24, size=40):
    """`count` RGB PNGs of smooth random colour fields, the same on every call."""
    import imageio.v2 as imageio  # pylint: disable=import-outside-toplevel
    rng = np.random.default_rng(0)
    os.makedirs(folder, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size] / size
    for i in range(count):
        a, b, c = rng.uniform(0, 1, (3, 3))
        image = np.stack([a[k] * xx + b[k] * yy + c[k] * xx * yy for k in range(3)], -1)
        imageio.imwrite(os.path.join(folder, f"{i:03d}.png"),
                        np.clip(255 * image / image.max(), 0, 255).astype(np.uint8))


def checkpoint_digest(run_dir):
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    path = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    if path is None:
        raise SystemExit(f"error: no checkpoint in {run_dir}")
    reader = tf.train.load_checkpoint(path)
    digest = hashlib.sha256()
    names = sorted(n for n in reader.get_variable_to_shape_map() if n != "_CHECKPOINTABLE_OBJECT_GRAPH")
    for name in names:
        value = np.asarray(reader.get_tensor(name))
        digest.update(f"{name}|{value.dtype}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return {"digest": digest.hexdigest()[:16], "variables": len(names),
            "checkpoint": os.path.basename(path)}


def run(name, folder, out):
    script, *args = RUNS[name]
    run_dir = os.path.join(out, name.replace(" ", "_"))
    command = [sys.executable, os.path.join(ROOT, script), f"--dataset={folder}",
               f"--out_dir={run_dir}", *COMMON, *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"error: {name} failed ({done.returncode}): "
                         + (done.stderr.strip().splitlines() or ["no output"])[-1])
    return checkpoint_digest(run_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--save", help="write the digests to this JSON file")
    parser.add_argument("--compare", help="compare with digests saved earlier; exit 1 on a difference")
    parser.add_argument("--runs", default=",".join(RUNS), help="comma separated, of: " + ", ".join(RUNS))
    args = parser.parse_args()
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        raise SystemExit(f"error: unknown run(s) {unknown}; use some of {list(RUNS)}")
    before = None
    if args.compare:
        with open(args.compare, encoding="utf-8") as f:
            before = json.load(f)
    results = {}
    with tempfile.TemporaryDirectory() as out:
        folder = os.path.join(out, "images")
        make_folder(folder)
        for name in names:
            results[name] = run(name, folder, out)
            line = f"{name:10s} {results[name]['digest']}  ({results[name]['variables']} variables)"
            if before is not None:
                same = before.get(name, {}).get("digest") == results[name]["digest"]
                line += "  same" if same else f"  DIFFERENT (was {before.get(name, {}).get('digest')})"
            print(line, flush=True)
    if args.save:
        with open(args.save, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    if before is not None:
        differ = [n for n in names if before.get(n, {}).get("digest") != results[n]["digest"]]
        print(f"{len(names) - len(differ)} same, {len(differ)} different")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
