"""The v2 protocol over gRPC, with Python stubs generated at test time from
the project's own .proto files (a client written against the protocol's
field numbers, as tritonclient is)."""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from conftest import ROOT, SLOW, make_repo

GEN = os.path.join(ROOT, "tests", "e2e", ".gen")


def generate_stubs():
    os.makedirs(GEN, exist_ok=True)
    protos = os.path.join(ROOT, "src", "proto")
    subprocess.run(["protoc", f"--python_out={GEN}", f"--grpc_out={GEN}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", f"-I{protos}",
                    os.path.join(protos, "inference.proto"), os.path.join(protos, "health.proto")],
                   check=True)
    if GEN not in sys.path:
        sys.path.insert(0, GEN)


generate_stubs()
import grpc  # noqa: E402
import health_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402
import inference_pb2 as pb  # noqa: E402
import inference_pb2_grpc  # noqa: E402

from test_datatypes import SAMPLES, from_blob, to_blob  # noqa: E402

EXPECTED = json.load(open(os.path.join(ROOT, "examples", "digits_mlp", "expected_outputs.json")))
BIG = [("grpc.max_send_message_length", 2**31 - 1), ("grpc.max_receive_message_length", 2**31 - 1)]


def stub_for(srv):
    channel = grpc.insecure_channel(srv.grpc_target, options=BIG)
    return inference_pb2_grpc.GRPCInferenceServiceStub(channel), channel


@pytest.fixture(scope="module")
def stub(server):
    s, channel = stub_for(server)
    yield s
    channel.close()


def digits_request(rows, raw=True, **kw):
    req = pb.ModelInferRequest(model_name="digits_mlp", **kw)
    inp = req.inputs.add(name="input", datatype="FP32", shape=[len(rows), 64])
    flat = [v for r in rows for v in r]
    if raw:
        req.raw_input_contents.append(np.array(flat, dtype="<f4").tobytes())
    else:
        inp.contents.fp32_contents.extend(flat)
    return req


def scores(resp):
    return np.frombuffer(resp.raw_output_contents[0], dtype="<f4")


def test_health_and_metadata(stub, server):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    meta = stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "inferd" and "model_repository" in meta.extensions
    assert stub.ModelReady(pb.ModelReadyRequest(name="digits_mlp")).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name="digits_mlp", version="1")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="digits_mlp", version="9")).ready
    assert not stub.ModelReady(pb.ModelReadyRequest(name="nope")).ready
    md = stub.ModelMetadata(pb.ModelMetadataRequest(name="digits_mlp"))
    assert md.name == "digits_mlp" and list(md.versions) == ["1"]
    assert md.platform == "onnxruntime_onnx"
    assert (md.inputs[0].name, md.inputs[0].datatype, list(md.inputs[0].shape)) == \
        ("input", "FP32", [-1, 64])
    assert list(md.outputs[0].shape) == [-1, 10]
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    health = health_pb2_grpc.HealthStub(grpc.insecure_channel(server.grpc_target))
    assert health.Check(health_pb2.HealthCheckRequest()).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert health.Check(health_pb2.HealthCheckRequest(
        service="inference.GRPCInferenceService")).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        health.Check(health_pb2.HealthCheckRequest(service="other"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_model_config_and_statistics(stub):
    cfg = stub.ModelConfig(pb.ModelConfigRequest(name="digits_mlp")).config
    assert cfg.name == "digits_mlp" and cfg.max_batch_size == 64
    assert cfg.input[0].data_type == pb.TYPE_FP32 and list(cfg.input[0].dims) == [64]
    assert cfg.output[0].label_filename == "labels.txt"
    assert cfg.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    before = stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits_mlp")).model_stats[0]
    stub.ModelInfer(digits_request([EXPECTED["examples"][0]["input"]] * 3))
    after = stub.ModelStatistics(pb.ModelStatisticsRequest(name="digits_mlp",
                                                           version="1")).model_stats[0]
    assert after.inference_count == before.inference_count + 3
    assert after.execution_count == before.execution_count + 1
    assert after.inference_stats.success.count == before.inference_stats.success.count + 1
    assert any(b.batch_size == 3 for b in after.batch_stats)
    everything = stub.ModelStatistics(pb.ModelStatisticsRequest())
    assert {m.name for m in everything.model_stats} >= {"digits_mlp", "identity_all"}
    with pytest.raises(grpc.RpcError) as e:
        stub.ModelStatistics(pb.ModelStatisticsRequest(name="nope"))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
def test_digits(stub, raw):
    examples = EXPECTED["examples"]
    resp = stub.ModelInfer(digits_request([ex["input"] for ex in examples], raw=raw, id="abc"))
    assert resp.model_name == "digits_mlp" and resp.model_version == "1" and resp.id == "abc"
    (out,) = resp.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("scores", "FP32", [len(examples), 10])
    np.testing.assert_allclose(scores(resp).reshape(len(examples), 10),
                               [ex["output"] for ex in examples], atol=EXPECTED["tolerance"])


def test_classification(stub):
    ex = EXPECTED["examples"][2]
    req = digits_request([ex["input"]])
    out = req.outputs.add(name="scores")
    out.parameters["classification"].int64_param = 2
    resp = stub.ModelInfer(req)
    assert resp.outputs[0].datatype == "BYTES" and list(resp.outputs[0].shape) == [1, 2]
    labels = [b.decode() for b in from_blob("BYTES", resp.raw_output_contents[0])]
    best = int(np.argmax(ex["output"]))
    assert labels[0].split(":")[1] == str(best)


TYPED_FIELD = {"BOOL": "bool_contents", "UINT8": "uint_contents", "UINT16": "uint_contents",
               "UINT32": "uint_contents", "UINT64": "uint64_contents", "INT8": "int_contents",
               "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
               "FP32": "fp32_contents", "FP64": "fp64_contents", "BYTES": "bytes_contents"}


@pytest.mark.parametrize("dtype", list(SAMPLES))
def test_every_datatype(stub, dtype):
    values = SAMPLES[dtype]
    # raw contents in, raw contents out
    req = pb.ModelInferRequest(model_name="identity_all")
    req.inputs.add(name=f"INPUT_{dtype}", datatype=dtype, shape=[len(values)])
    req.outputs.add(name=f"OUTPUT_{dtype}")
    req.raw_input_contents.append(to_blob(dtype, values))
    resp = stub.ModelInfer(req)
    assert resp.outputs[0].datatype == dtype
    assert resp.raw_output_contents[0] == to_blob(dtype, values)
    # typed contents in
    req = pb.ModelInferRequest(model_name="identity_all")
    inp = req.inputs.add(name=f"INPUT_{dtype}", datatype=dtype, shape=[len(values)])
    req.outputs.add(name=f"OUTPUT_{dtype}")
    if dtype in TYPED_FIELD:
        typed = [v.encode() for v in values] if dtype == "BYTES" else values
        getattr(inp.contents, TYPED_FIELD[dtype]).extend(typed)
        assert stub.ModelInfer(req).raw_output_contents[0] == to_blob(dtype, values)
    else:
        inp.contents.fp32_contents.extend(values)
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "raw_input_contents" in e.value.details()


def test_request_errors(stub):
    def check(req, code, words):
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req)
        assert e.value.code() == code, e.value.details()
        for w in words:
            assert w in e.value.details(), e.value.details()

    check(pb.ModelInferRequest(model_name="nope"), grpc.StatusCode.NOT_FOUND, ["nope"])
    check(digits_request([[0.0] * 64], model_version="7"), grpc.StatusCode.NOT_FOUND, ["7"])
    check(digits_request([[0.0] * 64], model_version="x"), grpc.StatusCode.INVALID_ARGUMENT,
          ["model_version"])
    bad = digits_request([[0.0] * 64])
    bad.raw_input_contents[0] = b"\0" * 12
    check(bad, grpc.StatusCode.INVALID_ARGUMENT, ["input 'input'", "12 bytes"])
    mixed = digits_request([[0.0] * 64])
    mixed.inputs[0].contents.fp32_contents.extend([0.0] * 64)
    check(mixed, grpc.StatusCode.INVALID_ARGUMENT, ["mixed"])
    wrong = digits_request([[0.0] * 64])
    wrong.inputs[0].shape[:] = [1, 63]
    wrong.raw_input_contents[0] = b"\0" * 252
    check(wrong, grpc.StatusCode.INVALID_ARGUMENT, ["[1,63]"])
    typed = pb.ModelInferRequest(model_name="identity_all")
    t = typed.inputs.add(name="INPUT_UINT8", datatype="UINT8", shape=[1])
    t.contents.uint_contents.append(300)
    typed.outputs.add(name="OUTPUT_UINT8")
    check(typed, grpc.StatusCode.INVALID_ARGUMENT, ["300", "UINT8"])
    reserved = digits_request([[0.0] * 64])
    reserved.parameters["triton_x"].bool_param = True
    check(reserved, grpc.StatusCode.INVALID_ARGUMENT, ["triton_"])


def test_malformed_protobuf_and_unknown_method(server):
    channel = grpc.insecure_channel(server.grpc_target)
    call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        call(b"\x0a\xff\xff\xff\xff\x0f")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    nope = channel.unary_unary("/inference.GRPCInferenceService/Nope",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as e:
        nope(b"")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Nope" in e.value.details()
    # the server still serves
    assert inference_pb2_grpc.GRPCInferenceServiceStub(channel).ServerLive(
        pb.ServerLiveRequest()).live


def nghttp(srv, path, body):
    """Sends body as a gRPC request with nghttp (raw HTTP/2) and returns the
    response headers and trailers it printed."""
    with open(os.path.join(GEN, "body.bin"), "wb") as f:
        f.write(body)
    out = subprocess.run(["nghttp", "-v", "-H", ":method: POST", "-H",
                          "content-type: application/grpc", "-H", "te: trailers", "-d",
                          os.path.join(GEN, "body.bin"), f"http://{srv.grpc_target}{path}"],
                         capture_output=True, text=True, timeout=30 * SLOW)
    return out.stdout


def test_message_lying_about_its_length(server):
    out = nghttp(server, "/inference.GRPCInferenceService/ModelInfer",
                 b"\x00\x00\x00\x01\x00" + b"short")
    assert "grpc-status: 13" in out and "ends inside a message" in out
    out = nghttp(server, "/inference.GRPCInferenceService/ModelInfer", b"\x07\x00\x00\x00\x01x")
    assert "grpc-status: 3" in out and "compressed flag 7" in out


def test_gzip_compression(stub):
    ex = EXPECTED["examples"][1]
    resp = stub.ModelInfer(digits_request([ex["input"]]), compression=grpc.Compression.Gzip)
    np.testing.assert_allclose(scores(resp), ex["output"], atol=EXPECTED["tolerance"])


def test_stream_100_in_flight(stub):
    ex = EXPECTED["examples"][3]
    sent = []

    def requests():
        for i in range(100):
            if i == 50:
                sent.append("bad")
                yield pb.ModelInferRequest(model_name="nope", id="bad")
                continue
            sent.append(str(i))
            yield digits_request([ex["input"]], id=str(i))

    got, errors = [], []
    for r in stub.ModelStreamInfer(requests()):
        if r.error_message:
            errors.append(r.error_message)
        else:
            got.append(r.infer_response.id)
            np.testing.assert_allclose(scores(r.infer_response), ex["output"],
                                       atol=EXPECTED["tolerance"])
    assert sorted(got) == sorted(i for i in sent if i != "bad")
    assert len(errors) == 1 and "nope" in errors[0]


def test_32_mib_tensor(stub):
    data = np.random.default_rng(1).integers(0, 255, 32 << 20, dtype=np.uint8).tobytes()
    req = pb.ModelInferRequest(model_name="identity_all")
    req.inputs.add(name="INPUT_UINT8", datatype="UINT8", shape=[len(data)])
    req.outputs.add(name="OUTPUT_UINT8")
    req.raw_input_contents.append(data)
    resp = stub.ModelInfer(req, timeout=120 * SLOW)
    assert resp.raw_output_contents[0] == data


def test_message_over_the_limit(start_server, server):
    srv = start_server(server.repo, ["--grpc-max-message", "1M"])
    srv.wait_ready()
    s, channel = stub_for(srv)
    req = pb.ModelInferRequest(model_name="identity_all")
    req.inputs.add(name="INPUT_UINT8", datatype="UINT8", shape=[2 << 20])
    req.outputs.add(name="OUTPUT_UINT8")
    req.raw_input_contents.append(b"\1" * (2 << 20))
    with pytest.raises(grpc.RpcError) as e:
        s.ModelInfer(req)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert s.ServerLive(pb.ServerLiveRequest()).live
    channel.close()


SLOW_MODEL = """
backend: "identity"
max_batch_size: 0
input [ { name: "INPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
output [ { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ -1 ] } ]
parameters { key: "delay_ms" value: { string_value: "700" } }
"""


def slow_request():
    req = pb.ModelInferRequest(model_name="slow")
    req.inputs.add(name="INPUT0", datatype="FP32", shape=[1])
    req.raw_input_contents.append(struct.pack("<f", 1.0))
    return req


def test_deadline_and_cancellation(start_server):
    root = make_repo(extra={"slow": {"config.pbtxt": SLOW_MODEL, "1/.keep": ""}})
    srv = start_server(root)
    srv.wait_ready()
    s, channel = stub_for(srv)
    # a deadline long enough: answered
    assert s.ModelInfer(slow_request(), timeout=30 * SLOW).outputs[0].name == "OUTPUT0"
    # a deadline that has passed when the server looks at the request: not run
    body = slow_request().SerializeToString()
    with open(os.path.join(GEN, "slow.bin"), "wb") as f:
        f.write(b"\x00" + struct.pack(">I", len(body)) + body)
    out = subprocess.run(["nghttp", "-v", "-H", ":method: POST", "-H",
                          "content-type: application/grpc", "-H", "grpc-timeout: 1n", "-d",
                          os.path.join(GEN, "slow.bin"),
                          f"http://{srv.grpc_target}/inference.GRPCInferenceService/ModelInfer"],
                         capture_output=True, text=True, timeout=30 * SLOW).stdout
    assert "grpc-status: 4" in out and "deadline" in out
    out = subprocess.run(["nghttp", "-v", "-H", ":method: POST", "-H",
                          "content-type: application/grpc", "-H", "grpc-timeout: soon", "-d",
                          os.path.join(GEN, "slow.bin"),
                          f"http://{srv.grpc_target}/inference.GRPCInferenceService/ModelInfer"],
                         capture_output=True, text=True, timeout=30 * SLOW).stdout
    assert "grpc-status: 3" in out and "grpc-timeout" in out
    stats = s.ModelStatistics(pb.ModelStatisticsRequest(name="slow")).model_stats[0]
    assert stats.execution_count == 1 and stats.inference_stats.fail.count == 1
    # a cancelled stream: the server goes on
    call = s.ModelStreamInfer(iter([slow_request()] * 3))
    call.cancel()
    assert s.ServerLive(pb.ServerLiveRequest()).live
    assert s.ModelInfer(slow_request()).outputs[0].name == "OUTPUT0"
    channel.close()


def h2_frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    """A header as 'literal without indexing, new name', no Huffman."""
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def test_client_that_never_reads(start_server, server):
    """An HTTP/2 client that sends requests with large answers and never
    reads: the server's memory stays bounded and other clients are served."""
    srv = start_server(server.repo)
    srv.wait_ready()

    def rss():
        text = srv.session.get(srv.metrics_url).text
        return int(re.search(r"^inferd_process_resident_memory_bytes (\d+)", text, re.M).group(1))

    before = rss()
    sock = socket.create_connection(("127.0.0.1", srv.grpc_port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b""))
    req = pb.ModelInferRequest(model_name="identity_all")
    req.inputs.add(name="INPUT_UINT8", datatype="UINT8", shape=[1 << 20])
    req.outputs.add(name="OUTPUT_UINT8")
    req.raw_input_contents.append(b"\2" * (1 << 20))
    msg = req.SerializeToString()
    body = b"\x00" + struct.pack(">I", len(msg)) + msg
    headers = (hpack_literal(b":method", b"POST") + hpack_literal(b":scheme", b"http") +
               hpack_literal(b":path", b"/inference.GRPCInferenceService/ModelInfer") +
               hpack_literal(b":authority", b"x") +
               hpack_literal(b"content-type", b"application/grpc") +
               hpack_literal(b"te", b"trailers"))
    sent = 0
    sock.settimeout(5)
    try:
        for i in range(64):  # 64 answers of 1 MiB each
            stream = 1 + 2 * i
            sock.sendall(h2_frame(1, 4, stream, headers))
            for off in range(0, len(body), 16384):
                last = off + 16384 >= len(body)
                sock.sendall(h2_frame(0, 1 if last else 0, stream, body[off:off + 16384]))
            sent += 1
    except (socket.timeout, OSError):
        pass  # the server stopped reading: that is the point
    time.sleep(1)
    grown = rss() - before
    # Other clients are served meanwhile.
    s, channel = stub_for(srv)
    assert s.ServerLive(pb.ServerLiveRequest()).live
    assert s.ModelInfer(digits_request([[0.0] * 64])).outputs[0].name == "scores"
    channel.close()
    sock.close()
    assert sent >= 8, sent
    assert grown < 48 << 20, f"server grew by {grown >> 20} MiB for a client that never reads"
