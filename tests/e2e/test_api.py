"""The core REST endpoints of the v2 protocol: health, metadata, model
readiness and configuration, routing errors."""
import json


def test_health_live_and_ready(server):
    r = server.get("/v2/health/live")
    assert r.status_code == 200 and r.content == b""
    r = server.get("/v2/health/ready")
    assert r.status_code == 200 and r.content == b""


def test_server_metadata(server):
    r = server.get("/v2")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    meta = r.json()
    assert meta["name"] == "inferd"
    assert meta["version"]
    for ext in ("binary_tensor_data", "classification", "model_repository",
                "model_configuration", "statistics"):
        assert ext in meta["extensions"]


def test_model_metadata(server):
    meta = server.get("/v2/models/digits_mlp").json()
    assert meta == {
        "name": "digits_mlp",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [{"name": "scores", "datatype": "FP32", "shape": [-1, 10]}],
    }
    assert server.get("/v2/models/digits_mlp/versions/1").json()["versions"] == ["1"]


def test_model_metadata_without_batching(server):
    meta = server.get("/v2/models/identity_all").json()
    assert meta["platform"] == "identity"
    inputs = {t["name"]: t for t in meta["inputs"]}
    assert inputs["INPUT_BYTES"] == {"name": "INPUT_BYTES", "datatype": "BYTES", "shape": [-1]}
    assert len(meta["outputs"]) == 14


def test_model_ready(server):
    assert server.get("/v2/models/digits_mlp/ready").status_code == 200
    assert server.get("/v2/models/digits_mlp/versions/1/ready").status_code == 200
    r = server.get("/v2/models/digits_mlp/versions/2/ready")
    assert r.status_code == 400 and "version 2" in r.json()["error"]
    r = server.get("/v2/models/nope/ready")
    assert r.status_code == 400 and "nope" in r.json()["error"]


def test_model_config(server):
    cfg = server.get("/v2/models/digits_mlp/config").json()
    assert cfg["name"] == "digits_mlp"
    assert cfg["max_batch_size"] == 64
    assert cfg["input"][0]["name"] == "input"
    assert cfg["input"][0]["data_type"] == "TYPE_FP32"
    assert cfg["input"][0]["dims"] == [64]
    assert cfg["output"][0]["label_filename"] == "labels.txt"
    assert server.get("/v2/models/digits_mlp/versions/1/config").json() == cfg


def test_unknown_paths_and_methods(server):
    for path in ("/", "/v1", "/v2/health", "/v2/health/dead", "/v2/models/digits_mlp/nope",
                 "/v2/models/digits_mlp/versions", "/v2/models/digits_mlp/ready/x",
                 "/v2/repository", "/V2/health/live"):
        r = server.get(path)
        assert r.status_code == 404, path
        assert r.json() == {"error": "Not Found"}, path
    r = server.post("/v2/health/live")
    assert r.status_code == 405 and r.json()["error"]
    r = server.get("/v2/models/digits_mlp/infer")
    assert r.status_code == 405
    r = server.session.put(server.url + "/v2")
    assert r.status_code == 405


def test_unknown_model_and_version(server):
    r = server.get("/v2/models/nope")
    assert r.status_code == 404 and "nope" in r.json()["error"]
    r = server.get("/v2/models/digits_mlp/versions/7")
    assert r.status_code == 404 and "7" in r.json()["error"]
    r = server.get("/v2/models/digits_mlp/versions/x1")
    assert r.status_code == 400


def test_model_names_are_checked(server):
    # raw bytes: HTTP clients would remove the dot segments themselves
    for path in (b"/v2/models/../ready", b"/v2/models/%2e%2e/config",
                 b"/v2/models/.hidden", b"/v2/models/a%2fb", b"/v2/models/../../etc/infer"):
        answer = server.raw(b"GET " + path + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400 "), (path, answer)
        assert b"invalid model name" in payload, path
    r = server.post("/v2/repository/models/..%2f..%2fetc/load")
    assert r.status_code == 400


def test_head_request(server):
    r = server.session.head(server.url + "/v2")
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) > 0
    assert r.content == b""


def test_percent_encoded_names(server):
    assert server.get("/v2/models/digits%5Fmlp/ready").status_code == 200


def test_statistics(server):
    before = server.get("/v2/models/digits_mlp/stats").json()["model_stats"][0]
    body = {"inputs": [{"name": "input", "shape": [2, 64], "datatype": "FP32",
                        "data": [0.0] * 128}]}
    assert server.infer("digits_mlp", body).status_code == 200
    stats = server.get("/v2/models/digits_mlp/versions/1/stats").json()["model_stats"]
    assert len(stats) == 1
    s = stats[0]
    assert s["name"] == "digits_mlp" and s["version"] == "1"
    assert s["inference_count"] == before["inference_count"] + 2
    assert s["execution_count"] == before["execution_count"] + 1
    assert s["inference_stats"]["success"]["count"] == before["inference_stats"]["success"]["count"] + 1
    assert s["inference_stats"]["compute_infer"]["ns"] > 0
    assert s["last_inference"] > 0
    assert any(b["batch_size"] == 2 for b in s["batch_stats"])
    bad = {"inputs": [{"name": "input", "shape": [1, 63], "datatype": "FP32", "data": [0.0] * 63}]}
    assert server.infer("digits_mlp", bad).status_code == 400
    s2 = server.get("/v2/models/digits_mlp/stats").json()["model_stats"][0]
    assert s2["inference_stats"]["fail"]["count"] == s["inference_stats"]["fail"]["count"] + 1
    every = server.get("/v2/models/stats").json()["model_stats"]
    assert {m["name"] for m in every} >= {"digits_mlp", "identity_all"}


def test_json_error_bodies_are_json(server):
    r = server.post("/v2/models/digits_mlp/infer", data=b"{")
    assert r.status_code == 400
    assert r.headers["Content-Type"] == "application/json"
    assert isinstance(json.loads(r.content)["error"], str)
