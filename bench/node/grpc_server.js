// bench/node/grpc_server.js: the Node gRPC peer of inferd's benchmarks.
//
// @grpc/grpc-js serving inference.GRPCInferenceService/ModelInfer (from
// inferd's own src/proto/inference.proto: the same wire contract) for
// examples/models/digits_mlp with onnxruntime-node: raw_input_contents in,
// raw_output_contents out, as tritonclient sends and reads them. ONNX Runtime
// runs with one intra-op and one inter-op thread and every graph
// optimisation, as in bench/node/server.js.
//
// Usage: node grpc_server.js [--port 8001] [--host 127.0.0.1] [--model PATH]
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');
const ort = require('onnxruntime-node');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const ROOT = path.join(__dirname, '..', '..');
const PORT = Number(option('port', 8001));
const HOST = option('host', '127.0.0.1');
const MODEL = option('model', path.join(ROOT, 'examples', 'models', 'digits_mlp', '1', 'model.onnx'));
const N_IN = 64;
const N_OUT = 10;
const MAX_BATCH = 64;

function fail(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

async function main() {
  const session = await ort.InferenceSession.create(MODEL, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const def = loader.loadSync(path.join(ROOT, 'src', 'proto', 'inference.proto'),
                              {keepCase: true, longs: Number, defaults: true});
  const proto = grpc.loadPackageDefinition(def).inference;

  async function modelInfer(call, callback) {
    try {
      const req = call.request;
      if (req.model_name !== 'digits_mlp') throw fail(grpc.status.NOT_FOUND, `unknown model '${req.model_name}'`);
      if (req.inputs.length !== 1 || req.inputs[0].name !== 'input' || req.inputs[0].datatype !== 'FP32')
        throw fail(grpc.status.INVALID_ARGUMENT, 'expected one FP32 input named input');
      const shape = req.inputs[0].shape.map(Number);
      const batch = shape[0];
      if (shape.length !== 2 || shape[1] !== N_IN || batch < 1 || batch > MAX_BATCH)
        throw fail(grpc.status.INVALID_ARGUMENT, `input shape [${shape}] is not [n,${N_IN}]`);
      const raw = req.raw_input_contents[0];
      if (!raw || raw.length !== batch * N_IN * 4)
        throw fail(grpc.status.INVALID_ARGUMENT, 'raw_input_contents does not match the shape');
      // A copy gives the Float32Array the alignment it needs.
      const data = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
      const out = await session.run({input: new ort.Tensor('float32', data, [batch, N_IN])});
      const scores = out.scores.data;
      callback(null, {
        model_name: 'digits_mlp',
        model_version: '1',
        id: req.id,
        outputs: [{name: 'scores', datatype: 'FP32', shape: [batch, N_OUT]}],
        raw_output_contents: [Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength)],
      });
    } catch (e) {
      callback(e.code !== undefined ? e : fail(grpc.status.INTERNAL, String(e)));
    }
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': 64 << 20,
    'grpc.max_send_message_length': 64 << 20,
  });
  server.addService(proto.GRPCInferenceService.service, {
    ModelInfer: modelInfer,
    ServerLive: (call, cb) => cb(null, {live: true}),
    ServerReady: (call, cb) => cb(null, {ready: true}),
  });
  server.bindAsync(`${HOST}:${PORT}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      console.error(err);
      process.exit(1);
    }
    console.log(`listening on ${HOST}:${PORT}`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
