#!/usr/bin/python3
"""bench/sched_request.py INPUT DIMS OUT: the request bench/sched-run sends:
one row (batch 1) of fixed random FP32 data (seed 0) for the input named
INPUT with per-row dims DIMS (comma separated), in the binary tensor
extension, asking for binary outputs. Writes the body to OUT and prints the
JSON header's length (for Inference-Header-Content-Length)."""
import json
import sys

import numpy as np


def main():
    name, dims, out = sys.argv[1], [int(d) for d in sys.argv[2].split(",")], sys.argv[3]
    blob = np.random.default_rng(0).standard_normal([1] + dims).astype("<f4").tobytes()
    header = json.dumps({"inputs": [{"name": name, "shape": [1] + dims, "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(blob)}}],
                         "parameters": {"binary_data_output": True}}).encode()
    with open(out, "wb") as f:
        f.write(header + blob)
    print(len(header))


if __name__ == "__main__":
    main()
