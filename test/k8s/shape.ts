/**
 * Assertion helpers for walking parsed manifests and configs: each returns
 * the value with a narrower type or fails the test naming what was expected.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';

export type Obj = Record<string, unknown>;

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function obj(v: unknown, what: string): Obj {
  assert.ok(isObj(v), `${what} must be a mapping`);
  return v;
}
export function arr(v: unknown, what: string): unknown[] {
  assert.ok(Array.isArray(v), `${what} must be a list`);
  return v;
}
export function str(v: unknown, what: string): string {
  assert.equal(typeof v, 'string', `${what} must be a string`);
  return v as string;
}
export function num(v: unknown, what: string): number {
  assert.equal(typeof v, 'number', `${what} must be a number`);
  return v as number;
}
export function objs(v: unknown, what: string): Obj[] {
  return arr(v, what).map((x, i) => obj(x, `${what}[${i}]`));
}

/**
 * A pod's sidecar config (gateway.yaml) with every path inside the pod moved
 * into `dir`, and the admin port on a free loopback port, so the config can
 * run on this machine as it is.
 */
export function localPodConfig(gatewayYaml: Obj, dir: string): Obj {
  const cfg = structuredClone(gatewayYaml);
  const server = obj(cfg.server, 'server');
  obj(server.grpc, 'grpc').socket = join(dir, 'sidecar.sock');
  server.admin = { host: '127.0.0.1', port: 0 };
  obj(cfg.routing, 'routing').snapshotFile = join(dir, 'routing.yaml');
  obj(cfg.routing, 'routing').credentialsDir = join(dir, 'credentials');
  obj(cfg.audit, 'audit').file = join(dir, 'audit.jsonl');
  obj(cfg.audit, 'audit').signingKeyFile = join(dir, 'audit-key.pem');
  return cfg;
}
