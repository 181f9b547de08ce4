#!/usr/bin/python3
"""bench/check_answer.py KIND FILE: checks a server's answer to a benchmark
request before bench/run times it.

FILE holds what bench/wrk/*.lua wrote under WRK_CHECK: the HTTP status, the
Inference-Header-Content-Length value (maybe empty), then the body. KIND is
"json" (a v2 JSON answer) or "binary" (the binary extension: JSON header then
the output as little-endian float32). The request was the fourth example of
examples/digits_mlp/expected_outputs.json; the scores must match torch's to
1e-5. Prints "ok" or what is wrong; exit status 0 when ok.
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check(kind, raw):
    status, hlen, body = raw.split(b"\n", 2)
    if status != b"200":
        return f"status {status.decode()}: {body[:200].decode(errors='replace')}"
    if kind == "binary":
        if not hlen:
            return "no Inference-Header-Content-Length in the answer"
        n = int(hlen)
        head, blob = json.loads(body[:n]), body[n:]
    else:
        head, blob = json.loads(body), b""
    if head.get("model_name") != "digits_mlp" or head.get("model_version") != "1":
        return f"model_name/model_version wrong: {head.get('model_name')!r} {head.get('model_version')!r}"
    out = head.get("outputs") or [{}]
    out = out[0]
    if out.get("name") != "scores" or out.get("datatype") != "FP32" or out.get("shape") != [1, 10]:
        return f"output wrong: {json.dumps(out)[:200]}"
    if kind == "binary":
        if out.get("parameters", {}).get("binary_data_size") != 40 or len(blob) != 40:
            return f"binary output wrong: parameters {out.get('parameters')}, {len(blob)} bytes"
        scores = struct.unpack("<10f", blob)
    else:
        scores = out.get("data")
    if not isinstance(scores, (list, tuple)) or len(scores) != 10:
        return f"output data is not 10 numbers: {str(scores)[:200]}"
    with open(os.path.join(ROOT, "examples", "digits_mlp", "expected_outputs.json")) as f:
        want = json.load(f)["examples"][3]["output"]
    worst = max(abs(a - b) for a, b in zip(scores, want))
    if worst > 1e-5:
        return f"scores differ from torch's by {worst:g}"
    return None


def main():
    kind, path = sys.argv[1], sys.argv[2]
    try:
        with open(path, "rb") as f:
            problem = check(kind, f.read())
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError,
            struct.error) as e:
        problem = f"unreadable answer ({e.__class__.__name__}: {e})"
    print(problem or "ok")
    sys.exit(1 if problem else 0)


if __name__ == "__main__":
    main()
