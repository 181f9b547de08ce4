"""Malformed requests, each answered with the right 4xx and a JSON error
that names the problem, while the server goes on serving everyone else."""
import json
import select
import socket
import threading
import time

import pytest

from conftest import SLOW

GOOD = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [1.0] * 64}]}


def body(**changes):
    inp = dict(GOOD["inputs"][0])
    inp.update(changes)
    return {"inputs": [inp]}


def binary(header, blob, hlen=None):
    h = json.dumps(header).encode()
    return h + blob, {"Inference-Header-Content-Length": str(len(h) if hlen is None else hlen)}


# (name, model, body bytes or object, extra headers, status, words the error must contain)
CASES = [
    ("not json", "digits_mlp", b"hello", {}, 400, ["JSON"]),
    ("truncated json", "digits_mlp", b'{"inputs": [', {}, 400, ["JSON"]),
    ("trailing garbage", "digits_mlp", json.dumps(GOOD) + "x", {}, 400, ["JSON"]),
    ("empty body", "digits_mlp", b"", {}, 400, []),
    ("top level array", "digits_mlp", [1, 2], {}, 400, ["object"]),
    ("no inputs", "digits_mlp", {"id": "x"}, {}, 400, ["inputs"]),
    ("inputs not a list", "digits_mlp", {"inputs": {}}, {}, 400, ["inputs"]),
    ("empty inputs", "digits_mlp", {"inputs": []}, {}, 400, ["input"]),
    ("input without name", "digits_mlp", {"inputs": [{"shape": [1, 64], "datatype": "FP32",
                                                     "data": [0] * 64}]}, {}, 400, ["name"]),
    ("unknown input", "digits_mlp", body(name="pixels"), {}, 400, ["pixels", "input"]),
    ("missing input", "identity_batched", {"inputs": []}, {}, 400, ["input"]),
    ("wrong datatype", "digits_mlp", body(datatype="FP64"), {}, 400, ["FP64", "FP32"]),
    ("unknown datatype", "digits_mlp", body(datatype="FLOAT"), {}, 400, ["FLOAT"]),
    ("wrong shape", "digits_mlp", body(shape=[1, 63], data=[0.0] * 63), {}, 400,
     ["[1,63]", "64"]),
    ("missing batch dim", "digits_mlp", body(shape=[64]), {}, 400, ["shape"]),
    ("batch too large", "digits_mlp", body(shape=[65, 64], data=[0.0] * 65 * 64), {}, 400,
     ["batch", "64"]),
    ("zero batch", "digits_mlp", body(shape=[0, 64], data=[]), {}, 400, ["batch"]),
    ("negative dim", "digits_mlp", body(shape=[1, -64]), {}, 400, ["shape"]),
    ("shape not ints", "digits_mlp", body(shape=[1, "64"]), {}, 400, ["shape"]),
    ("too few values", "digits_mlp", body(data=[0.0] * 63), {}, 400, ["63", "64"]),
    ("too many values", "digits_mlp", body(data=[0.0] * 65), {}, 400, ["65", "64"]),
    ("string in FP32 data", "digits_mlp", body(data=["a"] * 64), {}, 400, ["input"]),
    ("null in data", "digits_mlp", body(data=[None] * 64), {}, 400, ["input"]),
    ("data and binary both", "digits_mlp",
     body(parameters={"binary_data_size": 256}), {}, 400, ["input"]),
    ("no data", "digits_mlp", {"inputs": [{"name": "input", "shape": [1, 64],
                                          "datatype": "FP32"}]}, {}, 400, ["data"]),
    ("int out of range", "identity_all",
     {"inputs": [{"name": "INPUT_UINT8", "shape": [1], "datatype": "UINT8", "data": [256]}],
      "outputs": [{"name": "OUTPUT_UINT8"}]}, {}, 400, ["256", "UINT8"]),
    ("fraction for int", "identity_all",
     {"inputs": [{"name": "INPUT_INT32", "shape": [1], "datatype": "INT32", "data": [1.5]}],
      "outputs": [{"name": "OUTPUT_INT32"}]}, {}, 400, ["INT32"]),
    ("number for bool", "identity_all",
     {"inputs": [{"name": "INPUT_BOOL", "shape": [1], "datatype": "BOOL", "data": [1]}],
      "outputs": [{"name": "OUTPUT_BOOL"}]}, {}, 400, ["BOOL"]),
    ("duplicate input", "digits_mlp", {"inputs": GOOD["inputs"] * 2}, {}, 400, ["input"]),
    ("unknown output", "digits_mlp", dict(GOOD, outputs=[{"name": "probs"}]), {}, 400,
     ["probs"]),
    ("bad classification", "digits_mlp",
     dict(GOOD, outputs=[{"name": "scores", "parameters": {"classification": "three"}}]), {},
     400, ["classification"]),
    ("reserved parameter", "digits_mlp", dict(GOOD, parameters={"triton_x": 1}), {}, 400,
     ["triton_"]),
    ("nested parameter", "digits_mlp", dict(GOOD, parameters={"a": {"b": 1}}), {}, 400,
     ["parameter"]),
    ("id not a string", "digits_mlp", dict(GOOD, id=5), {}, 400, ["id"]),
    ("deeply nested data", "digits_mlp", body(data=json.loads("[" * 100 + "]" * 100)), {}, 400,
     []),
    ("binary too short", "digits_mlp",
     *binary({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                          "parameters": {"binary_data_size": 256}}]}, b"\0" * 100), 400,
     ["binary"]),
    ("binary size not matching shape", "digits_mlp",
     *binary({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                          "parameters": {"binary_data_size": 252}}]}, b"\0" * 252), 400,
     ["input"]),
    ("binary extra bytes", "digits_mlp",
     *binary({"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                          "parameters": {"binary_data_size": 256}}]}, b"\0" * 300), 400,
     ["binary"]),
    ("header length past body", "digits_mlp",
     *binary(GOOD, b"", hlen=100000), 400, []),
    ("header length cuts json", "digits_mlp", *binary(GOOD, b"", hlen=10), 400, ["JSON"]),
    ("header length not a number", "digits_mlp", json.dumps(GOOD).encode(),
     {"Inference-Header-Content-Length": "ten"}, 400, ["Inference-Header-Content-Length"]),
    ("bad BYTES blob", "identity_all",
     *binary({"inputs": [{"name": "INPUT_BYTES", "shape": [1], "datatype": "BYTES",
                          "parameters": {"binary_data_size": 6}}],
              "outputs": [{"name": "OUTPUT_BYTES"}]}, b"\x09\0\0\0ab"), 400, ["BYTES"]),
    ("unknown model", "nope", GOOD, {}, 404, ["nope"]),
    ("gzip body", "digits_mlp", json.dumps(GOOD).encode(), {"Content-Encoding": "br"}, 415,
     ["Content-Encoding"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_request(server, case):
    name, model, data, headers, status, words = case
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data)
    r = server.post(f"/v2/models/{model}/infer", data=data, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["Content-Type"] == "application/json"
    msg = r.json()["error"]
    assert isinstance(msg, str) and msg
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    # The server still answers a good request.
    assert server.infer("digits_mlp", GOOD).status_code == 200


def status_of(answer):
    line = answer.split(b"\r\n", 1)[0]
    assert line.startswith(b"HTTP/1.1 "), answer[:200]
    return int(line.split()[1])


def error_of(answer):
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


# Framing errors, sent as raw bytes: (name, bytes, status, words)
RAW = [
    ("garbage request line", b"HELLO\r\n\r\n", 400, []),
    ("bad version", b"GET / HTTP/9.9\r\n\r\n", 501, ["version"]),
    ("bad header", b"GET /v2 HTTP/1.1\r\nNo colon\r\n\r\n", 400, ["header"]),
    ("bad content length", b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nContent-Length: x\r\n\r\n",
     400, ["Content-Length"]),
    ("conflicting lengths", b"POST /v2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
     400, ["Content-Length"]),
    ("te and cl", b"POST /v2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
     400, ["Transfer-Encoding"]),
    ("unknown transfer coding", b"POST /v2 HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
     ["chunked"]),
    ("huge content length",
     b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", 413,
     ["limit"]),
    ("bad chunk size",
     b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     400, ["chunk"]),
    ("chunk longer than its size",
     b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\nabc\r\n0\r\n\r\n", 400, ["chunk"]),
    ("headers too large", b"GET /v2 HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431, []),
]


@pytest.mark.parametrize("case", RAW, ids=[c[0] for c in RAW])
def test_malformed_framing(server, case):
    name, data, status, words = case
    answer = server.raw(data)
    assert status_of(answer) == status, answer[:300]
    assert b"Connection: close" in answer.split(b"\r\n\r\n")[0] or status < 400
    msg = error_of(answer)
    for w in words:
        assert w.lower() in msg.lower(), (w, msg)
    assert server.get("/v2/health/ready").status_code == 200


def test_bad_percent_escape(server):
    answer = server.raw(b"GET /v2/models/%zz HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert status_of(answer) == 400
    assert "path" in error_of(answer)


def test_body_cut_off(server):
    """A client that promises 1000 bytes, sends 10 and goes away."""
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"
                  b'{"inputs":')
    assert server.infer("digits_mlp", GOOD).status_code == 200


def test_slow_client_does_not_block_others(start_server, server):
    """One byte a second: the server times the request out (408) and keeps
    answering other clients at full speed meanwhile."""
    srv = start_server(server.repo, ["--http-header-timeout", "2", "--http-body-timeout", "2"])
    srv.wait_ready()
    result = {}

    def slow():
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            request = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"
            start = time.time()
            for byte in request:
                s.sendall(bytes([byte]))
                # one byte a second, until the server answers
                if select.select([s], [], [], 1.0)[0]:
                    break
            result["answer"] = s.recv(4096)
            result["seconds"] = time.time() - start

    t = threading.Thread(target=slow)
    t.start()
    served = 0
    deadline = time.time() + 1.5
    while time.time() < deadline:
        assert srv.infer("digits_mlp", GOOD).status_code == 200
        served += 1
    t.join()
    assert served > 20 // SLOW
    assert status_of(result["answer"]) == 408
    assert "headers" in error_of(result["answer"])
    assert 1.5 < result["seconds"] < 5


def test_slow_body_times_out(start_server, server):
    srv = start_server(server.repo, ["--http-body-timeout", "1"])
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
        s.sendall(b"POST /v2/models/digits_mlp/infer HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")
        answer = s.recv(4096)
    assert status_of(answer) == 408
    assert "body" in error_of(answer)


def test_body_over_the_limit(start_server, server):
    srv = start_server(server.repo, ["--http-max-body", "1K"])
    big = json.dumps(body(data=[1.0] * 64, name="input")) + " " * 2000
    r = srv.post("/v2/models/digits_mlp/infer", data=big)
    assert r.status_code == 413 and "limit" in r.json()["error"]
    # chunked bodies count too
    r = srv.post("/v2/models/digits_mlp/infer", data=iter([big.encode()]))
    assert r.status_code == 413
    assert srv.get("/v2/health/live").status_code == 200


def test_connection_cap(start_server, server):
    srv = start_server(server.repo, ["--http-max-connections", "3"])

    def hold():
        """A connection the server has taken: it answers a request on it. The
        connection that checked the server was live may still count for a
        moment after its client closed it; until it is gone, a new one is
        refused."""
        for _ in range(100):
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            try:
                c.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = c.recv(4096)
                if answer and status_of(answer) == 200:
                    return c
            except OSError:  # refused: closed under us
                pass
            c.close()
            time.sleep(0.05)
        raise AssertionError("the server never took a connection under its cap")

    held = [hold() for _ in range(3)]
    try:
        # the server answers at accept time, before any request
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            answer = s.recv(4096)
        assert status_of(answer) == 503
        assert "connections" in error_of(answer)
    finally:
        for s in held:
            s.close()
    time.sleep(0.2)
    assert srv.get("/v2/health/live").status_code == 200
