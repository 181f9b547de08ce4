"""Real models end to end: inferd serves scripts/make-models' repository
(resnet18, mobilenet_v2, a transformer encoder and a wide MLP, random weights) and must
answer, for fixed inputs sent with the binary tensor extension, what ONNX
Runtime computed for them (bench/onnx/ort_reference.js), within 1e-4.

The repository is made (or found up to date) by scripts/make-models in
build/models, or $INFERD_MODELS. Making it needs node and onnxruntime-node:
scripts/make-models installs bench/node's packages when they are missing
(npm install --ignore-scripts); when it cannot, these tests fail with its
output rather than skip.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT, Server, make_repo

MODELS_DIR = os.environ.get("INFERD_MODELS", os.path.join(ROOT, "build", "models"))
MAKE_MODELS = os.path.join(ROOT, "scripts", "make-models")
MODELS = ("resnet18", "mobilenet_v2", "encoder", "wide_mlp")
ATOL = 1e-4
NUMPY_DTYPE = {"FP32": "<f4", "INT64": "<i8"}

# What each model's configuration and metadata must say.
EXPECTED_IO = {
    "resnet18": ([("input", "FP32", [3, 224, 224])], [("output", "FP32", [1000])]),
    "mobilenet_v2": ([("input", "FP32", [3, 224, 224])], [("output", "FP32", [1000])]),
    "encoder": ([("tokens", "INT64", [-1])], [("output", "FP32", [-1, 256])]),
    "wide_mlp": ([("input", "FP32", [512])], [("output", "FP32", [10])]),
}


# ---- shared with test_memory.py ------------------------------------------------

def make_models():
    """Runs scripts/make-models (a no-op when the models are up to date);
    fails the test with its output when it cannot make them."""
    try:
        r = subprocess.run([MAKE_MODELS, MODELS_DIR], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.fail(f"scripts/make-models could not run: {e}", pytrace=False)
    if r.returncode != 0:
        pytest.fail("scripts/make-models failed (it needs /usr/bin/python3 with torch, "
                    "torchvision and onnx, node, and npm to install onnxruntime-node):\n"
                    + r.stdout.decode("utf-8", "replace"), pytrace=False)
    return MODELS_DIR


def manifest(name):
    with open(os.path.join(MODELS_DIR, name, "reference", "manifest.json")) as f:
        return json.load(f)


def reference_case(name, case):
    """The case's inputs and ONNX Runtime's outputs: two lists of
    (name, datatype, array)."""
    c = next(c for c in manifest(name)["cases"] if c["name"] == case)
    ref_dir = os.path.join(MODELS_DIR, name, "reference")

    def read(t):
        a = np.fromfile(os.path.join(ref_dir, t["file"]), dtype=NUMPY_DTYPE[t["datatype"]])
        return t["name"], t["datatype"], a.reshape(t["shape"])

    return [read(t) for t in c["inputs"]], [read(t) for t in c["outputs"]]


def binary_body(inputs, outputs):
    """A request with every input as a binary blob and every output asked
    for in binary: (body, headers)."""
    header = json.dumps({
        "inputs": [{"name": n, "shape": list(a.shape), "datatype": dt,
                    "parameters": {"binary_data_size": a.nbytes}} for n, dt, a in inputs],
        "outputs": [{"name": n, "parameters": {"binary_data": True}} for n in outputs],
    }).encode()
    body = header + b"".join(np.ascontiguousarray(a).tobytes() for _, _, a in inputs)
    return body, {"Inference-Header-Content-Length": str(len(header)),
                  "Content-Type": "application/octet-stream"}


def parse_binary_answer(headers, content):
    """{output name: (datatype, array)} from an answer with binary outputs."""
    hlen = int(headers["Inference-Header-Content-Length"])
    header = json.loads(content[:hlen])
    out, pos = {}, hlen
    for o in header["outputs"]:
        size = o["parameters"]["binary_data_size"]
        a = np.frombuffer(content[pos:pos + size], dtype=NUMPY_DTYPE[o["datatype"]])
        out[o["name"]] = (o["datatype"], a.reshape(o["shape"]))
        pos += size
    assert pos == len(content), f"{len(content) - pos} bytes after the outputs"
    return out


def require_ready(srv, name):
    """Fails, with inferd's reason, unless the model is ready."""
    r = srv.get(f"/v2/models/{name}/ready")
    if r.status_code != 200:
        index = {m["name"]: m for m in srv.post("/v2/repository/index").json()}
        reason = index.get(name, {}).get("reason") or r.text
        pytest.fail(f"{name} is not ready in inferd: {reason}", pytrace=False)


def rss(srv):
    """inferd_process_resident_memory_bytes from /metrics."""
    text = srv.session.get(srv.metrics_url, timeout=30).text
    for line in text.splitlines():
        if line.startswith("inferd_process_resident_memory_bytes "):
            return int(line.split()[1])
    raise AssertionError("no inferd_process_resident_memory_bytes in /metrics")


def post_raw(conn, path, body, headers):
    """POST on a kept-alive http.client connection: (status, headers, body)."""
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    return r.status, r, r.read()


# ---- fixtures ------------------------------------------------------------------

@pytest.fixture(scope="session")
def made_models():
    return make_models()


@pytest.fixture(scope="module")
def models_server(made_models):
    root = make_repo(*(os.path.join(made_models, m) for m in MODELS))
    srv = Server(root)
    srv.wait_loaded()
    yield srv
    srv.stop()
    shutil.rmtree(root)


# ---- tests -------------------------------------------------------------------

def test_repository_is_made(made_models):
    for name in MODELS:
        m = manifest(name)
        assert os.path.getsize(os.path.join(made_models, name, "1", "model.onnx")) \
            == m["files"]["1/model.onnx"]
        assert m["max_batch_size"] == 8
        cases = {c["name"] for c in m["cases"]}
        assert {"b1", "b8"} <= cases, name
        # ONNX Runtime's outputs were checked against torch's when made
        assert m["reference"]["torch_max_abs_diff"] <= 1e-3, name
        assert m["weight_bytes"] > 1_000_000, name


@pytest.mark.parametrize("name", MODELS)
def test_model_loads(models_server, name):
    require_ready(models_server, name)
    index = {m["name"]: m for m in models_server.post("/v2/repository/index").json()}
    assert index[name]["state"] == "READY"


@pytest.mark.parametrize("name", MODELS)
def test_model_metadata_and_config(models_server, name):
    require_ready(models_server, name)
    ins, outs = EXPECTED_IO[name]
    meta = models_server.get(f"/v2/models/{name}").json()
    assert meta == {
        "name": name,
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": n, "datatype": dt, "shape": [-1] + dims} for n, dt, dims in ins],
        "outputs": [{"name": n, "datatype": dt, "shape": [-1] + dims} for n, dt, dims in outs],
    }
    cfg = models_server.get(f"/v2/models/{name}/config").json()
    assert cfg["name"] == name
    assert cfg["backend"] == "onnx"
    assert cfg["max_batch_size"] == 8
    assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["input"]] == \
        [(n, "TYPE_" + dt, dims) for n, dt, dims in ins]
    assert [(t["name"], t["data_type"], t["dims"]) for t in cfg["output"]] == \
        [(n, "TYPE_" + dt, dims) for n, dt, dims in outs]
    stats = models_server.get(f"/v2/models/{name}/stats").json()["model_stats"][0]
    # the weights at least (float32)
    assert stats["memory_usage"][0]["byte_size"] >= manifest(name)["weight_bytes"]


CASES = [("resnet18", "b1"), ("resnet18", "b8"), ("mobilenet_v2", "b1"), ("mobilenet_v2", "b8"),
         ("encoder", "b1"), ("encoder", "b8"), ("encoder", "b2s17")]


@pytest.mark.parametrize("name,case", CASES, ids=[f"{n}-{c}" for n, c in CASES])
def test_outputs_match_onnx_runtime(models_server, name, case):
    require_ready(models_server, name)
    inputs, expected = reference_case(name, case)
    body, headers = binary_body(inputs, [n for n, _, _ in expected])
    r = models_server.post(f"/v2/models/{name}/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text[:2000]
    got = parse_binary_answer(r.headers, r.content)
    assert set(got) == {n for n, _, _ in expected}
    for out_name, datatype, ref in expected:
        dt, a = got[out_name]
        assert dt == datatype, out_name
        assert a.shape == ref.shape, out_name
        assert np.all(np.isfinite(a)), out_name
        diff = float(np.max(np.abs(a.astype(np.float64) - ref)))
        assert diff <= ATOL, (f"{name} {case} '{out_name}': max |inferd - ONNX Runtime| = "
                              f"{diff:.3g} > {ATOL:g} (output magnitude up to "
                              f"{float(np.max(np.abs(ref))):.3g})")


def test_batch_rows_are_independent(models_server):
    """A request's rows do not mix: row i of a batch-8 answer is what the
    same row alone gets."""
    require_ready(models_server, "encoder")
    inputs, expected = reference_case("encoder", "b8")
    (in_name, dt, tokens), = inputs
    body, headers = binary_body([(in_name, dt, tokens[3:4])], ["output"])
    r = models_server.post("/v2/models/encoder/infer", data=body, headers=headers)
    assert r.status_code == 200, r.text[:2000]
    _, row = parse_binary_answer(r.headers, r.content)["output"]
    assert float(np.max(np.abs(row[0] - expected[0][2][3]))) <= ATOL
