"""The model repository: models that cannot load are UNAVAILABLE with a
reason while the others serve; version policies; configurations completed
from the model file; the repository extension (index, load, unload)."""
import os
import shutil

import onnx
import pytest
from onnx import TensorProto, helper

from conftest import EXAMPLES, make_repo

DIGITS = os.path.join(EXAMPLES, "digits_mlp")
ONE = {"inputs": [{"name": "INPUT0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}

IDENTITY_CONFIG = """
backend: "identity"
max_batch_size: 8
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] } ]
"""


def onnx_bytes(op_type, domain=""):
    """A one-node graph y = op(x), x and y float [batch, 4]."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    node = helper.make_node(op_type, ["x"], ["y"], name="the_node", domain=domain)
    graph = helper.make_graph([node], "g", [x], [y])
    opsets = [helper.make_opsetid("", 13)]
    if domain:
        opsets.append(helper.make_opsetid(domain, 1))
    return helper.make_model(graph, opset_imports=opsets).SerializeToString()


BROKEN = {
    "bad_syntax": ({"config.pbtxt": "name: \"bad_syntax\"\ninput [ { name: \"x\" dimz: [1] } ]\n",
                    "1/model.onnx": onnx_bytes("Relu")}, ["config.pbtxt:2", "dimz"]),
    "wrong_name": ({"config.pbtxt": 'name: "other"\nbackend: "onnx"\n',
                    "1/model.onnx": onnx_bytes("Relu")}, ["other", "wrong_name"]),
    "unsupported_op": ({"1/model.onnx": onnx_bytes("Fancy", "com.example")},
                       ["Fancy", "the_node"]),
    "corrupt_file": ({"1/model.onnx": b"\x08\x07this is not protobuf\xff\xff\xff"}, []),
    "no_versions": ({"config.pbtxt": IDENTITY_CONFIG}, ["version"]),
    "no_backend": ({"config.pbtxt": IDENTITY_CONFIG.replace("identity", "missing_backend"),
                    "1/.keep": ""}, ["missing_backend"]),
    "missing_labels": ({"config.pbtxt": IDENTITY_CONFIG.replace(
        'OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ]',
        'OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] label_filename: "nope.txt"'),
        "1/.keep": ""}, ["nope.txt"]),
}


@pytest.fixture(scope="module")
def broken_repo():
    root = make_repo(DIGITS, extra={name: files for name, (files, _) in BROKEN.items()})
    yield root
    shutil.rmtree(root)


def test_broken_models_are_unavailable_with_reasons(start_server, broken_repo):
    srv = start_server(broken_repo)
    srv.wait_loaded()
    # strict readiness: not ready while some model is unavailable
    assert srv.get("/v2/health/ready").status_code == 400
    assert srv.get("/v2/health/live").status_code == 200
    index = {m["name"]: m for m in srv.post("/v2/repository/index").json()}
    assert index["digits_mlp"]["state"] == "READY"
    for name, (_, words) in BROKEN.items():
        entry = index[name]
        assert entry["state"] == "UNAVAILABLE", entry
        for w in words:
            assert w in entry["reason"], (name, entry)
        r = srv.get(f"/v2/models/{name}/ready")
        assert r.status_code == 400
        r = srv.get(f"/v2/models/{name}")
        assert r.status_code == 503, r.text
        for w in words:
            assert w in r.json()["error"], (name, r.json())
        r = srv.infer(name, ONE)
        assert r.status_code == 503
        log = srv.log_text()
        assert f"model '{name}'" in log and "unavailable" in log
    # the good model serves regardless
    good = {"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                        "data": [0.0] * 64}]}
    assert srv.infer("digits_mlp", good).status_code == 200


def test_readiness_not_strict(start_server, broken_repo):
    srv = start_server(broken_repo, ["--strict-readiness", "false"])
    srv.wait_ready()


def test_index_ready_filter(start_server, broken_repo):
    srv = start_server(broken_repo)
    srv.wait_loaded()
    ready = srv.post("/v2/repository/index", json={"ready": True}).json()
    assert [m["name"] for m in ready] == ["digits_mlp"]
    assert ready[0]["version"] == "1"
    r = srv.post("/v2/repository/index", data=b'{"ready": 3}')
    assert r.status_code == 400


def test_version_policies(start_server):
    def model(policy):
        files = {"config.pbtxt": IDENTITY_CONFIG + policy}
        for v in (1, 2, 3, 10):
            files[f"{v}/.keep"] = ""
        return files

    root = make_repo(extra={
        "latest_default": model(""),
        "latest_two": model("version_policy: { latest: { num_versions: 2 } }"),
        "all_versions": model("version_policy: { all: {} }"),
        "specific": model("version_policy: { specific: { versions: [1, 3] } }"),
    })
    srv = start_server(root)
    srv.wait_ready()

    def versions(name):
        return srv.get(f"/v2/models/{name}").json()["versions"]

    assert versions("latest_default") == ["10"]
    assert versions("latest_two") == ["3", "10"]
    assert versions("all_versions") == ["1", "2", "3", "10"]
    assert versions("specific") == ["1", "3"]
    assert srv.infer("specific", ONE, version=3).status_code == 200
    assert srv.infer("specific", ONE, version=2).status_code == 404
    # with no version the highest ready one answers
    assert srv.infer("all_versions", ONE).json()["model_version"] == "10"
    shutil.rmtree(root)


def test_config_completed_from_onnx_file(start_server):
    root = make_repo(extra={"plain_relu": {"1/model.onnx": onnx_bytes("Relu")}})
    srv = start_server(root)
    srv.wait_ready()
    cfg = srv.get("/v2/models/plain_relu/config").json()
    assert cfg["max_batch_size"] == 4
    assert cfg["input"][0]["name"] == "x" and cfg["input"][0]["dims"] == [4]
    assert cfg["output"][0]["name"] == "y" and cfg["output"][0]["data_type"] == "TYPE_FP32"
    r = srv.infer("plain_relu", {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                            "data": [-1, 2, -3, 4, 5, -6, 7, -8]}]})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [0, 2, 0, 4, 5, 0, 7, 0]
    shutil.rmtree(root)


def test_load_and_unload(start_server):
    root = make_repo(DIGITS, extra={"ident": {"config.pbtxt": IDENTITY_CONFIG, "1/.keep": ""}})
    srv = start_server(root)
    srv.wait_ready()
    assert srv.post("/v2/repository/models/ident/unload").status_code == 200
    assert srv.get("/v2/models/ident/ready").status_code == 400
    r = srv.infer("ident", ONE)
    assert r.status_code == 503 and "not loaded" in r.json()["error"]
    index = {m["name"]: m for m in srv.post("/v2/repository/index").json()}
    assert index["ident"]["state"] == "UNAVAILABLE" and index["ident"]["reason"] == "unloaded"
    # an unloaded model does not make the server unready
    assert srv.get("/v2/health/ready").status_code == 200
    r = srv.post("/v2/repository/models/ident/load")
    assert r.status_code == 200 and r.content == b""
    assert srv.infer("ident", ONE).status_code == 200
    # a model folder added after start can be loaded
    os.makedirs(os.path.join(root, "late", "1"))
    with open(os.path.join(root, "late", "config.pbtxt"), "w") as f:
        f.write(IDENTITY_CONFIG)
    names = [m["name"] for m in srv.post("/v2/repository/index").json()]
    assert "late" in names
    assert srv.post("/v2/repository/models/late/load",
                    json={"parameters": {}}).status_code == 200
    assert srv.infer("late", ONE).status_code == 200
    # errors
    r = srv.post("/v2/repository/models/missing/load")
    assert r.status_code == 404
    r = srv.post("/v2/repository/models/missing/unload")
    assert r.status_code == 404
    r = srv.post("/v2/repository/models/late/load",
                 json={"parameters": {"config": "{}"}})
    assert r.status_code == 501
    r = srv.post("/v2/repository/models/late/load", data=b"[")
    assert r.status_code == 400
    shutil.rmtree(root)


def test_reload_keeps_serving_with_new_config(start_server):
    root = make_repo(extra={"ident": {"config.pbtxt": IDENTITY_CONFIG, "1/.keep": ""}})
    srv = start_server(root)
    srv.wait_ready()
    with open(os.path.join(root, "ident", "config.pbtxt"), "w") as f:
        f.write(IDENTITY_CONFIG.replace("max_batch_size: 8", "max_batch_size: 2"))
    assert srv.post("/v2/repository/models/ident/load").status_code == 200
    assert srv.get("/v2/models/ident/config").json()["max_batch_size"] == 2
    # a reload that fails leaves the model unavailable with the reason
    with open(os.path.join(root, "ident", "config.pbtxt"), "w") as f:
        f.write("max_batch_size: oops")
    r = srv.post("/v2/repository/models/ident/load")
    assert r.status_code == 400 and "max_batch_size" in r.json()["error"]
    shutil.rmtree(root)
