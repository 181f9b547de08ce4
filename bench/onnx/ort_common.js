// bench/onnx/ort_common.js: what ort_reference.js and ort_bench.js share:
// onnxruntime-node (from bench/node/node_modules), the datatype table, and
// the input generator that bench/onnx_bench.c repeats value for value.
'use strict';

const fs = require('fs');
const path = require('path');

const ORT_DIR = path.join(__dirname, '..', 'node', 'node_modules', 'onnxruntime-node');

function loadOrt() {
  try {
    return require(ORT_DIR);
  } catch (e) {
    throw new Error(`cannot load onnxruntime-node from ${ORT_DIR} (cd bench/node && npm install ` +
                    `--ignore-scripts): ${e.message}`);
  }
}

function ortVersion() {
  return JSON.parse(fs.readFileSync(path.join(ORT_DIR, 'package.json'), 'utf8')).version;
}

// v2 datatype <-> ONNX Runtime tensor type and typed array.
const TYPES = {
  FP32: { ort: 'float32', array: Float32Array },
  FP64: { ort: 'float64', array: Float64Array },
  INT32: { ort: 'int32', array: Int32Array },
  INT64: { ort: 'int64', array: BigInt64Array },
};

function datatypeOf(ortType) {
  for (const [k, v] of Object.entries(TYPES)) if (v.ort === ortType) return k;
  throw new Error(`tensor type ${ortType} is not supported here`);
}

// The typed array of a raw little-endian file (copied: Buffer's memory may
// not be aligned for the element type).
function readTensor(file, datatype) {
  const buf = fs.readFileSync(file);
  const T = TYPES[datatype].array;
  if (buf.length % T.BYTES_PER_ELEMENT) throw new Error(`${file}: size is not whole ${datatype}s`);
  const copy = new Uint8Array(buf.length);
  copy.set(buf);
  return new T(copy.buffer);
}

function tensorBytes(data) {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

// The benchmark's input: xorshift32 from a seed per input; FP32 values
// (x >>> 8) / 2^24 * 2 - 1, in [-1, 1) and exact in float32; integers
// x % vocab. bench/onnx_bench.c makes the same values.
function generate(datatype, count, inputIndex, vocab) {
  let x = (2463534242 + inputIndex * 2654435761) >>> 0;
  if (x === 0) x = 1;
  const next = () => {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    return x;
  };
  const out = new TYPES[datatype].array(count);
  for (let i = 0; i < count; i++) {
    const v = next();
    if (datatype === 'FP32' || datatype === 'FP64') out[i] = ((v >>> 8) / 16777216) * 2 - 1;
    else if (datatype === 'INT64') out[i] = BigInt(v % vocab);
    else out[i] = v % vocab;
  }
  return out;
}

module.exports = { loadOrt, ortVersion, TYPES, datatypeOf, readTensor, tensorBytes, generate };
