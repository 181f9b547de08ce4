// bench/node/server.js: the Node peer of inferd's benchmarks.
//
// A fastify server that serves examples/models/digits_mlp with
// onnxruntime-node over the KServe v2 JSON protocol, answering the same
// requests as inferd with the same bodies:
//
//   GET  /v2/health/live, /v2/health/ready      200, empty body
//   POST /v2/models/digits_mlp[/versions/1]/infer
//        {"inputs":[{"name":"input","shape":[n,64],"datatype":"FP32","data":[...]}]}
//     -> {"model_name":"digits_mlp","model_version":"1",
//         "outputs":[{"name":"scores","datatype":"FP32","shape":[n,10],"data":[...]}]}
//
// It is set up as a fair, strong peer: ONNX Runtime with one intra-op and one
// inter-op thread and every graph optimisation, fastify's logger off, the
// response serialised by a compiled schema. Errors answer {"error": "..."}
// with 400 (bad request) or 404/405, like a v2 server.
//
// Usage: node server.js [--port 8000] [--host 127.0.0.1] [--model PATH]
'use strict';

const path = require('path');
const fastify = require('fastify');
const ort = require('onnxruntime-node');

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const PORT = Number(option('port', 8000));
const HOST = option('host', '127.0.0.1');
const MODEL = option('model', path.join(__dirname, '..', '..', 'examples', 'models', 'digits_mlp',
                                        '1', 'model.onnx'));
const MODEL_NAME = 'digits_mlp';
const N_IN = 64;
const N_OUT = 10;
const MAX_BATCH = 64;

class BadRequest extends Error {}

// Accepts `data` flat or nested in the tensor's shape (as the protocol allows)
// and returns a Float32Array of exactly `count` numbers.
function flatten(data, count) {
  const out = new Float32Array(count);
  let n = 0;
  const walk = (v, depth) => {
    if (depth > 8) throw new BadRequest('input data nested too deeply');
    for (const x of v) {
      if (Array.isArray(x)) {
        walk(x, depth + 1);
      } else {
        if (typeof x !== 'number') throw new BadRequest('FP32 data must be numbers');
        if (n >= count) throw new BadRequest(`input has more than ${count} elements`);
        out[n++] = x;
      }
    }
  };
  walk(data, 0);
  if (n !== count) throw new BadRequest(`input has ${n} elements, shape says ${count}`);
  return out;
}

// Checks a v2 infer request for digits_mlp and returns [batch, Float32Array].
function decode(body) {
  if (body === null || typeof body !== 'object' || !Array.isArray(body.inputs)) {
    throw new BadRequest('request needs an "inputs" array');
  }
  if (body.inputs.length !== 1) throw new BadRequest('digits_mlp takes exactly one input');
  const t = body.inputs[0];
  if (t.name !== 'input') throw new BadRequest(`unknown input '${t.name}'`);
  if (t.datatype !== 'FP32') throw new BadRequest(`input datatype is ${t.datatype}, want FP32`);
  const s = t.shape;
  if (!Array.isArray(s) || s.length !== 2 || s[1] !== N_IN || !Number.isInteger(s[0]) ||
      s[0] < 1 || s[0] > MAX_BATCH) {
    throw new BadRequest(`input shape must be [1..${MAX_BATCH}, ${N_IN}]`);
  }
  if (!Array.isArray(t.data)) throw new BadRequest('input needs "data"');
  return [s[0], flatten(t.data, s[0] * N_IN)];
}

const responseSchema = {
  type: 'object',
  properties: {
    model_name: {type: 'string'},
    model_version: {type: 'string'},
    id: {type: 'string'},
    outputs: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: {type: 'string'},
          datatype: {type: 'string'},
          shape: {type: 'array', items: {type: 'integer'}},
          data: {type: 'array', items: {type: 'number'}},
        },
      },
    },
  },
};

async function main() {
  const session = await ort.InferenceSession.create(MODEL, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });

  const app = fastify({logger: false, bodyLimit: 16 * 1024 * 1024});
  // v2 clients (tritonclient) send no Content-Type: parse any body as JSON.
  app.addContentTypeParser('*', {parseAs: 'string'}, (req, text, done) => {
    try {
      done(null, JSON.parse(text));
    } catch (e) {
      e.statusCode = 400;
      done(e);
    }
  });
  app.setErrorHandler((err, req, reply) => {
    const status = err instanceof BadRequest ? 400 : (err.statusCode || 500);
    reply.code(status).send({error: err.message});
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({error: 'Not Found'}));

  const ready = (req, reply) => reply.code(200).send('');
  app.get('/v2/health/live', ready);
  app.get('/v2/health/ready', ready);

  const infer = async (req, reply) => {
    const [batch, data] = decode(req.body);
    const feeds = {input: new ort.Tensor('float32', data, [batch, N_IN])};
    const result = await session.run(feeds);
    const answer = {
      model_name: MODEL_NAME,
      model_version: '1',
      outputs: [{
        name: 'scores',
        datatype: 'FP32',
        shape: [batch, N_OUT],
        data: Array.from(result.scores.data),
      }],
    };
    if (typeof req.body.id === 'string' && req.body.id !== '') answer.id = req.body.id;
    return answer;
  };
  const opts = {schema: {response: {200: responseSchema}}};
  app.post(`/v2/models/${MODEL_NAME}/infer`, opts, infer);
  app.post(`/v2/models/${MODEL_NAME}/versions/1/infer`, opts, infer);

  await app.listen({port: PORT, host: HOST});
  process.stdout.write(`node peer: serving ${MODEL_NAME} on http://${HOST}:${PORT}\n`);
}

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
main().catch((e) => {
  process.stderr.write(`node peer: ${e.stack || e}\n`);
  process.exit(1);
});
