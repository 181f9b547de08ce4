"""Every datatype of the protocol through the identity backend (a user
backend loaded with dlopen), in JSON and in binary, both directions."""
import json
import struct

import numpy as np
import pytest

NUMPY = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
    "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
    "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64,
}

# Values at the edges of each type's range.
SAMPLES = {
    "BOOL": [True, False, True],
    "UINT8": [0, 1, 255],
    "UINT16": [0, 65535, 7],
    "UINT32": [0, 4294967295, 12345],
    "UINT64": [0, 18446744073709551615, 9007199254740993],
    "INT8": [-128, 127, 0],
    "INT16": [-32768, 32767, -1],
    "INT32": [-2147483648, 2147483647, 5],
    "INT64": [-9223372036854775808, 9223372036854775807, 9007199254740993],
    "FP16": [0.5, -2.0, 65504.0],
    "BF16": [1.0, -0.5, 3.140625],
    "FP32": [0.1, -3.4028234663852886e38, 1.1754943508222875e-38],
    "FP64": [0.1, -1.7976931348623157e308, 5e-324],
    "BYTES": ["hello", "", "ünïcödé ✓"],
}
JSON_TYPES = [t for t in SAMPLES if t not in ("FP16", "BF16")]


def to_blob(dtype, values):
    if dtype == "BYTES":
        out = b""
        for v in values:
            b = v.encode() if isinstance(v, str) else v
            out += struct.pack("<I", len(b)) + b
        return out
    if dtype == "BF16":
        f = np.array(values, dtype="<f4").view("<u4")
        return (f >> 16).astype("<u2").tobytes()
    return np.array(values, dtype=np.dtype(NUMPY[dtype]).newbyteorder("<")).tobytes()


def from_blob(dtype, blob):
    if dtype == "BYTES":
        out, i = [], 0
        while i < len(blob):
            (n,) = struct.unpack_from("<I", blob, i)
            out.append(blob[i + 4:i + 4 + n])
            i += 4 + n
        return out
    if dtype == "BF16":
        u = np.frombuffer(blob, dtype="<u2").astype("<u4") << 16
        return u.view("<f4").tolist()
    return np.frombuffer(blob, dtype=np.dtype(NUMPY[dtype]).newbyteorder("<")).tolist()


@pytest.mark.parametrize("dtype", JSON_TYPES)
def test_json_round_trip(server, dtype):
    values = SAMPLES[dtype]
    body = {"inputs": [{"name": f"INPUT_{dtype}", "shape": [len(values)], "datatype": dtype,
                        "data": values}],
            "outputs": [{"name": f"OUTPUT_{dtype}"}]}
    r = server.infer("identity_all", body)
    assert r.status_code == 200, (r.text, r.request.url, r.request.body)
    (out,) = r.json()["outputs"]
    assert out["datatype"] == dtype and out["shape"] == [len(values)]
    if dtype == "FP32":
        assert np.array(out["data"], dtype=np.float32).tolist() == \
            np.array(values, dtype=np.float32).tolist()
    else:
        assert out["data"] == values


@pytest.mark.parametrize("dtype", list(SAMPLES))
def test_binary_round_trip(server, dtype):
    values = SAMPLES[dtype]
    blob = to_blob(dtype, values)
    header = json.dumps({
        "inputs": [{"name": f"INPUT_{dtype}", "shape": [len(values)], "datatype": dtype,
                    "parameters": {"binary_data_size": len(blob)}}],
        "outputs": [{"name": f"OUTPUT_{dtype}", "parameters": {"binary_data": True}}]}).encode()
    r = server.post("/v2/models/identity_all/infer", data=header + blob,
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    hlen = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:hlen])
    (out,) = meta["outputs"]
    assert out["datatype"] == dtype
    assert out["parameters"]["binary_data_size"] == len(blob)
    assert r.content[hlen:] == blob


@pytest.mark.parametrize("dtype", ["FP16", "BF16"])
def test_half_types_binary_in_json_out(server, dtype):
    values = SAMPLES[dtype]
    blob = to_blob(dtype, values)
    header = json.dumps({
        "inputs": [{"name": f"INPUT_{dtype}", "shape": [len(values)], "datatype": dtype,
                    "parameters": {"binary_data_size": len(blob)}}],
        "outputs": [{"name": f"OUTPUT_{dtype}"}]}).encode()
    r = server.post("/v2/models/identity_all/infer", data=header + blob,
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == values


@pytest.mark.parametrize("dtype", ["FP16", "BF16"])
def test_half_types_refused_in_json(server, dtype):
    body = {"inputs": [{"name": f"INPUT_{dtype}", "shape": [1], "datatype": dtype,
                        "data": [1.0]}], "outputs": [{"name": f"OUTPUT_{dtype}"}]}
    r = server.infer("identity_all", body)
    assert r.status_code == 400
    assert dtype in r.json()["error"] and "binary" in r.json()["error"]


def test_all_types_in_one_request(server):
    """Every input at once, half of them binary, outputs alternating."""
    inputs, blobs, outputs = [], b"", []
    for i, (dtype, values) in enumerate(SAMPLES.items()):
        if dtype in JSON_TYPES and i % 2 == 0:
            inputs.append({"name": f"INPUT_{dtype}", "shape": [len(values)], "datatype": dtype,
                           "data": values})
        else:
            blob = to_blob(dtype, values)
            inputs.append({"name": f"INPUT_{dtype}", "shape": [len(values)], "datatype": dtype,
                           "parameters": {"binary_data_size": len(blob)}})
            blobs += blob
        outputs.append({"name": f"OUTPUT_{dtype}", "parameters": {"binary_data": i % 3 == 0}})
    header = json.dumps({"inputs": inputs, "outputs": outputs}).encode()
    r = server.post("/v2/models/identity_all/infer", data=header + blobs,
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    hlen = int(r.headers["Inference-Header-Content-Length"])
    meta = json.loads(r.content[:hlen])
    rest = r.content[hlen:]
    for out in meta["outputs"]:
        dtype = out["datatype"]
        if "binary_data_size" in out.get("parameters", {}):
            n = out["parameters"]["binary_data_size"]
            got, rest = from_blob(dtype, rest[:n]), rest[n:]
            if dtype == "BYTES":
                got = [g.decode() for g in got]
        else:
            got = out["data"]
        want = SAMPLES[dtype]
        if dtype == "FP32":
            want = np.array(want, dtype=np.float32).tolist()
            got = np.array(got, dtype=np.float32).tolist()
        assert got == want, dtype
    assert rest == b""


def test_bytes_not_utf8_needs_binary(server):
    blob = to_blob("BYTES", [b"\xff\xfe"])
    header = json.dumps({
        "inputs": [{"name": "INPUT_BYTES", "shape": [1], "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(blob)}}],
        "outputs": [{"name": "OUTPUT_BYTES"}]}).encode()
    r = server.post("/v2/models/identity_all/infer", data=header + blob,
                    headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 400
    assert "UTF-8" in r.json()["error"]


def test_batched_identity(server):
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    body = {"inputs": [{"name": "INPUT0", "shape": [6, 4], "datatype": "FP32",
                        "data": data.tolist()}]}
    r = server.infer("identity_batched", body)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [6, 4]
    assert out["data"] == data.flatten().tolist()
