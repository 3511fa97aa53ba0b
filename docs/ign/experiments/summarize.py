"""Tables and curves of the IGN research runs (issue 15).

    python docs/ign/experiments/summarize.py runs/ign_research docs/ign/experiments

Reads every <root>/<run>/scores.jsonl (validation scores during training) and
test_scores*.json (the one test scoring), the test scores of `train_ign.py` run
folders (config.json with a "model" block; trained on all 60,000 training
images, scored from model.keras by score_test.py), and the DCGAN baseline's evaluate.py
outputs <root>/dcgan_s<seed>/eval_<step>.json; prints markdown tables, and draws
fid_vs_steps.png and recall_vs_steps.png (validation scores of f(z) against
steps, one line per run and weight set, for runs scored at two steps or more)
with PIL only (no matplotlib in the venv).
"""

import glob
import json
import os
import sys

from PIL import Image, ImageDraw

COLUMNS = ("fid", "kid", "precision", "recall", "classes_present", "effective_classes",
           "fid_k2", "recall_k2", "gap_ff_z", "gap_f_z", "recon_l1")
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def setting(config):
    """The settings that differ from the paper's recipe, as text."""
    paper = {"arch": "dense", "norm": "batch", "lambda_rec": 20.0, "lambda_idem": 20.0, "lambda_tight": 2.5,
             "tight_clamp": 1.5, "distance": "l1", "noise": "fourier", "width": 32,
             "latent": 512, "lr": 1e-4, "beta_1": 0.5}
    # Runs made before --arch existed have no "arch": theirs was "dense".
    diff = [f"{k}={config.get(k)}" for k, v in paper.items()
            if config.get(k, "dense" if k == "arch" else None) != v]
    return ", ".join(diff) or "paper's recipe (BatchNorm, Fourier noise)"


def weights_label(weights, config):
    """"raw", or "ema <decay>" (the decays differ between runs)."""
    return f"ema {config['ema']:g}" if weights == "ema" else weights


def load(root):
    runs = {}
    for path in sorted(glob.glob(os.path.join(root, "*", "scores.jsonl"))):
        run_dir = os.path.dirname(path)
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        tests = {}
        for test in glob.glob(os.path.join(run_dir, "test_scores*.json")):
            with open(test) as f:
                scores = json.load(f)
            weights = "ema" if "_ema" in os.path.basename(test) else "raw"
            tests[(scores.get("step", config["steps"]), weights)] = scores
        runs[os.path.basename(run_dir)] = {"config": config, "rows": rows, "tests": tests}
    for path in sorted(glob.glob(os.path.join(root, "*", "test_scores.json"))):
        run_dir = os.path.dirname(path)
        with open(os.path.join(run_dir, "config.json")) as f:
            config = json.load(f)
        if "model" not in config:
            continue  # a research run, read above
        with open(path) as f:
            scores = json.load(f)
        flat = {**config["model"], "arch": "dense", "norm": "batch", "lr": config["lr"],
                "beta_1": 0.5, "seed": config["seed"],
                "ema": config["ema"], "steps": config["steps"]}
        weights = "ema" if config["ema"] > 0 else "raw"
        runs[f"train_ign.py {os.path.basename(run_dir)}"] = {
            "config": flat, "rows": [], "tests": {(scores["step"], weights): scores}}
    return runs


def fmt(key, value):
    if value is None:
        return "—"
    if key == "kid":
        return f"{1000 * value:.0f}"
    if key in ("classes_present",):
        return str(int(value))
    if key.startswith("fid"):
        return f"{value:.2f}"
    return f"{value:.3f}"


def table(runs):
    head = ("| run | setting | seed | weights | step | train s | FID | KID×10³ | P | R | classes "
            "| eff. classes | FID f∘f | R f∘f | ‖f∘f(z)−f(z)‖ | ‖f(z)−z‖ | recon L1 |")
    lines = [head, "|" + "---|" * 17]
    for name, run in runs.items():
        for row in run["rows"]:
            cells = [name, setting(run["config"]), str(run["config"]["seed"]),
                     weights_label(row["weights"], run["config"]),
                     str(row["step"]), f"{row['train_seconds']:.0f}"]
            cells += [fmt(k, row.get(k)) for k in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def test_table(runs):
    lines = ["| run | setting | weights | steps | FID | KID×10³ | P | R | classes | eff. classes "
             "| FID f∘f | R f∘f | ‖f∘f(z)−f(z)‖ | ‖f(z)−z‖ | recon L1 |", "|" + "---|" * 15]
    for name, run in runs.items():
        for (step, weights), test in sorted(run["tests"].items()):
            cells = [name, setting(run["config"]), weights_label(weights, run["config"]),
                     str(step)]
            cells += [fmt(k, test.get(k)) for k in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dcgan_table(root):
    """The DCGAN baseline rows: evaluate.py's JSON for each seed and step."""
    lines = ["| run | seed | steps | FID | KID×10³ | P | R | classes | eff. classes |",
             "|" + "---|" * 9]
    for path in sorted(glob.glob(os.path.join(root, "dcgan_s*", "eval_*.json"))):
        with open(path) as f:
            e = json.load(f)["evaluation"]
        seed = os.path.basename(os.path.dirname(path))[len("dcgan_s"):]
        step = os.path.basename(path)[len("eval_"):-len(".json")]
        cells = ["DCGAN, two optimizers", seed, step]
        cells += [fmt(k, e.get(k)) for k in ("fid", "kid", "precision", "recall",
                                             "classes_present", "effective_classes")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(runs, path, key="fid", size=(720, 440), margin=(60, 20, 200, 40)):
    """Lines of `key` against step, log-free axes from 0; legend on the right."""
    series = []
    for name, run in runs.items():
        for weights in ("raw", "ema"):
            points = [(r["step"], r[key]) for r in run["rows"] if r["weights"] == weights]
            if len(points) > 1:
                series.append((f"{name} {weights}", sorted(points)))
    if not series:
        return
    width, height = size
    left, top, right, bottom = margin
    max_step = max(s for _, pts in series for s, _ in pts)
    max_value = max(v for _, pts in series for _, v in pts) * 1.05
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    x_of = lambda s: left + (width - left - right) * s / max_step
    y_of = lambda v: height - bottom - (height - top - bottom) * v / max_value
    draw.line([(left, top), (left, height - bottom), (width - right, height - bottom)],
              fill="black")
    for i in range(6):
        value = max_value * i / 5
        draw.text((5, y_of(value) - 6), f"{value:.3g}", fill="black")
        draw.line([(left - 4, y_of(value)), (left, y_of(value))], fill="black")
    for step in sorted({s for _, pts in series for s, _ in pts}):
        draw.text((x_of(step) - 12, height - bottom + 6), str(step), fill="black")
    draw.text((left, height - 16), f"step (validation {key.upper()} of f(z); "
              "raw = solid, ema = dashed)", fill="black")
    for i, (label, points) in enumerate(series):
        colour = COLOURS[(i // 2 if label.endswith(("raw", "ema")) else i) % len(COLOURS)]
        xy = [(x_of(s), y_of(v)) for s, v in points]
        if label.endswith("ema"):
            for (x0, y0), (x1, y1) in zip(xy, xy[1:]):
                for t in range(0, 10, 2):
                    a, b = t / 10, (t + 1) / 10
                    draw.line([(x0 + a * (x1 - x0), y0 + a * (y1 - y0)),
                               (x0 + b * (x1 - x0), y0 + b * (y1 - y0))], fill=colour, width=2)
        else:
            draw.line(xy, fill=colour, width=2)
        for x, y in xy:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
        draw.text((width - right + 10, top + 14 * i), label, fill=colour)
    image.save(path)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: summarize.py RUNS_ROOT OUTPUT_DIR")
    runs = load(argv[1])
    os.makedirs(argv[2], exist_ok=True)
    print(table(runs))
    print()
    print(test_table(runs))
    print()
    print(dcgan_table(argv[1]))
    plot(runs, os.path.join(argv[2], "fid_vs_steps.png"))
    plot(runs, os.path.join(argv[2], "recall_vs_steps.png"), key="recall")


if __name__ == "__main__":
    main(sys.argv)
