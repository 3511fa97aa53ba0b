"""The IGN research runner's own pieces (docs/ign/experiments/ign_experiment.py):
its f builder, the cached-radii sample metrics that must equal
ogan_ign.evaluation's, the summary's reading of run folders, and the sample
grids' reading of their arguments (docs/ign/sample_grids.py)."""

import json
import os
import sys
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from ogan_ign import evaluation, networks

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "ign", "experiments"))
import ign_experiment as X  # noqa: E402
import summarize  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "docs", "ign"))
import sample_grids  # noqa: E402


@pytest.mark.parametrize("norm", X.NORMS)
def test_build_f_maps_images_to_images(norm):
    f = X.build_f(32, 1, latent=16, width=4, norm=norm, groups=4)
    y = f(np.zeros((2, 32, 32, 1), np.float32))
    assert y.shape == (2, 32, 32, 1)
    has_bn = any(isinstance(l, networks.BatchNorm) for l in f.layers)
    assert has_bn == (norm == "batch")


def test_batch_norm_f_is_the_library_f_plus_a_first_conv_bias():
    # The research runs used this f; it differs from networks.dcgan_autoencoder
    # by one bias vector on the first (unnormalised) convolution.
    ours = X.build_f(32, 1, latent=16, width=4, norm="batch")
    library = networks.dcgan_autoencoder(32, 1, latent=16, width=4)
    shapes = lambda f: [(w.path.replace("_bn", "_norm"), tuple(w.shape)) for w in f.weights]
    extra = [w for w in shapes(ours) if w not in shapes(library)]
    assert extra == [("enc_conv0/bias", (4,))]
    assert len(shapes(ours)) == len(shapes(library)) + 1


def test_build_f_rejects_an_unknown_norm():
    with pytest.raises(ValueError, match="unknown norm"):
        X.build_f(norm="instance")


def test_cached_sample_metrics_equal_the_library_metrics():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(300, 5))
    fake = rng.normal(0.3, 1.2, size=(200, 5))

    class Ref:
        features = real
        radii = evaluation.knn_radii(real, X.K)

    ours = X.sample_metrics(Ref, fake, kid_subsets=5, seed=0)
    theirs = evaluation.sample_metrics(real, fake, k=X.K, kid_subsets=5, kid_subset_size=1000,
                                       seed=0)
    for key in ("fid", "kid", "kid_std", "precision", "recall"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-9), key
    assert 0.0 < ours["recall"] < 1.0


@pytest.mark.parametrize("arch, skips", [("dense", 0), ("unet", 2), ("unet8", 1)])
def test_skip_connections_carry_the_input_past_the_code(arch, skips):
    f = X.build_f(32, 1, latent=8, width=4, norm="none", arch=arch)
    assert sum("skip" in layer.name for layer in f.layers) == skips
    # With the code zeroed, only a skip connection can pass the input through.
    code = f.get_layer("latent")
    code.set_weights([np.zeros_like(w) for w in code.get_weights()])
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, size=(1, 32, 32, 1)).astype(np.float32) for _ in range(2))
    differs = not np.allclose(f(a).numpy(), f(b).numpy())
    assert differs == (skips > 0)


def test_build_f_rejects_an_unknown_arch():
    with pytest.raises(ValueError, match="unknown arch"):
        X.build_f(arch="resnet")


def test_weights_file_names_the_final_and_the_kept_weights():
    # Runs written before kept steps existed have f.weights.h5 / f_ema.weights.h5.
    assert X.weights_file(False) == "f.weights.h5"
    assert X.weights_file(True) == "f_ema.weights.h5"
    assert X.weights_file(False, 3000) == "f_03000.weights.h5"
    assert X.weights_file(True, 500) == "f_ema_00500.weights.h5"


def test_summary_reads_research_and_train_ign_run_folders(tmp_path):
    def write(run, name, value):
        os.makedirs(tmp_path / run, exist_ok=True)
        with open(tmp_path / run / name, "w") as f:
            f.write(value if isinstance(value, str) else json.dumps(value))

    write("research", "config.json", {"steps": 1000, "seed": 0, "lr": 5e-4, "ema": 0.998,
                                      "norm": "batch", "width": 32})
    write("research", "scores.jsonl", json.dumps({"step": 1000, "weights": "ema", "fid": 30.0,
                                                  "train_seconds": 60.0}) + "\n")
    write("research", "test_scores_ema_1000.json", {"step": 1000, "fid": 31.0})
    write("by_script", "config.json", {"steps": 3000, "seed": 1, "lr": 5e-4, "ema": 0.999,
                                       "model": {"width": 32, "latent": 512, "noise": "fourier",
                                                 "lambda_rec": 20.0, "lambda_idem": 20.0,
                                                 "lambda_tight": 2.5, "tight_clamp": 1.5,
                                                 "distance": "l1"}})
    write("by_script", "test_scores.json", {"step": 3000, "fid": 15.0, "recall": 0.2})
    runs = summarize.load(str(tmp_path))
    assert runs["research"]["tests"][(1000, "ema")]["fid"] == 31.0
    script = runs["train_ign.py by_script"]
    assert script["rows"] == [] and script["tests"][(3000, "ema")]["recall"] == 0.2
    assert summarize.setting(script["config"]) == "lr=0.0005"
    table = summarize.test_table(runs)
    assert "| train_ign.py by_script | lr=0.0005 | ema 0.999 | 3000 | 15.00 |" in table


def test_sample_grids_reads_each_run_argument_or_refuses_it_in_one_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(ValueError, match="holds no model.keras"):
        sample_grids.parse_run(str(run))
    (run / "model.keras").write_bytes(b"")
    (run / "config.json").write_text("{}")
    assert sample_grids.parse_run(str(run)) == (str(run), 0, None)
    assert sample_grids.parse_run(f"{run}:64") == (str(run), 64, None)
    assert sample_grids.parse_run(f"{run}:64:1.1") == (str(run), 64, 1.1)
    for bad, message in ((f"{run}:x", "N must be a count of batches"),
                         (f"{run}:-3", "N must be a count"),
                         (f"{run}:64:0", "T must be a positive temperature, got '0'"),
                         (f"{run}:64:nan", "T must be a positive"),
                         (f"{run}:64:warm", "T must be a positive")):
        with pytest.raises(ValueError, match=message) as raised:
            sample_grids.parse_run(bad)
        assert "\n" not in str(raised.value)


def test_sample_grids_idempotence_takes_ign_runs_only(tmp_path):
    runs = {}
    for kind in ("IGN", "SingleLossGAN"):
        run = runs[kind] = tmp_path / kind
        run.mkdir()
        with zipfile.ZipFile(run / "model.keras", "w") as archive:
            archive.writestr("config.json", json.dumps({"class_name": kind}))
        (run / "config.json").write_text("{}")
    assert sample_grids.parse_run(f"{runs['IGN']}:64", idempotence=True) == (
        str(runs["IGN"]), 64, None)
    assert sample_grids.parse_run(str(runs["SingleLossGAN"])) == (
        str(runs["SingleLossGAN"]), 0, None)  # samples: any model
    refused = "needs an IGN run, .* holds a model of class SingleLossGAN$"
    with pytest.raises(ValueError, match=refused) as raised:
        sample_grids.parse_run(str(runs["SingleLossGAN"]), idempotence=True)
    assert "\n" not in str(raised.value)
    (runs["IGN"] / "model.keras").write_bytes(b"")  # a broken save: one line, no traceback
    with pytest.raises(ValueError, match="is not a saved Keras model") as raised:
        sample_grids.parse_run(str(runs["IGN"]), idempotence=True)
    assert "\n" not in str(raised.value)
