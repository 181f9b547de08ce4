// bench/onnx/ort_reference.js: ONNX Runtime's outputs for fixed inputs, the
// references that scripts/make-models stores next to each model.
//
//   node bench/onnx/ort_reference.js MODEL.onnx DIR < cases.json
//
// cases.json (stdin): [{"name": "b1", "inputs": [{"name", "datatype",
// "shape", "file"}]}], files relative to DIR, raw little-endian row-major.
// Writes every output of every case as DIR/CASE.output.NAME.bin and prints
// {"options": {...}, "cases": [{"name", "outputs": [{"name", "datatype",
// "shape", "file"}]}]} on stdout.
//
// The session is the plainest ONNX Runtime has: one thread, sequential, graph
// optimisations disabled, so the graph is evaluated node by node as exported
// (no fusions or layout changes between the file and the numbers).
'use strict';

const fs = require('fs');
const path = require('path');
const { loadOrt, TYPES, datatypeOf, readTensor, tensorBytes } = require('./ort_common');

const OPTIONS = {
  graphOptimizationLevel: 'disabled',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
};

async function main() {
  if (process.argv.length !== 4) {
    process.stderr.write('usage: node ort_reference.js MODEL.onnx DIR < cases.json\n');
    process.exit(2);
  }
  const [model, dir] = process.argv.slice(2);
  const cases = JSON.parse(fs.readFileSync(0, 'utf8'));
  const ort = loadOrt();
  const session = await ort.InferenceSession.create(model, OPTIONS);
  const answer = { options: OPTIONS, cases: [] };
  for (const c of cases) {
    const feeds = {};
    for (const t of c.inputs) {
      const data = readTensor(path.join(dir, t.file), t.datatype);
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (data.length !== count) {
        throw new Error(`${t.file}: ${data.length} elements, shape ${JSON.stringify(t.shape)}`);
      }
      feeds[t.name] = new ort.Tensor(TYPES[t.datatype].ort, data, t.shape);
    }
    const results = await session.run(feeds);
    const outputs = [];
    for (const name of session.outputNames) {
      const r = results[name];
      const file = `${c.name}.output.${name}.bin`;
      fs.writeFileSync(path.join(dir, file), tensorBytes(r.data));
      outputs.push({ name, datatype: datatypeOf(r.type), shape: r.dims.map(Number), file });
    }
    answer.cases.push({ name: c.name, outputs });
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}

main().catch((e) => {
  process.stderr.write(`ort_reference.js: ${e.stack || e}\n`);
  process.exit(1);
});
