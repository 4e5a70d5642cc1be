/**
 * `npm run bench:tracing`: the sidecar's CPU per request with request spans
 * exported (OpenTelemetry SDK, OTLP/HTTP protobuf, sampled at --ratio) against
 * tracing off, on the same pipeline (`npm run bench:pipeline`: the real
 * stages and stores, driven in-process). The runs alternate, off then on,
 * --rounds times, each in a fresh process; the collector is a sink in this
 * process (it answers every export with an empty 200), so its own work is
 * not counted as the sidecar's.
 *
 *   npm run bench:tracing -- [--ratio 0.1] [--rounds 3] [--seconds 5] [--quota none|memory|redis] [--target-us 15]
 *
 * Prints each run, then the medians and the minimums of each side and their
 * differences (on − off) in µs per request. The minimum is the figure to
 * compare on a shared machine: other processes can only add CPU time to a
 * run (cache and frequency effects), never take it away, so the least a run
 * took is the closest to the code's own cost; the median shows the spread.
 * With --check exits 1 when the difference of the minimums is above
 * --target-us (issue #16: within +15 µs at 10% sampling).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    ratio: { type: 'string', default: '0.1' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    quota: { type: 'string', default: 'memory' },
    'target-us': { type: 'string', default: '15' },
    check: { type: 'boolean', default: false },
  },
});

let exports = 0;
const sink = createServer((req, res) => {
  let bytes = 0;
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    exports++;
    if (bytes === 0) process.stderr.write('an empty export\n');
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const endpoint = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/v1/traces`;

const script = join(import.meta.dirname, 'pipeline.ts');
const run = async (tracing: string): Promise<number> => {
  const args = [script, '--quota', values.quota, '--seconds', values.seconds, '--tracing', tracing, '--tracing-endpoint', endpoint];
  // Asynchronously: a blocking spawn would stop this process's event loop, and with it the sink the child exports to.
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`bench:pipeline exited ${code}: ${text}`))));
  });
  const m = /([\d.]+) µs CPU per request/.exec(out);
  if (m === null) throw new Error(`no figure in: ${out}`);
  process.stdout.write(out);
  return Number(m[1]);
};

const off: number[] = [];
const on: number[] = [];
for (let i = 0; i < Number(values.rounds); i++) {
  off.push(await run('off'));
  on.push(await run(values.ratio));
}
sink.close();
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
};
const signed = (x: number): string => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;
const diffMedian = median(on) - median(off);
const diffMin = Math.min(...on) - Math.min(...off);
process.stdout.write(
  `${new Date().toISOString()} tracing at ${values.ratio} vs off (quota ${values.quota}, ${values.rounds} rounds of ${values.seconds} s, Node ${process.version}): ` +
    `minimum off ${Math.min(...off).toFixed(1)} µs, on ${Math.min(...on).toFixed(1)} µs, difference ${signed(diffMin)} µs per request; ` +
    `median off ${median(off).toFixed(1)} µs, on ${median(on).toFixed(1)} µs, difference ${signed(diffMedian)} µs ` +
    `(target ≤ +${values['target-us']} µs); the collector received ${exports} exports\n`,
);
if (values.check && (diffMin > Number(values['target-us']) || exports === 0)) process.exit(1);
