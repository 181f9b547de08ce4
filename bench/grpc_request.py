#!/usr/bin/python3
"""bench/grpc_request.py write FILE | check TARGET: the gRPC benchmark's
request and its check.

write: FILE gets a gRPC-framed ModelInferRequest for digits_mlp (the fourth
example of examples/digits_mlp/expected_outputs.json, raw_input_contents),
the body h2load sends.
check: sends that request to TARGET (host:port) with a gRPC client made from
src/proto/inference.proto and checks the scores against torch's to 1e-5.
Prints "ok" or what is wrong; exit status 0 when ok.
"""
import json
import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "bench", "out", "gen")
EXPECTED = json.load(open(os.path.join(ROOT, "examples", "digits_mlp", "expected_outputs.json")))
EXAMPLE = EXPECTED["examples"][3]


def stubs():
    os.makedirs(GEN, exist_ok=True)
    protos = os.path.join(ROOT, "src", "proto")
    subprocess.run(["protoc", f"--python_out={GEN}", f"--grpc_out={GEN}",
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", f"-I{protos}",
                    os.path.join(protos, "inference.proto")], check=True)
    sys.path.insert(0, GEN)
    import inference_pb2
    import inference_pb2_grpc
    return inference_pb2, inference_pb2_grpc


def request(pb):
    req = pb.ModelInferRequest(model_name="digits_mlp", id="bench")
    req.inputs.add(name="input", datatype="FP32", shape=[1, 64])
    req.raw_input_contents.append(struct.pack("<64f", *EXAMPLE["input"]))
    return req


def main():
    pb, svc = stubs()
    if sys.argv[1] == "write":
        body = request(pb).SerializeToString()
        with open(sys.argv[2], "wb") as f:
            f.write(b"\x00" + struct.pack(">I", len(body)) + body)
        return 0
    import grpc
    try:
        resp = svc.GRPCInferenceServiceStub(grpc.insecure_channel(sys.argv[2])).ModelInfer(
            request(pb), timeout=10)
    except grpc.RpcError as e:
        print(f"{e.code()}: {e.details()}")
        return 1
    got = struct.unpack("<10f", resp.raw_output_contents[0])
    worst = max(abs(a - b) for a, b in zip(got, EXAMPLE["output"]))
    if worst > EXPECTED["tolerance"]:
        print(f"scores differ from torch's by {worst}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
