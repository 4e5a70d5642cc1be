import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { canListen, freePort, portTaken, withFreePort } from './ports.ts';

test('freePort picks a bindable port below the ephemeral range; span asks for a free pair', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const p = await freePort();
  assert.ok(p >= 10_000 && p < low, `${p} not in [10000, ${low})`);
  assert.equal(await canListen(p), true);
  const q = await freePort({ span: 10_000 });
  assert.ok(q + 10_000 < low, `${q} + 10000 reaches the ephemeral range`);
});

test('withFreePort starts again on another port when the port was taken, and only then', async () => {
  // A real EADDRINUSE: the first attempt binds a port somebody else holds.
  const squatter = createServer();
  const taken = await freePort();
  await new Promise<void>((resolve) => squatter.listen(taken, '127.0.0.1', resolve));
  try {
    const tried: number[] = [];
    const server = await withFreePort(async (port) => {
      tried.push(port);
      const s = createServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(tried.length === 1 ? taken : port, '127.0.0.1', resolve);
      });
      return s;
    });
    assert.equal(tried.length, 2);
    server.close();
  } finally {
    squatter.close();
  }

  let calls = 0;
  await assert.rejects(
    withFreePort(async () => {
      calls++;
      throw new Error('config invalid');
    }),
    /config invalid/,
  );
  assert.equal(calls, 1, 'other failures are not retried');
  assert.equal(portTaken(new Error('Failed listening on port 6379 (TCP): bind: Address already in use')), true);
});
