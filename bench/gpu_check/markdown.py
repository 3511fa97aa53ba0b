"""gpu_check.md: the report as a reader takes it in, one function per section."""

from gpu_check.equality import LR, MIN_GAP, MIN_STEP
from gpu_check.presets import NAMES
from gpu_check.speed import recommendation


def fmt(value, digits=3):
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def percent(value):
    return None if value is None else f"{value:.0%}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def headline(report):
    """The title, the verdict, the sections' times and the processes' cost."""
    sections = report["sections"]
    failed = [c for c in report["checks"] if not c["passed"]]
    unfinished = [n for n, s in sections.items() if s["status"] != "ok"]
    verdict = ("**PASSED**: every section ran and every check passed" if report["passed"] else
               f"**FAILED**: {len(failed)} check(s) failed, {len(unfinished)} section(s) "
               "did not finish")
    out = [f"# ogan_ign GPU check ({report['mode']})\n\n",
           f"`{report['command']}` — started {report['started']}, "
           f"{report['seconds_total']} s in all. {verdict}.\n\n",
           table(["section", "status", "seconds", "CPU seconds"],
                 [[n, s["status"], s.get("run_seconds", s["seconds"]),
                   s.get("cpu_seconds") if n != "train_ign" else None]
                  for n, s in sections.items()])]
    processes = report.get("processes", {})
    if processes:
        out.append("\nProcesses (wall / CPU seconds, imports included): " + ", ".join(
            f"{name} {p['wall_seconds']} / {p['cpu_seconds']}" for name, p in processes.items())
            + f"; load average at the start {' '.join(report['load_average'])}.\n")
    return out


def environment(env):
    if env.get("status") != "ok":
        return []
    jit = env["auto"]["jit_compile"]
    return ["\n## Environment\n\n", table(["what", "value"], [
        ["TensorFlow / Keras / Python", f"{env['tensorflow']} / {env['keras']} / "
                                        f"{env['python']}"],
        ["CUDA / cuDNN (build)", f"{env['cuda']} / {env['cudnn']}"],
        ["devices", "; ".join(f"{d['name']} {d.get('device_name', '')} "
                              f"{d.get('compute_capability', '')}".strip()
                              for d in env["physical_devices"])],
        ["device setup here", env["device_setup"]],
        ["TF32 for float32 matmuls/convs", env["tensor_float_32"]],
        ["CPU bf16 instructions", ", ".join(env["cpu_bf16"]) or "none"],
        ["load average", " ".join(env["load_average"])],
        ["--strategy auto", env["auto"]["strategy"]],
        ["--mixed_precision auto", env["auto"]["mixed_precision"]],
        ["--jit_compile auto (one device, no strategy)",
         "on" if jit["one device, no strategy"] else "off"],
        ["--jit_compile auto (as the scripts build)",
         ("on" if jit["as the scripts build (--strategy auto)"] else "off")
         + f": {jit['why']}"]])]


def equality(section, checks):
    if not section.get("devices"):
        return []
    return [f"Devices {', '.join(section['devices'])}; {section['net']} nets in "
            f"{section['dtype']}, global batch {section['batch']}, SGD lr {LR}. "
            f"'step' is the largest weight change of the step, 'gap' the largest "
            f"difference between the two references (synchronized vs per-replica "
            f"BatchNorm); both must exceed {MIN_STEP} / {MIN_GAP}.\n\n",
            table(["check", "max difference", "tolerance", "step", "gap", "replicas agree",
                   "passed"],
                  [[c["name"], c["value"], c["limit"], c["step"], c["reference_gap"],
                    c["replicas_agree"], c["passed"]] for c in checks])]


def precision(section, checks):
    if not section.get("rows"):
        return []
    return [table(["model", "precision", "finite", "weights moved", "last loss", "loss scale"],
                  [[r["model"], r["precision"], r["finite"], r["moved"], r["loss"],
                    r["loss_scale"]] for r in section["rows"]])]


def determinism(section, checks):
    if not section.get("cost"):
        return []
    resume = section["resume"]
    return [table(["check", "max difference", "passed"],
                  [[c["name"], c["value"], c["passed"]] for c in checks]),
            f"\nResume: {resume['model']}, {resume['data']}, batch {resume['batch']}, "
            f"precision {resume['precision']}, strategy default; the second half "
            f"moved weights by up to {fmt(resume['second_half_moved'])}. With op "
            f"determinism on, Keras's jit_compile auto gives "
            f"{'on' if section['jit_compile_auto_with_determinism'] else 'off'}.\n\n"
            f"Cost ({section['setting']}, {section['size']} px, batch "
            f"{section['batch']}):\n\n",
            table(["model", "img/s without", "img/s with", "with / without"],
                  [[c["model"], c["img_per_s_without"], c["img_per_s_with"],
                    c["with_over_without"]] for c in section["cost"]])]


CHECKED = (("equality", "Equality: two replicas against one device", equality),
           ("precision", "bf16 and fp16 steps", precision),
           ("determinism", "Op determinism: resume and cost", determinism))


def checked(sections, checks):
    """The sections whose checks have a table of their own."""
    out = []
    for name, title, body in CHECKED:
        section = sections.get(name)
        if not section:
            continue
        out.append(f"\n## {title}\n\n")
        out += body(section, [c for c in checks if c["section"] == name])
        if section["status"] != "ok":
            out.append(f"\n{section['status']}\n")
    return out


def speed_tables(sp):
    peak = sp["peak_tflop_per_s"]
    return [f"\n## Speed\n\nbench_scale.py's networks (width 64) and FLOP count; batch "
            f"{sp['batch_per_replica']} per replica; {sp['steps']} steps × "
            f"{sp['rounds']} rounds, median. Matmul peak ({sp['matmul_n']}²) here: "
            + ", ".join(f"{k} {v:.3g} TFLOP/s" for k, v in peak.items())
            + f". Auto precision: {sp['auto_precision']}.\n\n",
            table(["model", "px", "devices", "XLA", "precision", "img/s", "spread", "TFLOP/s",
                   "of peak"],
                  [[r["model"], r["size"], r["devices"], r["xla"], r["precision"],
                    r["img_per_s"], percent(r["spread"]), r["tflop_per_s"],
                    percent(r["of_peak"])] for r in sp["rows"]]),
            "\n" + table(["model", "px", "XLA on / off", "faster", "bf16 / fp32", "fp16 / fp32",
                          "scaling (XLA off)", "scaling (XLA on)"],
                         [[e["model"], e["size"], e.get("xla_on_over_off"), e.get("faster"),
                           e.get("bf16_over_fp32"), e.get("fp16_over_fp32"),
                           percent(e.get("scaling_xla_off")), percent(e.get("scaling_xla_on"))]
                          for e in sp["summary"]])]


def jit_advice(summary):
    advice = recommendation(summary)
    if not advice:
        return "\n**--jit_compile:** not measured here (no XLA on/off pair).\n"
    return ("\n**--jit_compile:** " + "; ".join(f"{NAMES[k]} {v}" for k, v in advice.items())
            + " (the faster on one device at the auto precision, at every size timed; "
              "mixed: it depends on the size). The scripts' `auto` leaves XLA off under "
              "`--strategy auto` on GPUs: pass `--jit_compile on` where it says on.\n")


def speed(sp):
    out = []
    if sp.get("rows") is not None:
        out += speed_tables(sp)
        if sp["skipped"]:
            out.append(f"\nNot timed (time budget): {', '.join(sp['skipped'])}.\n")
        if sp.get("failed"):
            out.append("\nCould not run:\n\n" + "".join(f"- {line}\n" for line in sp["failed"]))
        out.append(jit_advice(sp["summary"]))
    if sp and sp.get("status") != "ok":
        out.append(("\n" if sp.get("rows") is not None else "\n## Speed\n\n")
                   + f"{sp['status']}\n")
    return out


def train_ign(run):
    if not run:
        return []
    if run.get("status") != "ok":
        return ["\n## train_ign.py\n\n", f"{run['status']}\n"]
    return ["\n## train_ign.py\n\n",
            f"`{run['command']}` ({run['run_seconds']} s)\n\n    {run['first_line']}\n"
            f"    {run['last_progress']}\n    {run['last_line']}\n"]


def failed_checks(checks):
    failed = [c for c in checks if not c["passed"]]
    if not failed:
        return []
    return ["\n## Failed checks\n\n" + "".join(
        f"- {c['section']}: {c['name']} (value {fmt(c['value'])}, limit {fmt(c['limit'])})\n"
        for c in failed)]


def markdown(report):
    sections = report["sections"]
    return "".join(headline(report) + environment(sections.get("environment", {}))
                   + checked(sections, report["checks"]) + speed(sections.get("speed", {}))
                   + train_ign(sections.get("train_ign", {})) + failed_checks(report["checks"]))
