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
    """From a /stats answer: (executions, rows) and, per batch size, (batches,
    compute ns): Triton's compute time, input + infer + output."""
    with open(path) as f:
        st = json.load(f)["model_stats"][0]
    sizes = {b["batch_size"]: (b["compute_infer"]["count"],
                               sum(b[k]["ns"] for k in ("compute_input", "compute_infer",
                                                        "compute_output")))
             for b in st["batch_stats"]}
    return st["execution_count"], st["inference_count"], sizes


def bound_line(out, m, c, measured):
    """A table row: the batches run `c` of configuration on1 formed, and
    whether its p99 is within max_queue_delay + 2 x their compute time, read
    two ways: the mean batch's, and the largest batch's (the worst case: a
    request waits for at most the batch ahead of it and its own)."""
    before = os.path.join(out, f"{m}-on1-{c}-before.json")
    after = os.path.join(out, f"{m}-on1-{c}-after.json")
    if not (os.path.exists(before) and os.path.exists(after)):
        return None
    (e0, r0, s0), (e1, r1, s1) = counters(before), counters(after)
    if e1 <= e0:
        return None
    ran = {k: (n - s0.get(k, (0, 0))[0], ns - s0.get(k, (0, 0))[1]) for k, (n, ns) in s1.items()}
    ran = {k: v for k, v in ran.items() if v[0] > 0}
    rows = (r1 - r0) / (e1 - e0)
    mean_ms = sum(ns for _, ns in ran.values()) / (e1 - e0) / 1e6
    largest = max(ran)
    largest_ms = ran[largest][1] / ran[largest][0] / 1e6
    p99 = measured[2] / 1000
    cells = []
    for ms in (mean_ms, largest_ms):
        bound = DELAY_US[m] / 1000 + 2 * ms
        within = "yes" if p99 <= bound else ("no" if c <= MAX_BATCH[m] else "n/a")
        cells.append(f"{bound:.2f} ms ({within})")
    return (f"| {c} | {rows:.1f} | {mean_ms:.2f} ms | {largest} rows: {largest_ms:.2f} ms |"
            f" {p99:.2f} ms | {cells[0]} | {cells[1]} |")


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
                  " statistics before and after it; compute = compute_input + compute_infer +"
                  " compute_output) and the p99 bound max_queue_delay + 2 × batch compute, with"
                  " the mean batch's compute and with the largest batch's (the worst case the"
                  " bound describes: a request waits for at most the batch ahead of it, then"
                  " the delay, then its own batch). It assumes at most one batch ahead of a"
                  " request, which holds while the clients fit in one batch"
                  f" (≤ {MAX_BATCH[m]}); beyond that a request waits for several.")
            print()
            print("| clients | rows per batch | mean batch compute | largest batch compute | p99 |"
                  " bound (mean) | bound (largest) |")
            print("|---:|---:|---:|---:|---:|---:|---:|")
            for b in bounds:
                print(b)
        print()


if __name__ == "__main__":
    main()
