#!/usr/bin/python3
"""Trains the digits_mlp example model and writes it as ONNX.

The model classifies scikit-learn's 8x8 handwritten digits (load_digits():
1,797 images, 64 pixel values 0..16 each, ten classes). It is a small MLP,
64 -> 64 -> 32 -> 10 with ReLU, ending in a Softmax so that the output
"scores" holds class probabilities. The input is the raw pixel values: the
1/16 scaling used during training is folded into the first layer's weights
before export, so a client sends the data set's numbers unchanged.

Writes (paths relative to the repository root):
  examples/models/digits_mlp/1/model.onnx     the model (opset 13, batch axis dynamic)
  examples/digits_mlp/expected_outputs.json   8 test digits and torch's outputs for them

Run with Debian's interpreter, which has torch, onnx and scikit-learn:
  /usr/bin/python3 examples/digits_mlp/make_model.py

Deterministic: a fixed seed, one thread, deterministic algorithms; running it
again writes byte-identical files (checked with --check, which compares
against the files already there instead of overwriting them).
"""
import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

SEED = 0
EPOCHS = 300
BATCH = 64
LR = 1e-3
N_EXAMPLES = 8
ALLOWED_OPS = {"Gemm", "MatMul", "Add", "Relu", "Softmax", "Flatten", "Reshape", "Identity",
               "Constant"}

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
MODEL_PATH = os.path.join(ROOT, "examples", "models", "digits_mlp", "1", "model.onnx")
EXPECTED_PATH = os.path.join(HERE, "expected_outputs.json")


class DigitsMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 64)
        self.fc2 = torch.nn.Linear(64, 32)
        self.fc3 = torch.nn.Linear(32, 10)

    def logits(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)

    def forward(self, x):
        return torch.softmax(self.logits(x), dim=1)


def train():
    """Returns the trained model (taking raw 0..16 pixels) and the test split."""
    digits = load_digits()
    x = digits.data.astype(np.float32)  # (1797, 64), values 0..16
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=SEED, stratify=y)

    torch.manual_seed(SEED)
    model = DigitsMLP()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(x_train) / 16.0  # train on 0..1, fold the scale below
    yt = torch.from_numpy(y_train)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), BATCH):
            idx = order[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model.logits(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()

    # Fold the 1/16 input scaling into the first layer: W x/16 = (W/16) x.
    with torch.no_grad():
        model.fc1.weight.div_(16.0)
    return model, x_test, y_test


def check_ops(path):
    """Fails unless the graph uses only operators inferd's example promises."""
    m = onnx.load(path)
    onnx.checker.check_model(m)
    ops = sorted({n.op_type for n in m.graph.node})
    bad = [op for op in ops if op not in ALLOWED_OPS]
    if bad:
        sys.exit(f"make_model.py: exported graph uses ops outside the allowed set: {bad}")
    opset = {o.domain: o.version for o in m.opset_import}
    if opset.get("", opset.get("ai.onnx")) != 13:
        sys.exit(f"make_model.py: unexpected opset {opset}")
    ins = [(i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
           for i in m.graph.input]
    outs = [(o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
            for o in m.graph.output]
    if ins != [("input", ["batch", 64])] or outs != [("scores", ["batch", 10])]:
        sys.exit(f"make_model.py: unexpected graph signature {ins} -> {outs}")
    return m, ops


def numpy_run(m, x):
    """Evaluates the exported graph with numpy: an independent check that the
    file computes what torch computed (only the ops allowed above)."""
    env = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    env["input"] = x
    for n in m.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        i = [env[name] for name in n.input if name]
        if n.op_type == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            r = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2:
                r = r + a.get("beta", 1.0) * i[2]
        elif n.op_type == "MatMul":
            r = i[0] @ i[1]
        elif n.op_type == "Add":
            r = i[0] + i[1]
        elif n.op_type == "Relu":
            r = np.maximum(i[0], 0)
        elif n.op_type == "Softmax":
            e = np.exp(i[0] - i[0].max(axis=a.get("axis", -1), keepdims=True))
            r = e / e.sum(axis=a.get("axis", -1), keepdims=True)
        elif n.op_type in ("Identity", "Flatten", "Reshape"):
            r = i[0].reshape(i[0].shape[0], -1) if n.op_type == "Flatten" else (
                i[0].reshape(i[1]) if n.op_type == "Reshape" else i[0])
        elif n.op_type == "Constant":
            r = numpy_helper.to_array(a["value"])
        else:
            raise AssertionError(n.op_type)
        env[n.output[0]] = r.astype(np.float32)
    return env["scores"]


def to_json(doc):
    """JSON with one line per key and per example: readable, diffable."""
    lines = ["{"]
    for key, val in doc.items():
        if key != "examples":
            lines.append(f"  {json.dumps(key)}: {json.dumps(val)},")
    lines.append('  "examples": [')
    ex = [f"    {json.dumps(e, separators=(', ', ': '))}" for e in doc["examples"]]
    lines.append(",\n".join(ex))
    lines.append("  ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="rebuild in a temporary folder and compare with the committed files")
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model, x_test, y_test = train()

    with torch.no_grad():
        probs = model(torch.from_numpy(x_test)).numpy()
    acc = float((probs.argmax(axis=1) == y_test).mean())
    print(f"test accuracy: {acc * 100:.2f}% ({int(round(acc * len(y_test)))}/{len(y_test)})")

    out_dir = tempfile.mkdtemp() if args.check else None
    model_path = os.path.join(out_dir, "model.onnx") if out_dir else MODEL_PATH
    expected_path = os.path.join(out_dir, "expected.json") if out_dir else EXPECTED_PATH

    os.makedirs(os.path.dirname(model_path), exist_ok=True)
    torch.onnx.export(
        model, torch.zeros(1, 64), model_path, opset_version=13,
        input_names=["input"], output_names=["scores"],
        dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},
        do_constant_folding=True)
    m, ops = check_ops(model_path)
    print(f"ops: {', '.join(ops)}")

    # The exported graph, run by numpy, must agree with torch.
    diff = float(np.abs(numpy_run(m, x_test) - probs).max())
    if diff > 1e-5:
        sys.exit(f"make_model.py: numpy evaluation of the ONNX graph differs by {diff}")

    # Examples: the first test digit of classes 0..5, then the two test digits
    # the model is least sure of, whose probabilities are spread over several
    # classes (a check that tells a wrong softmax from a right one).
    picked = [int(np.nonzero(y_test == cls)[0][0]) for cls in range(N_EXAMPLES - 2)]
    picked += [int(k) for k in np.argsort(probs.max(axis=1), kind="stable")[:2]]
    examples = [{
        "label": int(y_test[k]),
        "predicted": int(probs[k].argmax()),
        "input": [float(v) for v in x_test[k]],
        "output": [float(v) for v in probs[k]],
    } for k in picked]
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    doc = {
        "model": "digits_mlp",
        "model_sha256": sha,
        "test_accuracy": round(acc, 4),
        "input_name": "input",
        "output_name": "scores",
        "tolerance": 1e-5,
        "examples": examples,
    }
    with open(expected_path, "w") as f:
        f.write(to_json(doc))
    print(f"model sha256: {sha}")

    if args.check:
        same = all(open(p, "rb").read() == open(q, "rb").read()
                   for p, q in ((model_path, MODEL_PATH), (expected_path, EXPECTED_PATH)))
        shutil.rmtree(out_dir)
        print("identical to committed files" if same else "DIFFERS from committed files")
        sys.exit(0 if same else 1)
    print(f"wrote {os.path.relpath(MODEL_PATH, ROOT)} and {os.path.relpath(EXPECTED_PATH, ROOT)}")


if __name__ == "__main__":
    main()
