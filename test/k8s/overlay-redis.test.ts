// k8s/overlays/redis: the base plus a Redis for shared quota counters.
// Statically: the overlay builds, its sidecar config passes the schema and
// differs from the base's only in `redis` and `quotas`, the Redis URL (with
// the password the patch injects) points at the Redis Service, the Service at
// the Redis pod, the password Secret is the same on both sides, and the
// NetworkPolicy admits exactly the gateway pods on the Redis port.
// For real: redis-server runs with the StatefulSet's own arguments, its probe
// command answers, and the sidecar (the Deployment's command, environment as
// the kubelet would expand it) behind Envoy serves a request through a Redis
// quota decision — and refuses to admit requests once Redis is gone.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import YAML from 'yaml';
import { applyEnvOverrides } from '../../src/config/load.ts';
import { ConfigSchema } from '../../src/config/schema.ts';
import { PROJECT_ROOT } from '../../src/envoy/binary.ts';
import { renderGatewayConfig } from '../../src/envoy/config.ts';
import { startEnvoy } from '../../src/envoy/process.ts';
import { startDemoUpstream } from '../../src/demo/upstream.ts';
import { envoyBinary } from '../envoy/helpers.ts';
import { withFreePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';
import { build, find } from './kustomize.ts';
import { isObj, localPodConfig, obj, type Obj } from './shape.ts';

const run = promisify(execFile);
const OVERLAY = join(PROJECT_ROOT, 'k8s', 'overlays', 'redis');
const overlay = build(OVERLAY);
const base = build(join(PROJECT_ROOT, 'k8s', 'base'));

const o = obj;
const list = (v: unknown, what: string): Obj[] => {
  assert.ok(Array.isArray(v), `${what} must be a list`);
  return v.map((x, i) => o(x, `${what}[${i}]`));
};
const podSpec = (workload: Obj): Obj => o(o(o(workload.spec, 'spec').template, 'template').spec, 'pod spec');
const podLabels = (workload: Obj): Obj => o(o(o(o(workload.spec, 'spec').template, 'template').metadata, 'template metadata').labels, 'pod labels');
const containerOf = (workload: Obj, name: string): Obj => {
  const c = list(podSpec(workload).containers, 'containers').find((x) => x.name === name);
  assert.ok(c !== undefined, `container ${name}`);
  return c;
};
const selects = (selector: Obj, labels: Obj): boolean => Object.entries(selector).every(([k, v]) => labels[k] === v);
const gatewayText = (b: typeof overlay): string => String(o(find(b, 'ConfigMap', 'inference-gateway-config').data, 'data')['gateway.yaml']);

const deployment = find(overlay, 'Deployment', 'inference-gateway');
const redis = find(overlay, 'StatefulSet', 'inference-gateway-redis');
const redisService = find(overlay, 'Service', 'inference-gateway-redis');
const redisContainer = containerOf(redis, 'redis');
const sidecar = containerOf(deployment, 'sidecar');
const gatewayYaml = o(YAML.parse(gatewayText(overlay)), 'overlay gateway.yaml');

/** `$(NAME)` references expanded the way the kubelet does, from a container's env with secret values supplied. */
function expandEnv(c: Obj, secrets: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of list(c.env ?? [], 'env')) {
    const name = String(e.name);
    if (e.valueFrom !== undefined) {
      const ref = o(o(e.valueFrom, 'valueFrom').secretKeyRef, `${name} secretKeyRef`);
      const v = secrets[`${String(ref.name)}/${String(ref.key)}`];
      assert.ok(v !== undefined, `${name} reads the Secret ${String(ref.name)} key ${String(ref.key)}`);
      out[name] = v;
    } else {
      out[name] = String(e.value).replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => out[v] ?? m);
    }
  }
  return out;
}
const expandArgs = (args: string[], env: Record<string, string>): string[] =>
  args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, v: string) => env[v] ?? m));
/** The value after `--flag` in redis-server's arguments. */
function flag(args: string[], name: string): string {
  const i = args.indexOf(name);
  assert.ok(i >= 0 && i + 1 < args.length, `redis-server ${name} is set`);
  return args[i + 1] as string;
}

const PASSWORD = 'f00dfeedc0ffee42';
const SECRETS = { 'inference-gateway-redis/password': PASSWORD };

void test('the overlay adds Redis to the base: same objects plus a StatefulSet, its Service and NetworkPolicy; only gateway.yaml and the sidecar env change', () => {
  const ids = (b: typeof overlay): string[] => b.objects.map((x) => `${String(x.doc.kind)}/${String(o(x.doc.metadata, 'metadata').name)}`).sort();
  assert.deepEqual(
    ids(overlay)
      .filter((id) => !ids(base).includes(id))
      .sort(),
    ['NetworkPolicy/inference-gateway-redis', 'Service/inference-gateway-redis', 'StatefulSet/inference-gateway-redis'],
  );
  assert.deepEqual(
    ids(base).filter((id) => !ids(overlay).includes(id)),
    [],
  );
  // The overlay's gateway.yaml is the base's plus `redis` and `quotas`: nothing else drifts.
  const baseGateway = o(YAML.parse(gatewayText(base)), 'base gateway.yaml');
  const { redis: r, quotas: q, ...rest } = gatewayYaml;
  assert.ok(r !== undefined && q !== undefined);
  assert.deepEqual(rest, baseGateway, 'k8s/overlays/redis/gateway.yaml must equal k8s/base/gateway.yaml apart from redis and quotas');
  assert.equal(baseGateway.redis, undefined);
  // The Deployment differs only in the sidecar's env.
  const baseDeployment = structuredClone(find(base, 'Deployment', 'inference-gateway'));
  const patched = structuredClone(deployment);
  delete containerOf(patched, 'sidecar').env;
  // (kustomize lists a patched container first; the order of containers does not matter)
  for (const d of [patched, baseDeployment])
    podSpec(d).containers = list(podSpec(d).containers, 'containers').sort((a, b) => String(a.name).localeCompare(String(b.name)));
  assert.deepEqual(patched, baseDeployment);
});

void test('the overlay gateway.yaml passes the schema with the patched environment: Redis for quotas, a default plan', () => {
  const env = expandEnv(sidecar, SECRETS);
  const parsed = ConfigSchema.safeParse(applyEnvOverrides(gatewayYaml, env));
  assert.ok(parsed.success, parsed.success ? '' : parsed.error.message);
  const cfg = parsed.data;
  assert.equal(cfg.redis.url, `redis://:${PASSWORD}@inference-gateway-redis:6379/0`, 'the environment supplies the URL with the password');
  assert.deepEqual(cfg.redis.clusterNodes, []);
  assert.ok(cfg.quotas.defaultPlan !== undefined && cfg.quotas.plans.some((p) => p.name === cfg.quotas.defaultPlan && p.limits.length > 0));
  // The file alone is valid too (what `inference-gateway config validate` sees), with the same target.
  const alone = ConfigSchema.safeParse(gatewayYaml);
  assert.ok(alone.success, alone.success ? '' : alone.error.message);
  const a = new URL(String(alone.data.redis.url));
  const b = new URL(String(cfg.redis.url));
  assert.deepEqual([a.protocol, a.host, a.pathname], [b.protocol, b.host, b.pathname], 'gateway.yaml and the environment name the same Redis');
  assert.equal(a.password, '', 'no password in the ConfigMap');
  assert.ok(!gatewayText(overlay).includes(PASSWORD));
});

void test('Redis URL → Service → pod → redis-server port; the password comes from one Secret on both sides', () => {
  const url = new URL(String(o(gatewayYaml.redis, 'redis').url));
  assert.equal(url.hostname, String(o(redisService.metadata, 'metadata').name), 'redis.url names the Redis Service (same namespace)');
  const svc = o(redisService.spec, 'Service spec');
  const port = list(svc.ports, 'ports').find((p) => String(p.port) === url.port);
  assert.ok(port !== undefined, `the Service exposes port ${url.port}`);
  assert.ok(selects(o(svc.selector, 'selector'), podLabels(redis)), 'the Service selects the Redis pods');
  assert.ok(!selects(o(svc.selector, 'selector'), podLabels(deployment)), 'and not the gateway pods');
  const cport = list(redisContainer.ports, 'redis ports').find((p) => p.name === port.targetPort || p.containerPort === port.targetPort);
  assert.ok(cport !== undefined, 'the targetPort is a declared port of the redis container');
  const args = (redisContainer.args as string[]).map(String);
  assert.equal(flag(args, '--port'), String(cport.containerPort), 'redis-server listens on the container port');
  assert.equal(String(cport.containerPort), url.port);
  assert.equal(o(o(redis.spec, 'spec'), 'spec').serviceName, o(redisService.metadata, 'metadata').name);

  // The password: the sidecar's URL and redis-server's --requirepass expand to the same Secret value.
  const sidecarEnv = expandEnv(sidecar, SECRETS);
  const redisEnv = expandEnv(redisContainer, SECRETS);
  assert.equal(new URL(String(sidecarEnv.INFERENCE_GATEWAY_REDIS__URL)).password, PASSWORD);
  assert.equal(flag(expandArgs(args, redisEnv), '--requirepass'), PASSWORD);
  assert.equal(redisEnv.REDISCLI_AUTH, PASSWORD, 'the probes authenticate');
  // Counters must not be evicted (an evicted counter is a reset limit) and survive restarts.
  assert.equal(flag(args, '--maxmemory-policy'), 'noeviction');
  assert.equal(flag(args, '--appendonly'), 'yes');
  const dataMount = list(redisContainer.volumeMounts, 'volumeMounts').find((m) => m.mountPath === flag(args, '--dir'));
  assert.ok(dataMount !== undefined, '--dir is a mounted volume');
  const claims = list(o(redis.spec, 'spec').volumeClaimTemplates, 'volumeClaimTemplates');
  assert.ok(
    claims.some((c) => o(c.metadata, 'metadata').name === dataMount.name),
    'the data volume is the persistent claim',
  );
});

void test('NetworkPolicy: into Redis only from the gateway pods, only on the Redis port; no egress from Redis', () => {
  const np = o(find(overlay, 'NetworkPolicy', 'inference-gateway-redis').spec, 'spec');
  const sel = o(o(np.podSelector, 'podSelector').matchLabels, 'matchLabels');
  assert.ok(selects(sel, podLabels(redis)), 'the policy applies to the Redis pods');
  assert.ok(!selects(sel, podLabels(deployment)), 'and not to the gateway pods');
  assert.deepEqual([...(np.policyTypes as string[])].sort(), ['Egress', 'Ingress']);
  assert.deepEqual(np.egress, []);
  const rules = list(np.ingress, 'ingress');
  assert.equal(rules.length, 1);
  const rule = rules[0] as Obj;
  const from = list(rule.from, 'from');
  assert.equal(from.length, 1);
  assert.deepEqual(Object.keys(from[0] as Obj), ['podSelector'], 'pods of this namespace only');
  const peer = o(o((from[0] as Obj).podSelector, 'podSelector').matchLabels, 'matchLabels');
  assert.ok(selects(peer, podLabels(deployment)), 'the gateway pods may connect');
  assert.ok(!selects(peer, podLabels(redis)));
  const redisPort = list(redisContainer.ports, 'ports')[0] as Obj;
  assert.deepEqual(list(rule.ports, 'ports'), [{ protocol: 'TCP', port: redisPort.containerPort }]);
  // The base policy for the gateway pods restricts ingress only, so their egress to Redis is open.
  assert.deepEqual(o(find(overlay, 'NetworkPolicy', 'inference-gateway').spec, 'spec').policyTypes, ['Ingress']);
});

void test('the Redis pod is locked down, pinned, probed and sized', () => {
  const pod = podSpec(redis);
  const sc = o(pod.securityContext, 'pod securityContext');
  assert.equal(sc.runAsNonRoot, true);
  assert.ok(typeof sc.runAsUser === 'number' && sc.runAsUser > 0);
  assert.equal(pod.automountServiceAccountToken, false);
  const csc = o(redisContainer.securityContext, 'securityContext');
  assert.equal(csc.readOnlyRootFilesystem, true);
  assert.equal(csc.allowPrivilegeEscalation, false);
  assert.deepEqual(o(csc.capabilities, 'capabilities').drop, ['ALL']);
  assert.match(String(redisContainer.image), /^redis:\d+\.\d+\.\d+(-alpine)?$/, 'a pinned Redis release');
  for (const p of ['readinessProbe', 'livenessProbe']) assert.ok(isObj(o(redisContainer[p], p).exec), `${p} is an exec probe (no network path needed)`);
  const res = o(redisContainer.resources, 'resources');
  const mi = (q: unknown): number => Number(/^(\d+)Mi$/.exec(String(q))?.[1]);
  const maxmemory = Number(/^(\d+)mb$/.exec(flag((redisContainer.args as string[]).map(String), '--maxmemory'))?.[1]);
  assert.ok(maxmemory > 0 && maxmemory < mi(o(res.limits, 'limits').memory), '--maxmemory stays below the memory limit');
});

// ---------------------------------------------------------------- for real

void test('for real: redis-server with the StatefulSet arguments, its probe, and the sidecar behind Envoy deciding quotas in it', async (t) => {
  const bin = await envoyBinary();
  if (bin === undefined) return t.skip('Envoy unavailable');
  const dir = await mkdtemp(join(tmpdir(), 'ig-overlay-redis-'));
  t.after(() => rm(dir, { recursive: true, force: true }));

  // redis-server: the container's command and arguments, expanded as the kubelet does; only the port and data dir are local.
  // It cannot bind port 0, so the port is picked up front and the start retried if the port was taken (ports.ts).
  const redisEnv = expandEnv(redisContainer, SECRETS);
  const [redisCmd] = redisContainer.command as string[];
  mkdirSync(join(dir, 'data'));
  const redis = await withFreePort(async (port) => {
    const args = expandArgs((redisContainer.args as string[]).map(String), redisEnv).map((a, i, all) =>
      all[i - 1] === '--port' ? String(port) : all[i - 1] === '--dir' ? join(dir, 'data') : a,
    );
    const proc = spawn(String(redisCmd), [...args, '--bind', '127.0.0.1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const exit = new Promise<void>((r) => proc.once('exit', () => r()));
    // The readiness probe, verbatim but for the port: it must pass (the password comes from REDISCLI_AUTH).
    const probe = (o(o(redisContainer.readinessProbe, 'readinessProbe').exec, 'exec').command as string[]).map((a) => a.replace('-p 6379', `-p ${port}`));
    const probeOnce = () =>
      run(String(probe[0]), probe.slice(1), { env: { PATH: process.env.PATH ?? '', REDISCLI_AUTH: String(redisEnv.REDISCLI_AUTH) }, timeout: 5000 });
    try {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}):\n${out}`);
          return probeOnce().then(
            () => true,
            () => false,
          );
        },
        { what: () => `the Redis readiness probe to pass:\n${out}`, timeoutMs: 10_000, intervalMs: 100 },
      );
    } catch (err) {
      proc.kill('SIGKILL');
      throw err;
    }
    return { port, proc, exit, probe };
  });
  const { port: redisPort, proc: redisProc, exit: redisExit, probe } = redis;
  t.after(() => void redisProc.kill('SIGKILL'));
  // Without the password the server refuses: the probe's grep fails.
  await assert.rejects(run(String(probe[0]), probe.slice(1), { env: { PATH: process.env.PATH ?? '' }, timeout: 5000 }));

  // The sidecar: the overlay config with pod paths → temp paths, the env the patch sets (Redis → the local port).
  const upstream = await startDemoUpstream({ port: 0 });
  t.after(() => upstream.close());
  const cfg = localPodConfig(gatewayYaml, dir);
  o(cfg.auth, 'auth').apiKeyFiles = [join(dir, 'keys.yaml')];
  writeFileSync(join(dir, 'routing.yaml'), String(o(find(overlay, 'ConfigMap', 'inference-gateway-routing').data, 'data')['routing.yaml']));
  writeFileSync(join(dir, 'gateway.yaml'), YAML.stringify(cfg));
  const cli = join(PROJECT_ROOT, 'src', 'cli', 'main.ts');
  const key = (
    await run(process.execPath, [cli, 'keys', 'create', '--file', join(dir, 'keys.yaml'), '--principal', 'redis-test', '--org', 'acme', '--tenant', 'ops'], {
      timeout: 20_000,
    })
  ).stdout.trim();

  const env = expandEnv(sidecar, SECRETS);
  const redisUrl = new URL(String(env.INFERENCE_GATEWAY_REDIS__URL));
  redisUrl.hostname = '127.0.0.1';
  redisUrl.port = String(redisPort);
  const command = (sidecar.command as string[]).map(String);
  const args = command.slice(1).map((a, i, all) => (all[i - 1] === '--config' ? join(dir, 'gateway.yaml') : a));
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...env, INFERENCE_GATEWAY_REDIS__URL: redisUrl.href },
  });
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the sidecar did not start:\n${out}`)), 20_000);
    child.stdout.on('data', () => {
      if (out.includes('"sidecar ready"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`the sidecar exited (${code}):\n${out}`)));
  });

  const envoy = await startEnvoy({
    bin,
    workDir: join(dir, 'envoy'),
    configYaml: renderGatewayConfig({
      listenerPort: 0,
      adminPort: 0,
      sidecarSocket: join(dir, 'sidecar.sock'),
      clusters: [{ name: 'model-server', host: '127.0.0.1', port: upstream.port }],
    }),
  });
  t.after(() => envoy.stop());
  const url = `http://127.0.0.1:${await envoy.listenerPort()}/v1/chat/completions`;
  const chat = (): Promise<Response> =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'example-model', messages: [{ role: 'user', content: 'hi' }] }),
    });

  const ok = await chat();
  assert.equal(ok.status, 200, await ok.clone().text());
  assert.ok(ok.headers.get('x-ratelimit-limit-requests') !== null, 'a quota plan applied');
  // The decision was taken in Redis: counters under the configured prefix.
  const admin = new Redis({ port: redisPort, host: '127.0.0.1', password: PASSWORD, lazyConnect: true, maxRetriesPerRequest: 1 });
  t.after(() => admin.disconnect());
  const prefix = String(o(gatewayYaml.redis, 'redis').keyPrefix);
  const keys = await admin.keys(`${prefix}*`);
  assert.ok(keys.length > 0, `quota keys under ${prefix} in Redis`);
  admin.disconnect();

  // Redis gone: whenStoreDown fail_closed — nothing is admitted.
  redisProc.kill('SIGKILL');
  await redisExit;
  const refused = await chat();
  assert.equal(refused.status, 503, await refused.clone().text());
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'quota_unavailable');
});
