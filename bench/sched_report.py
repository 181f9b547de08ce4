#!/usr/bin/python3
"""bench/sched_report.py OUT PNG DURATION: turns bench/sched-run's results
(OUT/results.txt and the per-run statistics) into its section of
bench/RESULTS.md (printed) and a plot of throughput and p99 latency against
concurrency (PNG)."""
import json
import os
import subprocess
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LABEL = {"off1": "batching off, 1 instance", "on1": "batching on, 1 instance",
         "off2": "batching off, 2 instances", "on2": "batching on, 2 instances"}
DELAY_US = {"digits_mlp": 100, "wide_mlp": 1000, "resnet18": 5000}
MAX_BATCH = {"digits_mlp": 64, "wide_mlp": 64, "resnet18": 8}


def counters(path):
    """(executions, rows, compute ns of all executions) from a /stats answer."""
    with open(path) as f:
        st = json.load(f)["model_stats"][0]
    # batch_stats time each execution once (inference_stats, each request)
    ns = sum(b["compute_infer"]["ns"] for b in st["batch_stats"])
    return st["execution_count"], st["inference_count"], ns


def bound_line(out, m, c, measured):
    """A table row: the batches run `c` of configuration on1 formed, and
    whether its p99 is within max_queue_delay + 2 x their compute time."""
    before = os.path.join(out, f"{m}-on1-{c}-before.json")
    after = os.path.join(out, f"{m}-on1-{c}-after.json")
    if not (os.path.exists(before) and os.path.exists(after)):
        return None
    (e0, r0, t0), (e1, r1, t1) = counters(before), counters(after)
    if e1 <= e0:
        return None
    rows, compute_ms = (r1 - r0) / (e1 - e0), (t1 - t0) / (e1 - e0) / 1e6
    bound = DELAY_US[m] / 1000 + 2 * compute_ms
    p99 = measured[2] / 1000
    within = "yes" if p99 <= bound else ("no" if c <= MAX_BATCH[m] else "n/a")
    return (f"| {c} | {rows:.1f} | {compute_ms:.2f} ms | {bound:.2f} ms | {p99:.2f} ms |"
            f" {within} |")


def main():
    out, png, duration = sys.argv[1], sys.argv[2], sys.argv[3]
    rows = defaultdict(dict)  # (model, config) -> clients -> (rps, p50, p99)
    with open(os.path.join(out, "results.txt")) as f:
        next(f)
        for line in f:
            m, cfg, c, rps, p50, p99, errors = line.split()
            rows[(m, cfg)][int(c)] = (int(rps), int(p50), int(p99), int(errors))
    models = sorted({m for m, _ in rows}, key=lambda m: list(DELAY_US).index(m))

    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 8), squeeze=False)
    for i, m in enumerate(models):
        for cfg in LABEL:
            data = rows.get((m, cfg))
            if not data:
                continue
            cs = sorted(data)
            axes[0][i].plot(cs, [data[c][0] for c in cs], marker="o", label=LABEL[cfg])
            axes[1][i].plot(cs, [data[c][2] / 1000 for c in cs], marker="o", label=LABEL[cfg])
        axes[0][i].set_title(m)
        axes[0][i].set_xscale("log", base=2)
        axes[1][i].set_xscale("log", base=2)
        axes[0][i].set_ylabel("requests / s")
        axes[1][i].set_ylabel("p99 latency (ms)")
        axes[1][i].set_xlabel("concurrent clients")
        axes[0][i].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=80)

    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    print("## Scheduling: batching and instances against concurrency")
    print()
    print(f"Written by `bench/sched-run --duration {duration}`; inferd {commit}. Server pinned to CPU 0"
          " (one HTTP thread), wrk on CPU 1 with C keep-alive connections, each request one row"
          " of fixed random input (binary extension). Two instances share CPU 0: they show what"
          " interleaving does, not a second core. Batching on: dynamic_batching with"
          " max_queue_delay as listed, max_batch_size 64 (resnet18: 8). Plot: bench/sched.png.")
    print()
    for m in models:
        print(f"### {m} (max_queue_delay {DELAY_US[m]} µs)")
        print()
        print("| clients | " + " | ".join(f"{LABEL[c]}: req/s, p50/p99 ms" for c in LABEL) + " |")
        print("|---:|" + "---:|" * len(LABEL))
        clients = sorted({c for cfg in LABEL for c in rows.get((m, cfg), {})})
        for c in clients:
            cells = []
            for cfg in LABEL:
                r = rows.get((m, cfg), {}).get(c)
                errors = f" ({r[3]} errors)" if r and r[3] else ""
                cells.append(f"{r[0]:,}, {r[1] / 1000:.2f}/{r[2] / 1000:.2f}{errors}" if r else "—")
            print(f"| {c} | " + " | ".join(cells) + " |")
        print()
        on, off = rows.get((m, "on1"), {}), rows.get((m, "off1"), {})
        ratios = [f"{c} clients {on[c][0] / off[c][0]:.2f}×" for c in sorted(on)
                  if c in off and off[c][0]]
        if ratios:
            print("Batching on / off (one instance), throughput: " + ", ".join(ratios) + ".")
        bounds = [bound_line(out, m, c, on[c]) for c in sorted(on)]
        bounds = [b for b in bounds if b]
        if bounds:
            print()
            print("Batching on, one instance: the batches each run formed (from the model's"
                  " statistics before and after it) and the p99 bound max_queue_delay + 2 ×"
                  " the mean compute time of those batches. The bound assumes at most one"
                  " batch ahead of a request, which holds while the clients fit in one batch"
                  f" (≤ {MAX_BATCH[m]}); beyond that a request waits for several.")
            print()
            print("| clients | rows per batch | batch compute | bound | p99 | within |")
            print("|---:|---:|---:|---:|---:|:---:|")
            for b in bounds:
                print(b)
        print()


if __name__ == "__main__":
    main()
