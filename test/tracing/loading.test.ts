/**
 * Tracing off costs nothing on the request path: the serving sidecar does not
 * load the OpenTelemetry SDK or exporter. A resolve hook (node:module
 * registerHooks, preloaded with --import) notes every @opentelemetry package
 * the sidecar process resolves and writes the list when it exits; with
 * tracing on, the same hook sees the SDK (so the check can fail).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeGatewayFiles } from '../helpers/fixtures.ts';
import { startSidecarProcess } from '../helpers/stack.ts';
import { startOtlpReceiver } from '../helpers/otlp-receiver.ts';
import { waitFor } from '../helpers/wait.ts';

const HOOK = `
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
const seen = new Set();
registerHooks({
  resolve(specifier, context, next) {
    const r = next(specifier, context);
    const m = /\\/node_modules\\/@opentelemetry\\/([^/]+)\\//.exec(r.url);
    if (m) seen.add(m[1]);
    return r;
  },
});
if (isMainThread) process.on('exit', () => writeFileSync(process.env.IGW_TEST_LOADED, JSON.stringify([...seen].sort())));
`;

async function loadedBySidecar(config: Record<string, unknown>): Promise<string[]> {
  const files = writeGatewayFiles({ config });
  const hook = join(files.dir, 'hook.mjs');
  const out = join(files.dir, 'loaded.json');
  writeFileSync(hook, HOOK);
  const sidecar = await startSidecarProcess(files.configFile, { NODE_OPTIONS: `--import ${hook}`, IGW_TEST_LOADED: out });
  // The SIGTERM handler is set just after the ready line; an answer from the admin server comes after it (a later turn of the event loop).
  await waitFor(async () => (await fetch(`${sidecar.adminUrl}/healthz`)).ok, { what: 'the admin server to answer' });
  await sidecar.stop();
  assert.ok(existsSync(out), `the hook wrote no list at exit:\n${sidecar.output()}`);
  return JSON.parse(readFileSync(out, 'utf8')) as string[];
}

test('with tracing off the sidecar loads no OpenTelemetry module; with it on, it loads the SDK and the exporter', async (t) => {
  // @opentelemetry/api alone is loaded either way: prom-client requires it (processCpuTotal.js, for exemplars); it is
  // the no-op API, not the SDK. Nothing else of OpenTelemetry may be.
  assert.deepEqual(
    (await loadedBySidecar({})).filter((p) => p !== 'api'),
    [],
  );
  const r = await startOtlpReceiver();
  t.after(() => r.close());
  const on = await loadedBySidecar({ tracing: { enabled: true, endpoint: r.url } });
  for (const pkg of ['api', 'sdk-trace', 'otlp-transformer']) assert.ok(on.includes(pkg), `${pkg} in ${on.join(', ')}`);
});
