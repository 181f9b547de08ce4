// bench/onnx/ort_bench.js: bench/onnx_bench.c's twin on ONNX Runtime
// (onnxruntime-node): loads a model, runs one fixed input again and again,
// prints one JSON line with the same fields.
//
//   node bench/onnx/ort_bench.js --model PATH [--batch N] [--seq N]
//        [--threads N] [--iterations N] [--warmup N] [--max-seconds S]
//        [--vocab N] [--dump FILE]
//
// The session: graphOptimizationLevel 'all', intraOpNumThreads = --threads,
// interOpNumThreads 1, executionMode 'sequential' (ONNX Runtime's other
// settings at their defaults). load_ms is InferenceSession.create; first_ms
// the first run; p50/p99 (nearest rank), mean, min and max are over the
// timed runs after the warm-up, each timed around `await session.run()` with
// process.hrtime (so they include onnxruntime-node's call overhead: making
// the output tensors and resolving the promise). Inputs come from
// ort_common.js's generator, the values bench/onnx_bench.c makes; every
// variable dimension is the batch size when first, --seq otherwise.
'use strict';

const fs = require('fs');
const { loadOrt, TYPES, datatypeOf, tensorBytes, generate } = require('./ort_common');

const MIN_TIMED = 5;

function parseArgs(argv) {
  const o = { model: null, batch: 1, seq: 128, threads: 1, iterations: 100, warmup: 5,
              maxSeconds: 0, vocab: 1000, dump: null };
  const ints = { batch: 1, seq: 1, threads: 1, iterations: 1, warmup: 0, vocab: 1 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help') {
      process.stdout.write('usage: node ort_bench.js --model PATH [--batch N] [--seq N] ' +
                           '[--threads N] [--iterations N] [--warmup N] [--max-seconds S] ' +
                           '[--vocab N] [--dump FILE]\n');
      process.exit(0);
    }
    const v = argv[i + 1];
    if (!a.startsWith('--') || v === undefined) usage(`bad argument ${a}`);
    i++;
    const key = a.slice(2);
    if (key === 'model') o.model = v;
    else if (key === 'dump') o.dump = v;
    else if (key === 'max-seconds') {
      o.maxSeconds = Number(v);
      if (!(o.maxSeconds >= 0)) usage(`--max-seconds takes a number of seconds, not '${v}'`);
    } else if (key in ints) {
      const n = Number(v);
      if (!Number.isInteger(n) || n < ints[key]) {
        usage(`--${key} takes an integer of at least ${ints[key]}, not '${v}'`);
      }
      o[key] = n;
    } else usage(`unknown option ${a}`);
  }
  if (!o.model) usage('--model is required');
  return o;
}

function usage(msg) {
  process.stderr.write(`ort_bench.js: ${msg} (see --help)\n`);
  process.exit(2);
}

function percentile(sorted, q) {
  const k = Math.ceil(q * sorted.length);
  return sorted[Math.min(Math.max(k, 1), sorted.length) - 1];
}

const fixed = (x, d) => Number(x.toFixed(d));

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const head = { runtime: 'onnxruntime', model: o.model, batch: o.batch, seq: o.seq,
                 threads: o.threads };
  let stage = 'load';
  try {
    const ort = loadOrt();
    const options = {
      graphOptimizationLevel: 'all',
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
    };
    let t = process.hrtime.bigint();
    const session = await ort.InferenceSession.create(o.model, options);
    const loadMs = Number(process.hrtime.bigint() - t) / 1e6;

    stage = 'input';
    const feeds = {};
    session.inputMetadata.forEach((m, i) => {
      const datatype = datatypeOf(m.type);
      const shape = m.shape.map((d, k) => (typeof d === 'number' && d >= 0 ? d
                                           : k === 0 ? o.batch : o.seq));
      if (shape.length === 0 || shape[0] !== o.batch) {
        throw new Error(`input '${m.name}' ${JSON.stringify(m.shape)} has no batch dimension ` +
                        `of ${o.batch}`);
      }
      const count = shape.reduce((a, b) => a * b, 1);
      feeds[m.name] = new ort.Tensor(TYPES[datatype].ort, generate(datatype, count, i, o.vocab),
                                     shape);
    });

    stage = 'execute';
    const total = o.warmup + o.iterations + 1;
    const us = [];
    let firstMs = 0;
    let timedNs = 0;
    let last;
    for (let it = 0; it < total; it++) {
      t = process.hrtime.bigint();
      last = await session.run(feeds);
      const ns = Number(process.hrtime.bigint() - t);
      if (it === 0) firstMs = ns / 1e6;
      else if (it > o.warmup) {
        us.push(ns / 1e3);
        timedNs += ns;
        if (o.maxSeconds > 0 && us.length >= MIN_TIMED && timedNs / 1e9 >= o.maxSeconds) break;
      }
    }
    if (o.dump) fs.writeFileSync(o.dump, tensorBytes(last[session.outputNames[0]].data));
    const mean = timedNs / 1e3 / us.length;
    us.sort((a, b) => a - b);
    Object.assign(head, {
      warmup: o.warmup, iterations: us.length, load_ms: fixed(loadMs, 3),
      first_ms: fixed(firstMs, 3), p50_us: fixed(percentile(us, 0.5), 2),
      p99_us: fixed(percentile(us, 0.99), 2), mean_us: fixed(mean, 2), min_us: fixed(us[0], 2),
      max_us: fixed(us[us.length - 1], 2),
    });
    process.stdout.write(JSON.stringify(head) + '\n');
  } catch (e) {
    head.stage = stage;
    head.error = String(e && e.message ? e.message : e);
    process.stdout.write(JSON.stringify(head) + '\n');
    process.exit(1);
  }
}

main();
