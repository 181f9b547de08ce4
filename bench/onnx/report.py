#!/usr/bin/python3
"""bench/onnx/report.py: the "onnx" section of bench/RESULTS.md from
bench/onnx/run's raw results.

    report.py RUNS.jsonl DUMPS_DIR --command C --started T --machine M
              --load L --software S --settings X   > section.md

RUNS.jsonl has one line per run: {"case": "MODEL.bB.tT", "round", "runtime"
("inferd" or "onnxruntime"), "exit", "others" (CPUs other processes used
meanwhile), "log", "result" (the program's JSON line, or null)}. DUMPS_DIR
holds CASE.RUNTIME.bin, each runtime's first output for the case. A row's
figures are the medians over its rounds; its max |diff| compares the two
dumps as float32. Also prints nothing but the section: the driver shows it.
"""
import argparse
import json
import os
import statistics
import sys

import numpy as np

MODELS = {
    "resnet18": "resnet18",
    "mobilenet_v2": "mobilenet_v2",
    "encoder": "encoder, seq 128",
    "digits_mlp": "digits_mlp",
}
RUNTIMES = ("inferd", "onnxruntime")


def fmt_us(v):
    if v is None:
        return "—"
    if v < 10:
        return f"{v:.2f} µs"
    if v < 1000:
        return f"{v:.0f} µs" if v >= 100 else f"{v:.1f} µs"
    return f"{v / 1000:.2f} ms"


def fmt_ms(v):
    return "—" if v is None else (f"{v:.1f} ms" if v < 1000 else f"{v / 1000:.2f} s")


def load_runs(path):
    cases = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            model, b, t = r["case"].rsplit(".", 2)
            key = (model, int(b[1:]), int(t[1:]))
            cases.setdefault(key, {rt: [] for rt in RUNTIMES})[r["runtime"]].append(r)
    return cases


def summarize(runs):
    """Medians of the successful runs, or the first failure's reason."""
    ok = [r["result"] for r in runs if r["result"] and "error" not in r["result"]]
    if ok:
        med = {k: statistics.median(x[k] for x in ok)
               for k in ("p50_us", "p99_us", "mean_us", "load_ms", "first_ms")}
        med["iterations"] = min(x["iterations"] for x in ok)
        med["rounds"] = len(ok)
        return med, None
    for r in runs:
        res = r["result"]
        if res and "error" in res:
            return None, f"{res['stage']}: {res['error']}"
        if r["log"]:
            tail = ""
            try:
                with open(r["log"] + ".err", errors="replace") as f:
                    tail = f.read().strip().splitlines()[-1:] or [""]
                    tail = tail[0][:200]
            except OSError:
                pass
            return None, f"exit {r['exit']} without a result{': ' + tail if tail else ''} ({r['log']}.err)"
    return None, "not run"


def max_diff(dumps, case):
    a, b = (os.path.join(dumps, f"{case}.{rt}.bin") for rt in RUNTIMES)
    if not (os.path.exists(a) and os.path.exists(b)):
        return "—"
    x, y = np.fromfile(a, dtype="<f4"), np.fromfile(b, dtype="<f4")
    if x.size != y.size:
        return f"sizes differ ({x.size} vs {y.size} floats)"
    if not x.size:
        return "—"
    return f"{float(np.max(np.abs(x.astype(np.float64) - y))):.1e}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs")
    ap.add_argument("dumps")
    for opt in ("command", "started", "machine", "load", "software", "settings"):
        ap.add_argument("--" + opt, default="?")
    a = ap.parse_args()
    cases = load_runs(a.runs)
    settings = dict(kv.split("=", 1) for kv in a.settings.split())

    out = []
    w = out.append
    w("## ONNX executor in-process: inferd vs ONNX Runtime")
    w("")
    w(f"Written by `{a.command}` on {a.started}. Numbers drift from run to run and with other")
    w("load on the machine: compare rows of one run only.")
    w("")
    w(f"- Machine: {a.machine}")
    w(f"- Load average: {a.load}")
    w(f"- Software: {a.software}")
    w("- Method: each runtime loads the model in its own process and executes one fixed input "
      "(the same")
    w("  values for both: bench/onnx/ort_common.js's generator, repeated in bench/onnx_bench.c) "
      f"{settings.get('warmup', '?')} times as")
    w(f"  warm-up, then for {settings.get('seconds', '?')} s (or "
      f"{settings.get('iterations', '?')} executes); latency is one execute "
      "(inferd: the backend's `execute`")
    rounds = settings.get("rounds", "?")
    w("  with outputs from a request arena; ONNX Runtime: `await session.run()`, which adds "
      "onnxruntime-node's")
    w("  per-call overhead: digits_mlp's ORT figures are mostly that). Percentiles are "
      "nearest-rank over the timed")
    w(f"  executes; each figure is the median of {rounds} round{'' if rounds == '1' else 's'}, "
      "the two runtimes taking turns. 1 thread: pinned to CPU 0; 2 threads:")
    w("  CPUs 0-1 (inferd: model parameter intra_op_threads; ONNX Runtime: intraOpNumThreads, "
      "interOpNumThreads 1,")
    w("  sequential, graphOptimizationLevel 'all'). Load is model_load + instance_create vs "
      "InferenceSession.create.")
    w("  max |diff|: largest absolute difference between the two runtimes' first outputs. "
      "Other load: the CPU (in")
    w("  cores) that other processes used during the case's runs, at most; above 0.1 the "
      "machine was shared.")
    w("- Models: scripts/make-models (random weights, seed 0; see its header); digits_mlp is "
      "examples/models/digits_mlp.")
    w("")
    w("| model | batch | threads | inferd p50 | inferd p99 | ORT p50 | ORT p99 | inferd / ORT p50 "
      "| inferd load | ORT load | max \\|diff\\| | other load |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    notes = {}
    order = list(MODELS)
    for key in sorted(cases, key=lambda k: (order.index(k[0]) if k[0] in order else 99, k[2], k[1])):
        model, batch, threads = key
        runs = cases[key]
        s = {}
        for rt in RUNTIMES:
            med, why = summarize(runs[rt])
            s[rt] = med
            if why:
                tag = "inferd" if rt == "inferd" else "ONNX Runtime"
                notes.setdefault((model, rt), f"{model}: {tag}: {why}")
        cells = []
        for rt in RUNTIMES:
            if s[rt]:
                cells += [fmt_us(s[rt]["p50_us"]), fmt_us(s[rt]["p99_us"])]
            else:
                n = list(notes).index((model, rt)) + 1
                cells += [f"cannot run ({n})", "—"]
        ratio = (f"{s['inferd']['p50_us'] / s['onnxruntime']['p50_us']:.2f}×"
                 if s["inferd"] and s["onnxruntime"] else "—")
        loads = [fmt_ms(s[rt]["load_ms"]) if s[rt] else "—" for rt in RUNTIMES]
        case = f"{model}.b{batch}.t{threads}"
        others = [r["others"] for rt in RUNTIMES for r in runs[rt] if r["log"]]
        busy = max(others) if others else None
        busy_s = "—" if busy is None else f"{busy:.2f}" + (" (busy)" if busy > 0.1 else "")
        w(f"| {MODELS.get(model, model)} | {batch} | {threads} | " + " | ".join(cells)
          + f" | {ratio} | {loads[0]} | {loads[1]} | {max_diff(a.dumps, case)} | {busy_s} |")
    if notes:
        w("")
        for i, text in enumerate(notes.values(), 1):
            w(f"({i}) {text}")
    w("")
    w("Commands (per case; M the model file, B the batch, T the threads, CPUS 0 or 0-1):")
    w("")
    w("```")
    w(f"scripts/make-models {settings.get('models', 'build/models')}")
    common = (f"--model M --batch B --seq 128 --threads T --iterations {settings.get('iterations')} "
              f"--warmup {settings.get('warmup')} --max-seconds {settings.get('seconds')}")
    w(f"taskset -c CPUS {settings.get('bench', 'build/onnx_bench')} {common}")
    w(f"taskset -c CPUS node bench/onnx/ort_bench.js {common}")
    w("```")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
