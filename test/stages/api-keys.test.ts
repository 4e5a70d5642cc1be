import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateApiKey, parseApiKey, hashApiKey, KEY_LENGTH } from '../../src/crypto/api-key-format.ts';
import { ApiKeyVerifier, type ApiKeyCredential } from '../../src/stages/auth/api-keys.ts';
import { GatewayError } from '../../src/pipeline/errors.ts';
import { rotateKey, revokeKey } from '../../src/stores/keys/admin.ts';
import type { ApiKeyStore, KeyRecord, KeyUpdate, WritableKeyStore } from '../../src/stores/keys/port.ts';
import { StaticKeyStore } from '../../src/stores/keys/static.ts';
import { makeKey } from '../stores/keys-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const CACHE = { maxEntries: 10_000, ttlSeconds: 30 };

/** An in-memory writable store that counts lookups and can be made to fail. */
class MemoryStore implements WritableKeyStore {
  readonly description = 'memory';
  readonly records = new Map<string, KeyRecord>();
  reads = 0;
  readsById = new Map<string, number>();
  failing = false;
  /** While set, reads wait for it: lookups stay in flight until the test opens the gate. */
  gate: Promise<void> | null = null;

  constructor(records: readonly KeyRecord[] = []) {
    for (const r of records) this.records.set(r.id, r);
  }

  async get(id: string): Promise<KeyRecord | null> {
    this.reads++;
    this.readsById.set(id, (this.readsById.get(id) ?? 0) + 1);
    if (this.gate !== null) await this.gate;
    if (this.failing) throw new Error('connection refused');
    return this.records.get(id) ?? null;
  }

  async list(): Promise<KeyRecord[]> {
    return [...this.records.values()];
  }

  async create(record: KeyRecord): Promise<void> {
    if (this.records.has(record.id)) throw new Error('already exists');
    this.records.set(record.id, record);
  }

  async update(id: string, change: KeyUpdate): Promise<KeyRecord | null> {
    const r = this.records.get(id);
    if (r === undefined) return null;
    const next = { ...r, ...change };
    this.records.set(id, next);
    return next;
  }

  async close(): Promise<void> {}
}

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof GatewayError) return err.code;
    throw err;
  }
  return 'accepted';
}

function verifier(store: ApiKeyStore, opts: { now?: () => number; cache?: { maxEntries: number; ttlSeconds: number }; rate?: number } = {}): ApiKeyVerifier {
  return new ApiKeyVerifier(store, {
    unknownKeyCache: opts.cache ?? CACHE,
    now: opts.now ?? (() => T0),
    ...(opts.rate === undefined ? {} : { unverifiedLookupsPerSecond: opts.rate }),
  });
}

test('generated keys have the documented shape and a valid checksum', () => {
  const k = generateApiKey();
  assert.equal(k.key.length, KEY_LENGTH);
  assert.match(k.key, /^igw_[0-9A-Za-z]{46}$/);
  assert.deepEqual(parseApiKey(k.key), { ok: true, id: k.id });
  assert.equal(k.hash, hashApiKey(k.key));
  assert.match(k.hash, /^sha256:[0-9a-f]{64}$/);
});

test('any single-character change breaks the checksum', () => {
  const k = generateApiKey();
  for (let i = 4; i < k.key.length; i++) {
    const c = k.key[i] === 'a' ? 'b' : 'a';
    const bad = k.key.slice(0, i) + c + k.key.slice(i + 1);
    assert.equal(parseApiKey(bad).ok, false, `position ${i}`);
  }
});

test('a valid key yields an api_key credential with its grants', async () => {
  const all = makeKey();
  const some = makeKey({
    principal: 'bob',
    org: 'globex',
    tenant: 'ops',
    tier: 'premium',
    roles: ['admin'],
    models: ['gpt-demo'],
    endpoints: ['chat', 'models'],
  });
  const v = verifier(new StaticKeyStore([all.record, some.record]));
  const a: ApiKeyCredential = await v.verify(all.key);
  assert.equal(a.method, 'api_key');
  assert.equal(a.principal, 'alice');
  assert.equal(a.keyId, all.record.id);
  assert.equal(a.models, '*');
  assert.equal(a.endpoints, '*');
  const b = await v.verify(some.key);
  assert.deepEqual(
    { principal: b.principal, org: b.org, tenant: b.tenant, tier: b.tier, roles: b.roles, models: b.models, endpoints: b.endpoints },
    {
      principal: 'bob',
      org: 'globex',
      tenant: 'ops',
      tier: 'premium',
      roles: ['admin'],
      models: new Set(['gpt-demo']),
      endpoints: new Set(['chat', 'models']),
    },
  );
  assert.ok(Object.isFrozen(b));
});

test('malformed keys are refused without touching the store', async (t) => {
  const store = new MemoryStore();
  const v = verifier(store);
  const k = generateApiKey();
  const flipped = k.key.slice(0, -1) + (k.key.endsWith('A') ? 'B' : 'A');
  const cases: Array<[string, string]> = [
    ["another vendor's key", 'sk-not-ours'],
    ['empty', ''],
    ['one character short', k.key.slice(0, -1)],
    ['one character long', `${k.key}x`],
    ['checksum character flipped', flipped],
    ['wrong prefix', k.key.replace('igw_', 'igx_')],
  ];
  for (const [name, bad] of cases) {
    await t.test(name, async () => {
      assert.equal(await code(v.verify(bad)), 'invalid_api_key', bad);
    });
  }
  assert.equal(store.reads, 0);
});

test('unknown, tampered, expired and revoked keys are refused (injected clock)', async () => {
  let now = T0;
  const good = makeKey();
  const expiring = makeKey({ expiresAt: T0 + 1000 });
  const revoked = makeKey({ revokedAt: T0 - 1 });
  const other = generateApiKey();
  // Same id as `good`, other secret: the checksum is valid, the hash is not.
  const tamperedRecord = makeKey();
  const store = new MemoryStore([good.record, expiring.record, revoked.record, { ...tamperedRecord.record, hash: other.hash }]);
  const v = verifier(store, { now: () => now });
  assert.equal(await code(v.verify(good.key)), 'accepted');
  assert.equal(await code(v.verify(expiring.key)), 'accepted');
  now += 1000;
  await assert.rejects(v.verify(expiring.key), { code: 'invalid_api_key', message: `API key ${expiring.record.id} has expired.` });
  await assert.rejects(v.verify(revoked.key), { code: 'invalid_api_key', message: `API key ${revoked.record.id} has been revoked.` });
  await assert.rejects(v.verify(tamperedRecord.key), { code: 'invalid_api_key', message: `Invalid API key (id ${tamperedRecord.record.id}).` });
  await assert.rejects(v.verify(generateApiKey().key), { code: 'invalid_api_key' });
  assert.equal(await code(v.verify(good.key)), 'accepted');
});

test('a revoked key stays refused even if its record also has a later expiry', async () => {
  const k = makeKey({ revokedAt: T0 + 10_000, expiresAt: T0 + 20_000 });
  assert.equal(await code(verifier(new MemoryStore([k.record])).verify(k.key)), 'invalid_api_key');
});

test('rotation: the old key works during the grace period and is refused after it; the new key works', async () => {
  let now = T0;
  const old = makeKey({ roles: ['batch'], models: ['gpt-demo'] });
  const store = new MemoryStore([old.record]);
  const v = verifier(store, { now: () => now });
  assert.equal(await code(v.verify(old.key)), 'accepted');
  const r = await rotateKey(store, old.record.id, { now, graceMs: 3_600_000 });
  assert.equal(r.old.expiresAt, T0 + 3_600_000);
  assert.equal(r.old.replacedBy, r.record.id);
  assert.deepEqual([r.record.principal, r.record.roles, r.record.models], ['alice', ['batch'], ['gpt-demo']]);
  now += 3_599_999;
  assert.equal(await code(v.verify(old.key)), 'accepted', 'within grace');
  assert.equal((await v.verify(r.key)).keyId, r.record.id);
  now += 1;
  await assert.rejects(v.verify(old.key), { code: 'invalid_api_key', message: `API key ${old.record.id} was rotated and its grace period has ended.` });
  assert.equal(await code(v.verify(r.key)), 'accepted');
  // Rotation never extends an expiry that was already sooner; a revoked key cannot be rotated.
  const soon = makeKey({ expiresAt: now + 60_000 });
  await store.create(soon.record);
  assert.equal((await rotateKey(store, soon.record.id, { now, graceMs: 3_600_000 })).old.expiresAt, now + 60_000);
  await revokeKey(store, soon.record.id, { now });
  await assert.rejects(rotateKey(store, soon.record.id, { now, graceMs: 1000 }), /is revoked/);
});

test('a store error is authentication_unavailable, never an acceptance, and is not remembered', async () => {
  const k = makeKey();
  const store = new MemoryStore([k.record]);
  const v = verifier(store);
  store.failing = true;
  await assert.rejects(v.verify(k.key), {
    code: 'authentication_unavailable',
    message: `API key ${k.record.id} could not be checked: the key store is unavailable.`,
  });
  store.failing = false;
  assert.equal(await code(v.verify(k.key)), 'accepted');
  // An error for an unknown id is not cached as "unknown" either.
  const unknown = generateApiKey();
  store.failing = true;
  assert.equal(await code(v.verify(unknown.key)), 'authentication_unavailable');
  store.failing = false;
  store.records.set(unknown.id, { ...k.record, id: unknown.id, hash: unknown.hash });
  assert.equal(await code(v.verify(unknown.key)), 'accepted');
});

test('negative cache: 1000 lookups of 10 unknown ids reach the store at most 10 times', async () => {
  const store = new MemoryStore();
  const v = verifier(store);
  const unknown = Array.from({ length: 10 }, () => generateApiKey().key);
  for (let i = 0; i < 1000; i++) assert.equal(await code(v.verify(unknown[i % 10] ?? '')), 'invalid_api_key');
  assert.ok(store.reads <= 10, `${store.reads} reads`);
  assert.equal(store.reads, 10);
});

test('negative cache: concurrent lookups of one id share one store read', async () => {
  const store = new MemoryStore();
  let open: () => void = () => undefined;
  store.gate = new Promise<void>((resolve) => (open = resolve));
  const v = verifier(store);
  const unknown = Array.from({ length: 10 }, () => generateApiKey().key);
  // All 1000 lookups start while the first read of each id is still in flight.
  const pending = Promise.all(Array.from({ length: 1000 }, (_, i) => code(v.verify(unknown[i % 10] ?? ''))));
  await waitFor(() => store.reads === 10, { what: 'the first read of each of the 10 ids' });
  open();
  const results = await pending;
  assert.ok(results.every((c) => c === 'invalid_api_key'));
  assert.equal(store.reads, 10);
});

test('negative cache: entries expire after ttlSeconds, and a key created meanwhile is found then', async () => {
  let now = T0;
  const k = makeKey();
  const store = new MemoryStore();
  const v = verifier(store, { now: () => now });
  assert.equal(await code(v.verify(k.key)), 'invalid_api_key');
  await store.create(k.record);
  now += 29_999;
  assert.equal(await code(v.verify(k.key)), 'invalid_api_key', 'still remembered as unknown');
  assert.equal(store.reads, 1);
  now += 1;
  assert.equal(await code(v.verify(k.key)), 'accepted');
  assert.equal(store.reads, 2);
});

test('negative cache: bounded by maxEntries, least recently used evicted first', async () => {
  const store = new MemoryStore();
  const v = verifier(store, { cache: { maxEntries: 5, ttlSeconds: 30 }, rate: 1000 });
  const keys = Array.from({ length: 7 }, () => generateApiKey().key);
  const verifyAll = async (list: string[]): Promise<void> => {
    for (const k of list) await v.verify(k).catch(() => undefined);
  };
  await verifyAll(keys.slice(0, 5)); // remembers 0..4
  assert.equal(store.reads, 5);
  await verifyAll([keys[0] ?? '']); // 0 is now the most recently used
  assert.equal(store.reads, 5);
  await verifyAll([keys[5] ?? '']); // evicts 1, the least recently used
  assert.equal(store.reads, 6);
  await verifyAll([keys[0] ?? '', keys[2] ?? '', keys[3] ?? '', keys[4] ?? '', keys[5] ?? '']);
  assert.equal(store.reads, 6, 'all still remembered');
  await verifyAll([keys[1] ?? '']);
  assert.equal(store.reads, 7, 'the evicted id is looked up again');
});

test('a flood of random unknown ids is bounded: burst maxEntries, then maxEntries/ttlSeconds per second; recently verified keys are unaffected', async () => {
  let now = T0;
  const known = makeKey();
  const neverSeen = makeKey();
  const store = new MemoryStore([known.record, neverSeen.record]);
  // 100 entries / 10 s → burst 100, then 10 store reads per second for ids not verified recently.
  const v = verifier(store, { now: () => now, cache: { maxEntries: 100, ttlSeconds: 10 } });
  assert.equal(await code(v.verify(known.key)), 'accepted');
  store.reads = 0;
  const outcomes = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const c = await code(v.verify(generateApiKey().key));
    outcomes.set(c, (outcomes.get(c) ?? 0) + 1);
  }
  assert.equal(store.reads, 100, 'only the burst reached the store');
  assert.deepEqual(Object.fromEntries(outcomes), { invalid_api_key: 100, authentication_unavailable: 900 });
  // During the flood: a key verified before still works; a valid key never seen is told to retry (503), not refused as invalid.
  assert.equal(await code(v.verify(known.key)), 'accepted');
  await assert.rejects(v.verify(neverSeen.key), { code: 'authentication_unavailable' });
  now += 1000; // 10 tokens
  assert.equal(await code(v.verify(neverSeen.key)), 'accepted');
  assert.equal(store.reads, 102);
  // Found keys give their token back, so legitimate first uses do not drain the budget.
  for (let i = 0; i < 20; i++) {
    const fresh = makeKey();
    await store.create(fresh.record);
    assert.equal(await code(v.verify(fresh.key)), 'accepted', `fresh key ${i}`);
  }
});

test('error messages name the key id, never the key', async (t) => {
  const k = makeKey({ revokedAt: T0 });
  const store = new MemoryStore([k.record]);
  const v = verifier(store);
  const unknown = generateApiKey();
  for (const [name, key] of [
    ['revoked', k.key],
    ['unknown', unknown.key],
  ] as const) {
    await t.test(name, async () => {
      const err = await v.verify(key).then(
        () => assert.fail('accepted'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof GatewayError);
      assert.ok(!err.message.includes(key.slice(12)), err.message);
      assert.ok(err.message.includes(key.slice(4, 12)), err.message);
    });
  }
  store.failing = true;
  const err = await verifier(store)
    .verify(k.key)
    .then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
  assert.ok(err instanceof GatewayError && !err.message.includes(k.key.slice(12)) && !err.message.includes('connection refused'));
});

test('in-memory stores (inline, files) have no lookup budget: a flood never turns a valid key into 503', async () => {
  const good = makeKey();
  const v = verifier(new StaticKeyStore([good.record]), { cache: { maxEntries: 10, ttlSeconds: 10 } });
  for (let i = 0; i < 200; i++) assert.equal(await code(v.verify(generateApiKey().key)), 'invalid_api_key');
  assert.equal(await code(v.verify(good.key)), 'accepted');
});
