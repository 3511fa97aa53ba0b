"""bench/gpu_check/: `--quick` runs every section end to end on the CPU and
writes a passing report; its checks fail when what they compare differs.

The quick run is three processes side by side (train_ign.py and the check's two
children; docs/GPU.md gives its cost); the other tests here call the package's
functions directly and take well under a second.
"""

import json
import os
import subprocess
import sys
import tempfile

import pytest
import numpy as np
import tensorflow as tf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from gpu_check import equality, markdown, presets, record, reference, speed  # noqa: E402
from ogan_ign import training  # noqa: E402

SECTIONS = {"environment", "equality", "precision", "determinism", "speed", "train_ign"}


def python_path():
    """The environment of a child that imports this repository."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))


@pytest.mark.slow
class QuickRunTest(tf.test.TestCase):

    def test_quick_run_writes_a_passing_report(self):
        with tempfile.TemporaryDirectory() as out:
            done = subprocess.run([sys.executable, os.path.join("bench", "gpu_check"),
                                   f"--out={out}", "--quick"], cwd=ROOT, env=python_path(),
                                  capture_output=True, text=True, timeout=600)
            self.assertEqual(done.returncode, 0, msg=done.stdout[-4000:] + done.stderr[-4000:])
            with open(os.path.join(out, "gpu_check.json")) as f:
                report = json.load(f)
            with open(os.path.join(out, "gpu_check.md")) as f:
                text = f.read()

        self.assertEqual(set(report["sections"]), SECTIONS)
        for name, section in report["sections"].items():
            self.assertEqual(section["status"], "ok", msg=f"{name}: {section}")
        self.assertTrue(report["passed"])

        replicas = [c for c in report["checks"] if c["section"] == "equality"]
        self.assertCountEqual([c["name"] for c in replicas], [
            f"{m} XLA {x}" for m in ("gan", "ogan", "ign") for x in ("off", "on")])
        for check in replicas:
            self.assertTrue(check["passed"], msg=check)
            self.assertLess(check["value"], check["limit"], msg=check)
            self.assertEqual(check["limit"], equality.ATOL_XLA if "on" in check["name"]
                             else equality.ATOL)
            self.assertGreater(check["step"], equality.MIN_STEP)
            self.assertGreater(check["reference_gap"], equality.MIN_GAP)
            self.assertTrue(check["replicas_agree"])
        precision = [c for c in report["checks"] if c["section"] == "precision"]
        self.assertLen(precision, 6)  # 3 models × bf16, fp16
        self.assertTrue(all(c["passed"] for c in precision))
        (resume,) = [c for c in report["checks"] if c["section"] == "determinism"]
        self.assertTrue(resume["passed"])
        self.assertEqual(resume["value"], 0.0)
        self.assertEqual(resume["steps"], [2, 4, 4])

        timed = report["sections"]["speed"]
        auto = speed.auto_precision()
        self.assertEqual(timed["auto_precision"], auto)
        self.assertLen(timed["rows"], len(speed.grid_settings(
            presets.PRESETS["quick"].speed_grid, "gan", auto, True)))
        self.assertEqual({r["devices"] for r in timed["rows"]}, {1, 2})
        for row in timed["rows"]:
            self.assertGreater(row["img_per_s"], 0)
            self.assertGreater(row["of_peak"], 0)
        self.assertIn("scaling_xla_off", timed["summary"][0])
        self.assertLen(report["sections"]["determinism"]["cost"], 1)
        auto = report["sections"]["environment"]["auto"]
        self.assertFalse(auto["jit_compile"]["one device, no strategy"])  # Keras: off on CPUs
        precision = training.resolve_precision("auto")[0]
        self.assertIn(f"1 replica(s); precision {precision} (auto: ",
                      report["sections"]["train_ign"]["first_line"])
        for heading in ("## Environment", "## Equality", "## bf16 and fp16", "## Op determinism",
                        "## Speed", "## train_ign.py", "--jit_compile"):
            self.assertIn(heading, text)

    def test_both_spellings_of_the_command_take_only_the_checks_flags(self):
        for command in (os.path.join("bench", "gpu_check"), os.path.join("bench", "gpu_check.py")):
            with self.subTest(command=command):
                done = subprocess.run([sys.executable, command, "--helpshort"], cwd=ROOT,
                                      env=python_path(), capture_output=True, text=True,
                                      timeout=300)
                self.assertIn("--speed_seconds", done.stdout, msg=done.stderr[-2000:])
                self.assertEqual(done.returncode, 0)  # help is no failure
                self.assertNotIn("--sizes", done.stdout)  # bench_scale.py's
                self.assertNotIn("--inject_mismatch", done.stdout)  # the tests' switch
                done = subprocess.run([sys.executable, command, "--out=/nonexistent/x",
                                       "--speed_seconds=0"], cwd=ROOT, env=python_path(),
                                      capture_output=True, text=True, timeout=300)
                self.assertEqual(done.returncode, 1)
                self.assertIn("--speed_seconds must be positive, got 0.0", done.stderr)


class ChecksCanFailTest(tf.test.TestCase):

    def run_record(self):
        return record.Run(self.get_temp_dir(), presets.PRESETS["quick"], "quick",
                          results=os.path.join(self.get_temp_dir(), "results.json"))

    def test_equality_check_fails_on_a_mismatch_and_on_a_vacuous_comparison(self):
        run = self.run_record()
        want = [np.zeros((3, 2)), np.ones(4)]
        near = [w + 1e-10 for w in want]
        off = [want[0], want[1] + 1e-3]
        def check(name, got, step=0.1, gap=0.1, agree=True):
            return equality.equality_check(run, name, equality.Comparison(
                got, want, 1e-9, step, gap, agree=agree))

        self.assertTrue(check("equal", near))
        self.assertFalse(check("mismatch", off))
        # Equal, but the step moved nothing / the references did not differ.
        self.assertFalse(check("no step", want, step=0.0))
        self.assertFalse(check("no gap", want, gap=0.0))
        self.assertFalse(check("replicas", want, agree=False))
        checks = {c["name"]: c for c in run.report["checks"]}
        self.assertAlmostEqual(checks["mismatch"]["value"], 1e-3)
        self.assertEqual([c["passed"] for c in run.report["checks"]],
                         [True, False, False, False, False])

    def test_replicas_agree_only_with_every_copy_there(self):
        # One device holds one copy of each variable: two replicas cannot be
        # said to agree on it, so a run that lost its second replica fails.
        net = reference.dense_net((3,), 2, "net")
        self.assertTrue(reference.replicas_agree(net, 1))
        self.assertFalse(reference.replicas_agree(net, 2))
        self.assertEqual(reference.disagreeing(net, 2), [v.path for v in net.weights])

    def test_exit_status_is_one_for_a_failed_check_or_an_unfinished_section(self):
        ok = {"sections": {"equality": {"status": "ok"}},
              "checks": [{"passed": True}, {"passed": True}]}
        self.assertEqual(record.exit_status(ok), 0)
        self.assertEqual(record.exit_status(
            {**ok, "checks": [{"passed": True}, {"passed": False}]}), 1)
        self.assertEqual(record.exit_status(
            {**ok, "sections": {"equality": {"status": "failed: RuntimeError: x"}}}), 1)

    def test_the_report_names_what_failed(self):
        report = {"mode": "full", "command": "gpu_check.py", "started": "now", "passed": False,
                  "seconds_total": 1.0, "load_average": ["0", "0", "0"],
                  "sections": {"equality": {"status": "failed: RuntimeError: no GPU:1",
                                            "seconds": 0.5},
                               "speed": {"status": "failed: the process ended during this "
                                                   "section", "seconds": 0.0}},
                  "checks": [{"section": "precision", "name": "ign fp16 steps finite",
                              "passed": False, "value": None, "limit": None}]}
        text = markdown.markdown(report)
        self.assertIn("**FAILED**: 1 check(s) failed, 2 section(s) did not finish", text)
        self.assertIn("failed: RuntimeError: no GPU:1", text)
        self.assertIn("failed: the process ended during this section", text)
        self.assertIn("- precision: ign fp16 steps finite", text)

    def test_section_failure_is_one_line_and_the_next_section_runs(self):
        run = self.run_record()

        def broken(_):
            raise ValueError("no such device\nsecond line")

        run.section("first", broken)
        run.section("second", lambda _: {"value": 1})
        with open(run.results) as f:
            saved = json.load(f)["sections"]
        self.assertEqual(saved["first"]["status"], "failed: ValueError: no such device")
        self.assertIn("Traceback", saved["first"]["traceback"])
        self.assertEqual(saved["second"]["status"], "ok")
        self.assertEqual(saved["second"]["value"], 1)

    def test_every_scaling_row_has_its_one_device_partner_on_either_kind_of_cpu(self):
        # The CPU decides what auto picks: run the grid and its summary as on a CPU
        # with native bfloat16 and as on one without, whatever this machine is.
        for flags, auto in (({"amx_bf16", "avx512f"}, "bf16"), ({"avx512f", "avx2"}, "fp32")):
            with self.subTest(cpu=sorted(flags)):
                self.assertEqual(speed.auto_precision(cpu=flags), auto)
                for preset in presets.PRESETS.values():
                    for kind in presets.MODELS:
                        settings = speed.grid_settings(preset.speed_grid, kind, auto, True)
                        self.assertLen(set(settings), len(settings))
                        self.assertNotIn("auto", {p for _, _, p in settings})
                        self.assertNotIn("half", {p for _, _, p in settings})
                        for where, xla, prec in settings:
                            if where == "all":
                                self.assertIn(("one", xla, prec), settings)
                        if not settings:
                            continue
                        rows = [{"model": kind, "size": 32, "devices": 2 if w == "all" else 1,
                                 "xla": x, "precision": p, "img_per_s": 10.0}
                                for w, x, p in settings]
                        (entry,) = speed.speed_summary(rows, auto)
                        for xla in {x for w, x, _ in settings if w == "all"}:
                            self.assertAlmostEqual(entry[f"scaling_xla_{xla}"], 0.5)
                        # One device only: no all-devices rows, so no partner is added.
                        alone = speed.grid_settings(preset.speed_grid, kind, auto, False)
                        self.assertEqual({w for w, _, _ in alone}, {"one"})

    def test_speed_summary_names_the_faster_xla_setting_and_the_scaling(self):
        def row(kind, xla, rate, devices=1, precision="fp32"):
            return {"model": kind, "size": 64, "devices": devices, "xla": xla,
                    "precision": precision, "img_per_s": rate}

        rows = [row("gan", "off", 100.0), row("gan", "on", 150.0), row("ign", "off", 80.0),
                row("ign", "on", 60.0), row("gan", "off", 180.0, devices=2),
                row("gan", "off", 120.0, precision="bf16")]
        summary = {e["model"]: e for e in speed.speed_summary(rows, "fp32")}
        self.assertEqual(summary["gan"]["faster"], "on")
        self.assertAlmostEqual(summary["gan"]["xla_on_over_off"], 1.5)
        self.assertEqual(summary["ign"]["faster"], "off")
        self.assertAlmostEqual(summary["gan"]["scaling_xla_off"], 0.9)  # 180 / (2 × 100)
        self.assertAlmostEqual(summary["gan"]["bf16_over_fp32"], 1.2)
        self.assertNotIn("scaling_xla_off", summary["ign"])
        self.assertEqual(speed.recommendation(list(summary.values())),
                         {"gan": "on", "ign": "off"})


if __name__ == "__main__":
    tf.test.main()
