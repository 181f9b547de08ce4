"""Scheduling: instances, dynamic batching, deadlines, back-pressure,
priorities, cancellation, statistics and warmup."""
import concurrent.futures
import json
import os
import socket
import struct
import threading
import time

import numpy as np
import requests

from conftest import EXAMPLES, SLOW, make_repo

DIGITS_ONNX = os.path.join(EXAMPLES, "digits_mlp", "1", "model.onnx")


def identity(delay_ms=0, max_batch=8, extra=""):
    return f"""
backend: "identity"
max_batch_size: {max_batch}
input [ {{ name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] }} ]
parameters {{ key: "delay_ms" value: {{ string_value: "{delay_ms}" }} }}
{extra}
"""


def digits(extra=""):
    return f"""
backend: "onnx"
max_batch_size: 32
input [ {{ name: "input" data_type: TYPE_FP32 dims: [ 64 ] }} ]
output [ {{ name: "scores" data_type: TYPE_FP32 dims: [ 10 ] }} ]
{extra}
"""


def model(config):
    return {"config.pbtxt": config, "1/.keep": ""}


def onnx_model(config):
    return {"config.pbtxt": config, "1/model.onnx": open(DIGITS_ONNX, "rb").read()}


def body(rows, name="INPUT0", **extra):
    rows = np.asarray(rows, dtype=np.float32)
    b = {"inputs": [{"name": name, "shape": list(rows.shape), "datatype": "FP32",
                     "data": rows.flatten().tolist()}]}
    b.update(extra)
    return b


def stats(srv, name):
    return srv.get(f"/v2/models/{name}/stats").json()["model_stats"][0]


def binary_infer(session, url, rows):
    """A binary request/response, so that answers compare bit for bit."""
    blob = np.asarray(rows, dtype="<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "input", "shape": [len(rows), 64], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "parameters": {"binary_data_output": True}}).encode()
    r = session.post(url, data=head + blob, headers={"Inference-Header-Content-Length": str(len(head))},
                     timeout=60 * SLOW)
    assert r.status_code == 200, r.text
    n = int(r.headers["Inference-Header-Content-Length"])
    return r.content[n:]


def test_batched_answers_equal_single_answers(start_server):
    """Concurrent clients with random inputs, batching on and off: every
    answer is bit for bit the one the request gets alone, and batches form."""
    root = make_repo(extra={
        "digits_batched": onnx_model(digits(
            "dynamic_batching { max_queue_delay_microseconds: 20000 preferred_batch_size: [ 8 ] }")),
        "digits_single": onnx_model(digits()),
        "ident_batched": model(identity(extra="dynamic_batching { max_queue_delay_microseconds: 20000 }")),
    })
    srv = start_server(root)
    srv.wait_ready()
    rng = np.random.default_rng(7)
    inputs = [rng.uniform(0, 16, size=(int(rng.integers(1, 4)), 64)).astype(np.float32)
              for _ in range(96)]
    single = requests.Session()
    alone = [binary_infer(single, srv.url + "/v2/models/digits_single/infer", x) for x in inputs]

    def call(i):
        with requests.Session() as s:
            return binary_infer(s, srv.url + "/v2/models/digits_batched/infer", inputs[i])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        batched = list(pool.map(call, range(len(inputs))))
    for i, (a, b) in enumerate(zip(alone, batched)):
        assert a == b, f"request {i}: batched answer differs from the single one"
    st = stats(srv, "digits_batched")
    assert st["inference_count"] == sum(len(x) for x in inputs)
    assert st["inference_stats"]["success"]["count"] == len(inputs)
    assert st["execution_count"] < len(inputs), "no batch was formed"
    assert any(b["batch_size"] > 3 for b in st["batch_stats"])
    executed = sum(b["compute_infer"]["count"] for b in st["batch_stats"])
    assert executed == st["execution_count"]

    # identity: the batcher must route every row back to its own request
    def ident(i):
        x = np.full((1 + i % 3, 4), float(i), dtype=np.float32)
        r = requests.post(srv.url + "/v2/models/ident_batched/infer", json=body(x), timeout=30)
        assert r.status_code == 200, r.text
        return i, r.json()["outputs"][0]["data"], x

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        for i, data, x in pool.map(ident, range(48)):
            assert data == x.flatten().tolist(), i
    assert stats(srv, "ident_batched")["execution_count"] < 48


def test_two_instances_run_in_parallel(start_server):
    root = make_repo(extra={
        "one": model(identity(delay_ms=400)),
        "two": model(identity(delay_ms=400, extra="instance_group [ { count: 2 kind: KIND_CPU } ]")),
    })
    srv = start_server(root)
    srv.wait_ready()

    def timed(name):
        start = time.time()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            rs = list(pool.map(lambda _: requests.post(
                srv.url + f"/v2/models/{name}/infer", json=body([[1, 2, 3, 4]]), timeout=30),
                range(2)))
        assert all(r.status_code == 200 for r in rs)
        return time.time() - start

    assert timed("two") < 0.75 * SLOW      # side by side
    assert timed("one") >= 0.79             # one after the other
    cfg = srv.get("/v2/models/two/config").json()
    assert cfg["instance_group"][0]["count"] == 2


def background(srv, name, payload, results, key, headers=None):
    def run():
        results[key] = requests.post(srv.url + f"/v2/models/{name}/infer", json=payload,
                                     timeout=60, headers=headers)
        results[key + "_t"] = time.time()
    t = threading.Thread(target=run)
    t.start()
    return t


def test_deadline_expires_in_the_queue(start_server):
    root = make_repo(extra={"slow": model(identity(delay_ms=600))})
    srv = start_server(root)
    srv.wait_ready()
    results = {}
    busy = background(srv, "slow", body([[1, 1, 1, 1]]), results, "busy")
    time.sleep(0.15)
    r = srv.infer("slow", body([[2, 2, 2, 2]], parameters={"timeout": 100000}))
    assert r.status_code == 504, r.text
    assert "timed out in the queue" in r.json()["error"]
    busy.join()
    assert results["busy"].status_code == 200
    st = stats(srv, "slow")
    assert st["execution_count"] == 1 and st["inference_stats"]["fail"]["count"] == 1
    bad = srv.infer("slow", body([[1, 1, 1, 1]], parameters={"timeout": -5}))
    assert bad.status_code == 400 and "timeout" in bad.json()["error"]


def wait_queued(srv, name, n):
    """Until n requests wait in the model's queue (its metrics gauge)."""
    line = f'inferd_inference_queue_size{{model="{name}",version="1"}} {n}\n'
    deadline = time.time() + 5 * SLOW
    while line not in srv.session.get(srv.metrics_url).text:
        assert time.time() < deadline, f"{n} requests never waited in the queue of {name}"
        time.sleep(0.01)


def test_queue_policy_timeout_and_full_queue(start_server):
    policy = """dynamic_batching {
  default_queue_policy { max_queue_size: 2 default_timeout_microseconds: 5000000 allow_timeout_override: true }
}"""
    root = make_repo(extra={"slow": model(identity(delay_ms=500, max_batch=1, extra=policy))})
    srv = start_server(root)
    srv.wait_ready()
    results = {}
    threads = [background(srv, "slow", body([[i] * 4]), results, f"r{i}") for i in range(3)]
    wait_queued(srv, "slow", 2)  # one running, two queued: the queue is full
    start = time.time()
    r = srv.infer("slow", body([[9] * 4]))
    assert r.status_code == 503 and "queue" in r.json()["error"] and "full" in r.json()["error"]
    assert time.time() - start < 0.3 * SLOW, "a full queue must answer at once"
    for t in threads:
        t.join()
    assert all(results[f"r{i}"].status_code == 200 for i in range(3))
    assert srv.get("/v2/models/slow/config").json()["dynamic_batching"][
        "default_queue_policy"]["max_queue_size"] == 2


def test_priorities_reorder(start_server):
    config = identity(delay_ms=300, max_batch=1, extra="""dynamic_batching {
  priority_levels: 2 default_priority_level: 2 }""")
    root = make_repo(extra={"prio": model(config)})
    srv = start_server(root)
    srv.wait_ready()
    results = {}
    first = background(srv, "prio", body([[0] * 4]), results, "first")
    time.sleep(0.1)
    low = background(srv, "prio", body([[1] * 4]), results, "low")
    time.sleep(0.05)
    high = background(srv, "prio", body([[2] * 4], parameters={"priority": 1}), results, "high")
    for t in (first, low, high):
        t.join()
    assert all(results[k].status_code == 200 for k in ("first", "low", "high"))
    assert results["high_t"] < results["low_t"], "the higher priority ran first"
    r = srv.infer("prio", body([[0] * 4], parameters={"priority": 3}))
    assert r.status_code == 400 and "priority" in r.json()["error"]


def test_disconnected_client_work_is_dropped(start_server):
    root = make_repo(extra={"slow": model(identity(delay_ms=500, max_batch=1))})
    srv = start_server(root)
    srv.wait_ready()
    results = {}
    busy = background(srv, "slow", body([[1] * 4]), results, "busy")
    time.sleep(0.15)
    payload = json.dumps(body([[2] * 4])).encode()
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s"
              % (len(payload), payload))
    time.sleep(0.1)
    s.close()  # gone while its request waits in the queue
    busy.join()
    time.sleep(0.8 * SLOW)
    st = stats(srv, "slow")
    assert st["execution_count"] == 1, st
    assert st["inference_stats"]["fail"]["count"] == 1


def test_warmup(start_server):
    warm = identity(delay_ms=0, extra="""model_warmup [ {
  name: "zeros" batch_size: 2 count: 3
  inputs { key: "INPUT0" value: { data_type: TYPE_FP32 dims: [ 4 ] zero_data: true } }
} ]""")
    broken = identity(extra="""model_warmup [ {
  name: "bad" batch_size: 1
  inputs { key: "NOPE" value: { data_type: TYPE_FP32 dims: [ 4 ] random_data: true } }
} ]""")
    root = make_repo(extra={"warm": model(warm), "broken": model(broken)})
    srv = start_server(root)
    srv.wait_loaded()
    assert srv.get("/v2/models/warm/ready").status_code == 200
    # warmup runs are not counted as requests
    assert stats(srv, "warm")["inference_count"] == 0
    index = {m["name"]: m for m in srv.post("/v2/repository/index").json()}
    assert index["broken"]["state"] == "UNAVAILABLE"
    assert "warmup 'bad'" in index["broken"]["reason"] and "NOPE" in index["broken"]["reason"]


def test_metrics_of_scheduling(start_server):
    root = make_repo(extra={"b": model(identity(extra="dynamic_batching { max_queue_delay_microseconds: 20000 }"))})
    srv = start_server(root)
    srv.wait_ready()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: requests.post(srv.url + "/v2/models/b/infer",
                                              json=body([[i] * 4]), timeout=30), range(32)))
    text = srv.session.get(srv.metrics_url).text
    assert 'inferd_inference_queue_size{model="b",version="1"} 0' in text
    assert 'inferd_inference_batch_size_bucket{model="b",version="1",le="+Inf"}' in text
    assert 'inferd_instance_busy_seconds_total{model="b",version="1",instance="0"}' in text
    assert "inferd_inference_queue_duration_us_total" in text
