#!/usr/bin/python3
"""Makes the ONNX test models of tests/data/onnx with Debian's torch and onnx
(run with /usr/bin/python3 from this folder).

Each model gets a folder laid out like the ONNX backend node tests:
model.onnx and test_data_set_0/{input,output}_K.pb (TensorProtos), the
outputs computed by torch itself. tests/unit/test_onnx_nodes.c runs every
folder here through the backend and compares.

  mlp         digits-style MLP: [N,1,8,8] -> Flatten -> Linear(64,64) -> ReLU
              -> Linear(64,10) -> Softmax, plus ArgMax; opset 13
  mlp_opset9  the same network and weights exported at opset 9 (Softmax-1)
  mlp_tanh    [N,20] -> Linear -> Tanh -> Linear -> Sigmoid, opset 17, batch 64
"""
import os

import numpy as np
import onnx
import torch
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))


class Digits(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 64)
        self.fc2 = torch.nn.Linear(64, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        probs = torch.softmax(self.fc2(torch.relu(self.fc1(x))), dim=1)
        return probs, torch.argmax(probs, dim=1)


class TanhNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(20, 32)
        self.fc2 = torch.nn.Linear(32, 3)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.tanh(self.fc1(x))))


def export(name, model, x, opset, outputs):
    folder = os.path.join(HERE, name)
    os.makedirs(os.path.join(folder, "test_data_set_0"), exist_ok=True)
    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, x, path, opset_version=opset, input_names=["x"],
                      output_names=outputs,
                      dynamic_axes={n: {0: "batch"} for n in ["x"] + outputs})
    onnx.checker.check_model(onnx.load(path))
    with torch.no_grad():
        ys = model(x)
    if not isinstance(ys, tuple):
        ys = (ys,)
    tensors = [("input_0", x.numpy(), "x")] + [
        ("output_%d" % i, y.numpy(), n) for i, (y, n) in enumerate(zip(ys, outputs))]
    for fname, array, tname in tensors:
        t = numpy_helper.from_array(np.ascontiguousarray(array), tname)
        with open(os.path.join(folder, "test_data_set_0", fname + ".pb"), "wb") as f:
            f.write(t.SerializeToString())
    print(name, os.path.getsize(path), "bytes")


def main():
    torch.manual_seed(20240611)
    digits = Digits().eval()
    x = torch.rand(5, 1, 8, 8) * 16  # pixel intensities as in sklearn's digits
    export("mlp", digits, x, 13, ["probs", "label"])
    export("mlp_opset9", digits, x, 9, ["probs", "label"])
    export("mlp_tanh", TanhNet().eval(), torch.randn(64, 20), 17, ["y"])


if __name__ == "__main__":
    main()
