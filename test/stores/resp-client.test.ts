/**
 * The quota store's lean Redis client (src/stores/resp/client.ts) and the
 * store on it, against real redis-servers started here and a scripted fake
 * server: commands of one turn in one write, replies cut anywhere by TCP,
 * never queued while disconnected, Redis killed mid-flight (waiting calls
 * fail at once, the client reconnects with backoff), a silent peer cut off
 * by the socket timeout, AUTH (password, ACL user), SELECT, NOSCRIPT after
 * SCRIPT FLUSH, TLS (rediss://, the store too), and which client the store picks.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { encodeCommand, RespParser, RespReplyError, type RespValue } from '../../src/stores/resp/codec.ts';
import { RespClient, RespConnectionError, type RespClientOptions } from '../../src/stores/resp/client.ts';
import { parseRespEndpoint, type RespEndpoint } from '../../src/stores/resp/endpoint.ts';
import { createScriptTransport, script } from '../../src/stores/quota/redis-transport.ts';
import { QuotaStoreUnavailableError, RedisQuotaStore } from '../../src/stores/quota/redis.ts';
import type { LimitSpec } from '../../src/stores/quota/port.ts';
import { adminClient, startRedis, type TestRedis } from '../helpers/redis.ts';
import { unusedPort } from '../helpers/ports.ts';
import { createTestPki, type TestPki } from '../helpers/pki.ts';
import { waitFor } from '../helpers/wait.ts';

const execFileAsync = promisify(execFile);
let redis: TestRedis;
let admin: Redis;
const clients: RespClient[] = [];

before(async () => {
  redis = await startRedis();
  admin = await adminClient(redis.url);
});
after(async () => {
  for (const c of clients) c.close();
  admin.disconnect();
  await redis.stop();
});

function endpointOf(url: string): RespEndpoint {
  const e = parseRespEndpoint(url);
  assert.ok(e !== null, url);
  return e;
}

function client(url: string, opts: Partial<RespClientOptions> = {}): RespClient {
  const c = new RespClient({
    endpoint: endpointOf(url),
    connectTimeoutMs: 1000,
    socketTimeoutMs: 1000,
    retryDelayMs: (n) => Math.min(100 * n, 1000),
    connectionName: 'resp-client-test',
    ...opts,
  });
  clients.push(c);
  return c;
}

async function ready(c: RespClient): Promise<void> {
  c.connect();
  await waitFor(() => c.phase === 'ready', { what: 'the client to be ready', intervalMs: 5 });
}

const LIMITS: LimitSpec[] = [{ kind: 'window', name: 'requests:rpm', key: 'rpm', limit: 1000, windowMs: 60_000, cost: 1 }];

/**
 * A scripted RESP server: records each chunk it receives and each command,
 * and answers through `reply` (which may write the answer in pieces, or not at all).
 */
async function fakeServer(reply: (command: RespValue[], socket: Socket) => void): Promise<{
  port: number;
  chunks: Buffer[];
  commands: RespValue[][];
  sockets: Set<Socket>;
  close(): Promise<void>;
}> {
  const chunks: Buffer[] = [];
  const commands: RespValue[][] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    const parser = new RespParser((v) => {
      commands.push(v as RespValue[]);
      reply(v as RespValue[], socket);
    });
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      parser.push(c);
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return {
    port,
    chunks,
    commands,
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

test('URLs: the plain single-node forms are parsed like ioredis reads them; anything else is left to ioredis', () => {
  assert.deepEqual(parseRespEndpoint('redis://127.0.0.1:6380/2'), { host: '127.0.0.1', port: 6380, tls: false, username: null, password: null, db: 2 });
  assert.deepEqual(parseRespEndpoint('rediss://gw:p%40ss%3Aw%2Frd@cache.example.org'), {
    host: 'cache.example.org',
    port: 6379,
    tls: true,
    username: 'gw',
    password: 'p@ss:w/rd',
    db: 0,
  });
  assert.deepEqual(parseRespEndpoint('redis://:secret@[::1]:7000/'), { host: '::1', port: 7000, tls: false, username: null, password: 'secret', db: 0 });
  for (const other of ['redis://127.0.0.1:6379?db=3', 'redis://h/abc', 'redis://user@h', 'http://h', 'not a url', 'redis://h#x', 'redis://:bad%zz@h']) {
    assert.equal(parseRespEndpoint(other), null, other);
  }
});

test('the store picks the RESP client for a single node and ioredis for a URL with query options', async () => {
  const log = pino({ level: 'silent' });
  const lean = new RedisQuotaStore({ url: redis.url, keyPrefix: 'pick:', commandTimeoutMs: 250, log });
  const viaIoredis = new RedisQuotaStore({ url: `${redis.url}?connectionName=x`, keyPrefix: 'pick:', commandTimeoutMs: 250, log });
  try {
    assert.equal(lean.client, 'resp');
    assert.equal(viaIoredis.client, 'ioredis');
    assert.equal((await lean.admit('a', 'org', LIMITS)).admitted, true);
    assert.equal((await viaIoredis.admit('b', 'org', LIMITS)).admitted, true);
    assert.equal((await lean.admit('c', 'org', LIMITS)).states[0]?.remaining, 1000 - 3, 'both count on the same keys');
  } finally {
    await lean.close();
    await viaIoredis.close();
  }
});

test('commands of one turn go out in one write; replies cut at every byte by TCP still match in order', async () => {
  // The fake answers each command with its own index, written one byte per write (Nagle off), so the client reads
  // replies split at every boundary.
  let answered = 0;
  const server = await fakeServer((cmd, socket) => {
    const name = String(cmd[0]).toUpperCase();
    const wire = name === 'CLIENT' ? '+OK\r\n' : `*2\r\n:${answered}\r\n$${String(cmd[1]).length}\r\n${String(cmd[1])}\r\n`;
    if (name !== 'CLIENT') answered++;
    const bytes = Buffer.from(wire);
    for (let i = 0; i < bytes.length; i++) socket.write(bytes.subarray(i, i + 1));
  });
  try {
    const c = client(`redis://127.0.0.1:${server.port}`);
    await ready(c);
    const before = server.chunks.length;
    const replies = Promise.all(Array.from({ length: 40 }, (_, i) => c.send(encodeCommand(['ECHO', `m-${i}`]))));
    assert.equal(c.waiting, 40);
    const got = await replies;
    assert.deepEqual(
      got,
      Array.from({ length: 40 }, (_, i) => [i, `m-${i}`]),
    );
    // One write of 40 commands; on loopback it arrives as one read unless it exceeds a segment, which 40 ECHOs do not.
    assert.equal(server.chunks.length - before, 1, 'one write for the whole turn');
    assert.equal(c.waiting, 0);
  } finally {
    await server.close();
  }
});

test('never queued: send() fails at once before connecting, while reconnecting, and after close()', async () => {
  const port = await unusedPort();
  const attempts: number[] = [];
  const errors: string[] = [];
  const c = client(`redis://127.0.0.1:${port}`, {
    retryDelayMs: (n) => {
      attempts.push(n);
      return Math.min(20 * n, 100);
    },
  });
  c.watch({ error: (err) => errors.push(err.message) });
  await assert.rejects(c.send(encodeCommand(['PING'])), RespConnectionError);
  assert.equal(c.phase, 'idle', 'send() does not connect by itself');
  c.connect();
  await waitFor(() => attempts.length >= 3, { what: 'three reconnection attempts', intervalMs: 5 });
  assert.deepEqual(attempts.slice(0, 3), [1, 2, 3], 'the attempt number grows while the server stays away');
  assert.ok(
    errors.some((m) => /ECONNREFUSED/.test(m)),
    JSON.stringify(errors),
  );
  const started = performance.now();
  await assert.rejects(c.send(encodeCommand(['PING'])), RespConnectionError);
  assert.ok(performance.now() - started < 50, 'failed at once, not queued');
  c.close();
  assert.equal(c.phase, 'closed');
  await assert.rejects(c.send(encodeCommand(['PING'])), /closed/);
});

test('Redis killed mid-flight: waiting commands fail at once, the client reconnects once Redis is back', async (t) => {
  const own = await startRedis();
  try {
    const c = client(own.url, { retryDelayMs: (n) => Math.min(100 * n, 1000) });
    const seen: string[] = [];
    c.watch({ ready: () => seen.push('ready'), lost: () => seen.push('lost') });
    await ready(c);
    // BLPOP on an empty list: the first blocks the connection in Redis, the other four wait behind it.
    const waiting = Array.from({ length: 5 }, (_, i) => c.send(encodeCommand(['BLPOP', `empty-${i}`, '0'])));
    await waitFor(async () => Number(/blocked_clients:(\d+)/.exec(await ownInfo(own))?.[1] ?? 0) >= 1, {
      what: 'Redis to hold the blocked command',
      intervalMs: 10,
    });
    // Settled-handlers attached before the kill: the rejections may come while kill() is still waiting for the process to exit.
    const settled = Promise.allSettled(waiting);
    const killed = performance.now();
    await own.kill();
    const outcomes = await settled;
    const ms = performance.now() - killed;
    t.diagnostic(`5 commands in flight failed ${ms.toFixed(1)} ms after the kill`);
    assert.ok(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof RespConnectionError));
    assert.ok(ms < 1000, `${ms} ms`);
    await waitFor(() => c.phase === 'down' || c.phase === 'connecting', { what: 'the client to notice', intervalMs: 5 });
    await own.start();
    await waitFor(() => c.phase === 'ready', { what: 'the client to reconnect', intervalMs: 10, timeoutMs: 5000 });
    assert.equal(await c.send(encodeCommand(['PING'])), 'PONG');
    assert.equal(seen[0], 'ready');
    assert.equal(seen[1], 'lost', 'the loss is reported');
    assert.equal(seen.at(-1), 'ready', 'and the recovery');
  } finally {
    await own.stop();
  }
});

/**
 * Runs a RedisQuotaStore on `url` in a fresh Node process (with `env` added) for one admission; returns what it
 * printed: the client it picked, whether it admitted, and the keys written (read back through the same store's
 * Redis by a plain RESP client with the same TLS trust).
 */
async function storeInChild(url: string, env: Record<string, string>): Promise<string> {
  const program = `
    import { pino } from 'pino';
    import { RedisQuotaStore } from ${JSON.stringify(new URL('../../src/stores/quota/redis.ts', import.meta.url).href)};
    import { RespClient } from ${JSON.stringify(new URL('../../src/stores/resp/client.ts', import.meta.url).href)};
    import { encodeCommand } from ${JSON.stringify(new URL('../../src/stores/resp/codec.ts', import.meta.url).href)};
    import { parseRespEndpoint } from ${JSON.stringify(new URL('../../src/stores/resp/endpoint.ts', import.meta.url).href)};
    const url = ${JSON.stringify(url)};
    const store = new RedisQuotaStore({ url, keyPrefix: 'tls:', commandTimeoutMs: 2000, log: pino({ level: 'silent' }) });
    const d = await store.admit('r', 'org', ${JSON.stringify(LIMITS)});
    await store.close();
    const c = new RespClient({ endpoint: parseRespEndpoint(url), connectTimeoutMs: 2000, socketTimeoutMs: 2000, retryDelayMs: () => 100 });
    c.connect();
    await new Promise((res) => c.watch({ ready: res }));
    const keys = await c.send(encodeCommand(['KEYS', 'tls:*']));
    c.close();
    process.stdout.write(JSON.stringify({ client: store.client, admitted: d.admitted, keys }));
  `;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', program], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return stdout;
}

/** INFO clients of a test Redis, through a short-lived client of its own. */
async function ownInfo(r: TestRedis): Promise<string> {
  const a = await adminClient(r.url);
  try {
    return await a.info('clients');
  } finally {
    a.disconnect();
  }
}

test('the store with Redis killed mid-flight: admissions in flight fail within commandTimeoutMs, logged, and it recovers', async (t) => {
  const own = await startRedis();
  const lines: Array<{ msg: string }> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as { msg: string });
      cb();
    },
  });
  const store = new RedisQuotaStore({ url: own.url, keyPrefix: 'kill:', commandTimeoutMs: 250, log: pino({ level: 'info' }, sink) });
  try {
    assert.equal((await store.admit('warm', 'org', LIMITS)).admitted, true);
    // Stopped (SIGSTOP), then killed while the admissions wait on it: they are on the wire when the socket dies.
    process.kill(own.pid as number, 'SIGSTOP');
    const started = performance.now();
    const inFlight = Array.from({ length: 10 }, (_, i) =>
      store.admit(`f-${i}`, 'org', LIMITS).then(
        () => null,
        (err: unknown) => err,
      ),
    );
    await new Promise<void>((res) => setImmediate(res));
    await own.kill();
    const errs = await Promise.all(inFlight);
    const ms = performance.now() - started;
    t.diagnostic(`10 admissions in flight failed within ${ms.toFixed(1)} ms: ${String(errs[0])}`);
    assert.ok(errs.every((e) => e instanceof QuotaStoreUnavailableError));
    assert.ok(ms <= 250 + 100, `${ms} ms`);
    await waitFor(() => lines.some((l) => l.msg === 'Redis quota store connection error'), { what: 'the connection error to be logged', intervalMs: 10 });
    await own.start();
    await waitFor(() => store.admit('back', 'org', LIMITS).catch(() => undefined), { what: 'the store to admit again', intervalMs: 50 });
    await waitFor(() => lines.some((l) => l.msg === 'Redis quota store reachable again'), { what: 'the recovery to be logged', intervalMs: 10 });
  } finally {
    await store.close();
    await own.stop();
  }
});

test('a silent peer: waiting commands fail after socketTimeoutMs, the connection is dropped and set up again', async () => {
  let connections = 0;
  // Answers the handshake, then never anything else.
  const server = await fakeServer((cmd, socket) => {
    if (String(cmd[0]).toUpperCase() === 'CLIENT') socket.write('+OK\r\n');
  });
  try {
    const errors: string[] = [];
    const c = client(`redis://127.0.0.1:${server.port}`, { socketTimeoutMs: 200, retryDelayMs: () => 10 });
    c.watch({ ready: () => connections++, error: (err) => errors.push(err.message) });
    await ready(c);
    const started = performance.now();
    await assert.rejects(c.send(encodeCommand(['PING'])), RespConnectionError);
    const ms = performance.now() - started;
    assert.ok(ms >= 190 && ms < 1000, `${ms} ms`);
    assert.ok(
      errors.some((m) => /no data from Redis for 200 ms/.test(m)),
      JSON.stringify(errors),
    );
    await waitFor(() => connections >= 2, { what: 'a new connection', intervalMs: 5 });
  } finally {
    await server.close();
  }
});

test('a connection that never gets ready is dropped after connectTimeoutMs and tried again', async () => {
  const server = await fakeServer(() => undefined); // accepts, never answers
  try {
    const errors: string[] = [];
    const c = client(`redis://127.0.0.1:${server.port}`, { connectTimeoutMs: 150, retryDelayMs: () => 10 });
    c.watch({ error: (err) => errors.push(err.message) });
    c.connect();
    await waitFor(() => errors.filter((m) => /not ready within 150 ms/.test(m)).length >= 2, { what: 'two connect timeouts', intervalMs: 10 });
    assert.notEqual(c.phase, 'ready');
    assert.ok(server.commands.filter((cmd) => String(cmd[0]).toUpperCase() === 'CLIENT').length >= 2, 'each attempt sent its handshake');
  } finally {
    await server.close();
  }
});

test('a reply for no command (a confused peer) drops the connection', async () => {
  const server = await fakeServer((cmd, socket) => socket.write(String(cmd[0]).toUpperCase() === 'CLIENT' ? '+OK\r\n' : '+ONE\r\n+TWO\r\n'));
  try {
    const errors: string[] = [];
    const c = client(`redis://127.0.0.1:${server.port}`, { retryDelayMs: () => 1000 });
    c.watch({ error: (err) => errors.push(err.message) });
    await ready(c);
    assert.equal(await c.send(encodeCommand(['PING'])), 'ONE');
    await waitFor(() => c.phase === 'down', { what: 'the connection to be dropped', intervalMs: 5 });
    assert.ok(errors.some((m) => /a reply arrived for no command/.test(m)));
  } finally {
    await server.close();
  }
});

test('AUTH: a password, an ACL user with a percent-encoded password, and a wrong password', async () => {
  const secured = await startRedis(['--requirepass', 'top-secret']);
  try {
    const c = client(`redis://:top-secret@127.0.0.1:${secured.port}`);
    await ready(c);
    assert.equal(await c.send(encodeCommand(['PING'])), 'PONG');
    assert.equal(await c.send(encodeCommand(['CLIENT', 'GETNAME'])), 'resp-client-test', 'CLIENT SETNAME after AUTH');
    await c.send(encodeCommand(['ACL', 'SETUSER', 'quota', 'on', '>p@ss:w/rd', '~*', '+@all']));
    const user = client(`redis://quota:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${secured.port}`);
    await ready(user);
    assert.equal(await user.send(encodeCommand(['ACL', 'WHOAMI'])), 'quota');

    const errors: string[] = [];
    const wrong = client(`redis://:nope@127.0.0.1:${secured.port}`, { retryDelayMs: () => 50 });
    wrong.watch({ error: (err) => errors.push(err.message) });
    wrong.connect();
    await waitFor(() => errors.some((m) => /WRONGPASS/.test(m)), { what: 'the AUTH refusal to be reported', intervalMs: 10 });
    assert.notEqual(wrong.phase, 'ready', 'never ready with a wrong password');

    // The store through a password URL: works, and the "why" of its errors is the AUTH refusal when wrong.
    const log = pino({ level: 'silent' });
    const store = new RedisQuotaStore({ url: `redis://:top-secret@127.0.0.1:${secured.port}`, keyPrefix: 'auth:', commandTimeoutMs: 250, log });
    const denied = new RedisQuotaStore({ url: `redis://:nope@127.0.0.1:${secured.port}`, keyPrefix: 'auth:', commandTimeoutMs: 250, log });
    try {
      assert.equal((await store.admit('a', 'org', LIMITS)).admitted, true);
      await waitFor(
        () =>
          denied.admit('b', 'org', LIMITS).then(
            () => false,
            (err: unknown) => err instanceof QuotaStoreUnavailableError && /WRONGPASS/.test(err.message),
          ),
        { what: 'the refused store to say why', intervalMs: 20 },
      );
    } finally {
      await store.close();
      await denied.close();
    }
  } finally {
    await secured.stop();
  }
});

test('SELECT: the database in the URL path holds the quota keys', async () => {
  const store = new RedisQuotaStore({ url: `${redis.url}/5`, keyPrefix: 'db5:', commandTimeoutMs: 250, log: pino({ level: 'silent' }) });
  const db5 = await adminClient(`${redis.url}/5`);
  try {
    assert.equal(store.client, 'resp');
    await store.admit('r', 'org', LIMITS);
    // (A window limit without tokens keeps no reservation record: the limit's key is the one written.)
    assert.deepEqual(await db5.keys('db5:*'), ['db5:{org}:rpm']);
    assert.deepEqual(await admin.keys('db5:*'), [], 'nothing in database 0');
  } finally {
    await store.close();
    db5.disconnect();
  }
});

test('NOSCRIPT after SCRIPT FLUSH: the call falls back to EVAL, which loads the script again', async () => {
  const transport = createScriptTransport({ url: redis.url, commandTimeoutMs: 250, connectionName: 'resp-client-test' });
  const s = script("return 'v:' .. KEYS[1] .. ':' .. ARGV[1]");
  try {
    assert.equal(transport.kind, 'resp');
    transport.link.connect();
    await waitFor(() => transport.link.phase === 'ready', { what: 'the transport to be ready', intervalMs: 5 });
    await admin.script('FLUSH');
    assert.equal(await transport.run(s, ['k'], ['1']), 'v:k:1', 'EVALSHA → NOSCRIPT → EVAL');
    assert.deepEqual(await admin.script('EXISTS', s.sha), [1], 'EVAL cached the script');
    assert.equal(await transport.run(s, ['k'], [2]), 'v:k:2');
    await admin.script('FLUSH');
    assert.equal(await transport.run(s, ['k'], ['3']), 'v:k:3');
    // Other errors are not retried: a script error comes back as Redis' error.
    await assert.rejects(
      transport.run(script("return redis.error_reply('QUOTA broken')"), [], []),
      (err: unknown) => err instanceof RespReplyError && /QUOTA broken/.test(err.message),
    );
  } finally {
    transport.close();
  }
});

test('rediss://: TLS to a redis-server with a TLS port (verified against the test CA), with AUTH and SELECT', async (t) => {
  let pki: TestPki | null = null;
  let tlsRedis: TestRedis | null = null;
  try {
    pki = await createTestPki();
    const tlsPort = await unusedPort();
    tlsRedis = await startRedis([
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      pki.server.cert,
      '--tls-key-file',
      pki.server.key,
      '--tls-ca-cert-file',
      pki.caCert,
      '--tls-auth-clients',
      'no',
      '--requirepass',
      'tls-secret',
    ]);
    const ca = readFileSync(pki.caCert);
    const c = client(`rediss://:tls-secret@localhost:${tlsPort}/3`, { tls: { ca } });
    await ready(c);
    assert.equal(await c.send(encodeCommand(['SET', 'over-tls', 'yes'])), 'OK');
    const info = String(await c.send(encodeCommand(['CLIENT', 'INFO'])));
    assert.match(info, /db=3/);
    assert.match(info, /name=resp-client-test/);
    t.diagnostic(`TLS client: ${info.trim()}`);

    // Without the CA the server's certificate is not trusted: the connection never gets ready, and says why.
    const errors: string[] = [];
    const untrusted = client(`rediss://:tls-secret@localhost:${tlsPort}`, { retryDelayMs: () => 100 });
    untrusted.watch({ error: (err) => errors.push(err.message) });
    untrusted.connect();
    await waitFor(() => errors.length > 0, { what: 'the TLS failure to be reported', intervalMs: 10 });
    assert.match(errors[0] as string, /certificate/i);
    assert.notEqual(untrusted.phase, 'ready');

    // The store with a rediss:// URL, as a sidecar runs it: the system's trust store plus NODE_EXTRA_CA_CERTS (read
    // at start-up only, hence a child process), no TLS options of its own.
    const store = await storeInChild(`rediss://:tls-secret@localhost:${tlsPort}/4`, { NODE_EXTRA_CA_CERTS: pki.caCert });
    t.diagnostic(`store over rediss:// in a child process: ${store}`);
    assert.deepEqual(JSON.parse(store), { client: 'resp', admitted: true, keys: ['tls:{org}:rpm'] });
  } finally {
    await tlsRedis?.stop();
    await pki?.cleanup();
  }
});
