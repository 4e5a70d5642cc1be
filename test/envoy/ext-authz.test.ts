import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { toExtAuthzConfig } from '../../src/envoy/ext-authz.ts';

test('envoy/ext-authz.yaml is envoy/gateway.yaml with ext_authz in place of ext_proc (run node scripts/gen-ext-authz.ts after editing gateway.yaml)', () => {
  const committed: unknown = YAML.parse(readFileSync('envoy/ext-authz.yaml', 'utf8'));
  const rendered: unknown = YAML.parse(toExtAuthzConfig(readFileSync('envoy/gateway.yaml', 'utf8')));
  assert.deepEqual(committed, rendered);
  const text = JSON.stringify(rendered);
  assert.ok(!text.includes('envoy.filters.http.ext_proc'));
  assert.ok(text.includes('"failure_mode_allow":false'));
});
