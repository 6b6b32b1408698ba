#!/usr/bin/env node
// ort_bench.js: times ONNX models in ONNX Runtime's CPU execution provider,
// the way docs/peers.md says is fair to it, and prints one JSON object per
// model (one per line) on stdout (scripts/compare-ort.sh).
//
//   NODE_PATH=$HOME/.cache/slab/ort/node_modules node tools/reference/ort_bench.js \
//     --model DIR/deit_tiny_b1.onnx [--model ...] [--input X.f32] [--check OUT.f32] \
//     [--warmup 10] [--block 20] [--blocks 3] [--threads 2] [--no-spin]
//
// onnxruntime-node@1.30.0 comes from npm, installed with
// `npm install --ignore-scripts` (compare-ort.sh does it into
// $HOME/.cache/slab/ort); the native library ships inside the package.
//
// Session options are docs/peers.md's: CPU provider, every graph optimisation,
// intraOpNumThreads = --threads, interOpNumThreads 1, sequential execution.
// Each model gets --warmup untimed runs, then --blocks blocks of --block timed
// runs, blocks alternating between models (never single runs interleaved
// across live sessions: an idle session's spinning pool threads would take the
// core from the one being timed). compare-ort.sh runs one model per process
// and three processes per model ("best mode": the fastest process's median).
//
// The input of a model NAME_bB.onnx is NAME_bB_input.f32 beside it when it
// exists (raw little-endian float32 [B,3,224,224], written by ort_export.py),
// else a fixed pseudo-random one; with --check the logits of one run on that
// input are written raw to NAME_bB_ort.f32 beside the model.
'use strict';

const fs = require('fs');
const path = require('path');

function usage(msg) {
	process.stderr.write(`ort_bench.js: ${msg}\n`);
	process.exit(1);
}

function parseArgs(argv) {
	const a = { models: [], warmup: 10, block: 20, blocks: 3, threads: 2, check: false, spin: true };
	for (let i = 0; i < argv.length; i++) {
		const k = argv[i];
		const v = () => {
			if (i + 1 >= argv.length) usage(`flag ${k} needs a value`);
			return argv[++i];
		};
		const int = (name, lo) => {
			const s = v();
			const n = Number(s);
			if (!Number.isInteger(n) || n < lo) usage(`flag ${name}: ${JSON.stringify(s)} is not an integer >= ${lo}`);
			return n;
		};
		switch (k) {
		case '--model': a.models.push(v()); break;
		case '--warmup': a.warmup = int(k, 0); break;
		case '--block': a.block = int(k, 1); break;
		case '--blocks': a.blocks = int(k, 1); break;
		case '--threads': a.threads = int(k, 1); break;
		case '--check': a.check = true; break;
		case '--no-spin': a.spin = false; break;
		default: usage(`unknown flag ${JSON.stringify(k)}`);
		}
	}
	if (a.models.length === 0) usage('flag --model: at least one .onnx file is needed');
	return a;
}

let ort;
try {
	ort = require('onnxruntime-node');
} catch (e) {
	usage(`cannot load onnxruntime-node (${e.message.split('\n')[0]}): install it with ` +
		'`npm install --ignore-scripts onnxruntime-node@1.30.0` in $HOME/.cache/slab/ort and set NODE_PATH to its node_modules ' +
		'(scripts/compare-ort.sh does both)');
}

function batchOf(file) {
	const m = /_b(\d+)\.onnx$/.exec(file);
	if (!m) usage(`flag --model: ${file}: the name must end in _b<batch>.onnx (ort_export.py's naming)`);
	return Number(m[1]);
}

function input(file, batch) {
	const n = batch * 3 * 224 * 224;
	const f = file.replace(/\.onnx$/, '_input.f32');
	let data;
	if (fs.existsSync(f)) {
		const buf = fs.readFileSync(f);
		if (buf.length !== 4 * n) usage(`${f}: ${buf.length} bytes, want ${4 * n} ([${batch},3,224,224] float32)`);
		data = new Float32Array(buf.buffer, buf.byteOffset, n).slice();
	} else {
		data = new Float32Array(n);
		let s = 12345;
		for (let i = 0; i < n; i++) {
			s = (Math.imul(s, 1103515245) + 12345) >>> 0;
			data[i] = (s / 4294967296) * 2 - 1;
		}
	}
	return new ort.Tensor('float32', data, [batch, 3, 224, 224]);
}

function median(xs) {
	const s = [...xs].sort((p, q) => p - q);
	const h = s.length >> 1;
	return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function quantile(xs, q) {
	const s = [...xs].sort((p, r) => p - r);
	return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

async function main() {
	const a = parseArgs(process.argv.slice(2));
	const opts = {
		executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: a.threads,
		interOpNumThreads: 1, executionMode: 'sequential',
	};
	// --no-spin: pool threads sleep instead of spinning between ops. Not
	// docs/peers.md's set-up; for a loaded machine, where spinning collapses
	// (as OMP_WAIT_POLICY=PASSIVE for PyTorch).
	if (!a.spin) opts.extra = { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } };
	const ms = [];
	for (const file of a.models) {
		if (!fs.existsSync(file)) usage(`flag --model: ${file} does not exist`);
		const batch = batchOf(file);
		const t0 = process.hrtime.bigint();
		let session;
		try {
			session = await ort.InferenceSession.create(file, opts);
		} catch (e) {
			usage(`${file}: ${e.message}`);
		}
		const create = Number(process.hrtime.bigint() - t0) / 1e6;
		const feeds = { [session.inputNames[0]]: input(file, batch) };
		ms.push({ file, batch, session, feeds, create, times: [], blockMedians: [], cpuMs: 0 });
	}
	for (const m of ms) {
		for (let i = 0; i < a.warmup; i++) await m.session.run(m.feeds);
		if (a.check) {
			const out = await m.session.run(m.feeds);
			const y = out[m.session.outputNames[0]];
			const f = m.file.replace(/\.onnx$/, '_ort.f32');
			fs.writeFileSync(f, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength));
		}
	}
	for (let b = 0; b < a.blocks; b++) {
		for (const m of ms) {
			const block = [];
			const cpu0 = process.cpuUsage();
			for (let i = 0; i < a.block; i++) {
				const t0 = process.hrtime.bigint();
				await m.session.run(m.feeds);
				block.push(Number(process.hrtime.bigint() - t0) / 1e6);
			}
			const cpu = process.cpuUsage(cpu0);
			m.cpuMs += (cpu.user + cpu.system) / 1e3;
			m.times.push(...block);
			m.blockMedians.push(median(block));
		}
	}
	for (const m of ms) {
		const name = path.basename(m.file).replace(/_b\d+\.onnx$/, '');
		process.stdout.write(JSON.stringify({
			model: name, file: m.file, batch: m.batch, median_ms: median(m.times), p10_ms: quantile(m.times, 0.1),
			p90_ms: quantile(m.times, 0.9), min_ms: Math.min(...m.times), block_median_ms: m.blockMedians,
			cpu_ms_per_run: m.cpuMs / m.times.length, wall_ms_per_run: m.times.reduce((p, q) => p + q, 0) / m.times.length,
			runs: m.times.length, warmup: a.warmup, block: a.block, session_create_ms: m.create,
			ort: ort.env.versions, session_options: opts, pid: process.pid,
		}) + '\n');
		await m.session.release();
	}
}

main().catch((e) => usage(e.stack || String(e)));
