"""Inference on the example digits model: JSON and binary, batches, output
selection, classification, against the outputs committed with the model."""
import json
import os
import struct

import numpy as np

from conftest import ROOT

EXPECTED = json.load(open(os.path.join(ROOT, "examples", "digits_mlp", "expected_outputs.json")))
EXAMPLES = EXPECTED["examples"]
TOL = EXPECTED["tolerance"]
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digits_request(rows, **extra):
    body = {"inputs": [{"name": "input", "shape": [len(rows), 64], "datatype": "FP32",
                        "data": [v for r in rows for v in r]}]}
    body.update(extra)
    return body


def test_each_example_json(server):
    for ex in EXAMPLES:
        r = server.infer("digits_mlp", digits_request([ex["input"]]))
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/json"
        out = r.json()
        assert out["model_name"] == "digits_mlp"
        assert out["model_version"] == "1"
        assert "id" not in out
        (scores,) = out["outputs"]
        assert scores["name"] == "scores" and scores["datatype"] == "FP32"
        assert scores["shape"] == [1, 10]
        np.testing.assert_allclose(scores["data"], ex["output"], atol=TOL, rtol=0)
        assert int(np.argmax(scores["data"])) == ex["predicted"]


def test_batch_of_all_examples(server):
    r = server.infer("digits_mlp", digits_request([ex["input"] for ex in EXAMPLES]))
    assert r.status_code == 200, r.text
    (scores,) = r.json()["outputs"]
    assert scores["shape"] == [len(EXAMPLES), 10]
    got = np.array(scores["data"]).reshape(len(EXAMPLES), 10)
    np.testing.assert_allclose(got, [ex["output"] for ex in EXAMPLES], atol=TOL, rtol=0)


def test_nested_data_and_version(server):
    ex = EXAMPLES[0]
    body = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                        "data": [[ex["input"][i * 8:(i + 1) * 8] for i in range(8)]]}]}
    r = server.infer("digits_mlp", body, version=1)
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], ex["output"], atol=TOL, rtol=0)


def test_id_is_echoed_and_outputs_selected(server):
    body = digits_request([EXAMPLES[1]["input"]], id="req-42",
                          outputs=[{"name": "scores"}], parameters={"note": "x", "n": 3})
    out = server.infer("digits_mlp", body).json()
    assert out["id"] == "req-42"
    assert [o["name"] for o in out["outputs"]] == ["scores"]
    body["id"] = ""
    assert "id" not in server.infer("digits_mlp", body).json()


def test_classification(server):
    ex = EXAMPLES[2]
    body = digits_request([ex["input"]], outputs=[{"name": "scores",
                                                   "parameters": {"classification": 3}}])
    r = server.infer("digits_mlp", body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["datatype"] == "BYTES" and out["shape"] == [1, 3]
    order = np.argsort(-np.array(ex["output"]), kind="stable")[:3]
    for text, idx in zip(out["data"], order):
        value, index, label = text.split(":")
        assert int(index) == idx
        assert label == LABELS[idx]
        assert abs(float(value) - ex["output"][idx]) < 1e-5
        assert len(value.split(".")[1]) == 6


def test_binary_output(server):
    ex = EXAMPLES[3]
    body = digits_request([ex["input"]], parameters={"binary_data_output": True})
    r = server.infer("digits_mlp", body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/octet-stream"
    hlen = int(r.headers["Inference-Header-Content-Length"])
    header = json.loads(r.content[:hlen])
    (out,) = header["outputs"]
    assert out["parameters"]["binary_data_size"] == 40
    assert "data" not in out
    got = np.frombuffer(r.content[hlen:], dtype="<f4")
    np.testing.assert_allclose(got, ex["output"], atol=TOL, rtol=0)


def test_binary_input_and_per_output_binary_flag(server):
    rows = [EXAMPLES[4]["input"], EXAMPLES[5]["input"]]
    blob = np.array(rows, dtype="<f4").tobytes()
    header = json.dumps({"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(blob)}}],
                         "outputs": [{"name": "scores", "parameters": {"binary_data": False}}],
                         "parameters": {"binary_data_output": True}}).encode()
    r = server.post("/v2/models/digits_mlp/infer", data=header + blob,
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    got = np.array(r.json()["outputs"][0]["data"]).reshape(2, 10)
    np.testing.assert_allclose(got, [EXAMPLES[4]["output"], EXAMPLES[5]["output"]],
                               atol=TOL, rtol=0)


def test_raw_binary_request(server):
    ex = EXAMPLES[6]
    blob = np.array(ex["input"], dtype="<f4").tobytes()
    r = server.post("/v2/models/digits_mlp/infer", data=blob,
                    headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [1, 10]
    np.testing.assert_allclose(out["data"], ex["output"], atol=TOL, rtol=0)


def test_raw_binary_request_wrong_size(server):
    r = server.post("/v2/models/digits_mlp/infer", data=b"\0" * 12,
                    headers={"Inference-Header-Content-Length": "0"})
    assert r.status_code == 400
    assert "input" in r.json()["error"]


def test_chunked_request_body(server):
    ex = EXAMPLES[7]
    payload = json.dumps(digits_request([ex["input"]])).encode()
    pieces = [payload[i:i + 100] for i in range(0, len(payload), 100)]
    r = server.post("/v2/models/digits_mlp/infer", data=iter(pieces))
    assert r.status_code == 200, r.text
    np.testing.assert_allclose(r.json()["outputs"][0]["data"], ex["output"], atol=TOL, rtol=0)


def test_expect_continue(server):
    payload = json.dumps(digits_request([EXAMPLES[0]["input"]])).encode()
    head = (b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(payload))
    import socket
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(head)
        first = s.recv(1024)
        assert first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        s.sendall(payload)
        data = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        assert data.startswith(b"HTTP/1.1 200 OK")


def test_pipelined_requests_answer_in_order(server):
    bodies = [json.dumps(digits_request([ex["input"]], id=str(i))).encode()
              for i, ex in enumerate(EXAMPLES)]
    wire = b"".join(b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(b), b) for b in bodies)
    wire += b"GET /v2/health/live HTTP/1.1\r\nConnection: close\r\n\r\n"
    answer = server.raw(wire, shutdown=False)
    ids = []
    rest = answer
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                     .split(b":")[1])
        body, rest = rest[:length], rest[length:]
        if body:
            ids.append(json.loads(body)["id"])
    assert ids == [str(i) for i in range(len(EXAMPLES))]
