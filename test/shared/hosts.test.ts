/** Backend addresses: host:port with an IPv4 address, a bracketed IPv6 address or an RFC 1123 DNS name, port 1-65535. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDnsName, parseHostPort } from '../../src/shared/hosts.ts';

test('DNS names: labels of letters, digits and inner hyphens, 1-63 each, 253 in all; digits-and-dots is not a name', () => {
  for (const ok of ['localhost', 'vllm.models.svc.cluster.local', 'a-b.c', 'x1', 'api.openai.com.', '3com.example', 'a'.repeat(63)])
    assert.ok(isDnsName(ok), ok);
  for (const bad of ['', '.', '-a', 'a-', 'a..b', 'under_score', 'a b', 'a'.repeat(64), `${'a.'.repeat(127)}a`, '10.0.0.256', '1.2.3', 'ä.example']) {
    assert.equal(isDnsName(bad), false, bad);
  }
});

test('host:port splits into an IP or a DNS name and a port; anything else is null', () => {
  assert.deepEqual(parseHostPort('10.0.0.7:8000'), { host: '10.0.0.7', port: 8000, kind: 'ip' });
  assert.deepEqual(parseHostPort('vllm.models.svc:8000'), { host: 'vllm.models.svc', port: 8000, kind: 'dns' });
  assert.deepEqual(parseHostPort('localhost:1'), { host: 'localhost', port: 1, kind: 'dns' });
  assert.deepEqual(parseHostPort('[::1]:80'), { host: '::1', port: 80, kind: 'ip' });
  assert.deepEqual(parseHostPort('[fd00:10::7]:8000'), { host: 'fd00:10::7', port: 8000, kind: 'ip' });
  assert.deepEqual(parseHostPort('[::ffff:10.0.0.7]:8000'), { host: '::ffff:10.0.0.7', port: 8000, kind: 'ip' });
  const bads = ['nohost', 'host:', ':80', 'host:0', 'host:65536', 'host:80x', '10.0.0.256:80', 'a_b:80', 'host:123456'];
  // IPv6 only in brackets, valid, without a zone; brackets only around IPv6.
  bads.push('::1:80', 'fd00::7:8000', '[::1]', '[::1]:', '[:::1]:80', '[fe80::1%eth0]:80', '[10.0.0.7]:80', '[localhost]:80', '[::1:80');
  for (const bad of bads) {
    assert.equal(parseHostPort(bad), null, bad);
  }
});
