/**
 * One contract, every key store: StaticKeyStore, FileKeyStore and
 * RedisKeyStore answer the same lookups the same way; the writable stores
 * (KeyFile, RedisKeyStore) also agree on create / update / list.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { StaticKeyStore } from '../../src/stores/keys/static.ts';
import { FileKeyStore, KeyFile } from '../../src/stores/keys/file.ts';
import { RedisKeyStore } from '../../src/stores/keys/redis.ts';
import { CompositeKeyStore } from '../../src/stores/keys/composite.ts';
import type { ApiKeyStore, KeyRecord, WritableKeyStore } from '../../src/stores/keys/port.ts';
import { entryFromRecord } from '../../src/stores/keys/record.ts';
import { startRedis, type TestRedis } from '../helpers/redis.ts';
import { captureLog, makeKey } from './keys-fixtures.ts';

const T0 = Date.parse('2026-03-01T12:00:00.000Z');

/** The records every store is seeded with. */
function seed(): KeyRecord[] {
  return [
    makeKey().record,
    makeKey({
      principal: 'bob',
      org: 'globex',
      tenant: 'ops',
      tier: 'premium',
      roles: ['admin', 'billing'],
      models: ['gpt-demo', 'embed-demo'],
      endpoints: ['chat', 'embeddings'],
    }).record,
    makeKey({ expiresAt: T0 }).record,
    makeKey({ revokedAt: T0 - 1000 }).record,
    makeKey({ expiresAt: T0 + 3_600_000, replacedBy: 'Zz9Zz9Zz' }).record,
  ];
}

let redis: TestRedis;
let dir: string;
let n = 0;
before(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'igw-keys-contract-'));
});
after(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Kind {
  readonly name: string;
  open(records: KeyRecord[]): Promise<ApiKeyStore>;
}

const kinds: Kind[] = [
  { name: 'StaticKeyStore', open: async (records) => new StaticKeyStore(records) },
  {
    name: 'FileKeyStore (YAML)',
    open: async (records) => {
      const path = join(dir, `keys-${n++}.yaml`);
      writeFileSync(path, stringify(records.map(entryFromRecord)));
      return new FileKeyStore(path, { log: captureLog().log });
    },
  },
  {
    name: 'FileKeyStore (JSON)',
    open: async (records) => {
      const path = join(dir, `keys-${n++}.json`);
      writeFileSync(path, JSON.stringify(records.map(entryFromRecord)));
      return new FileKeyStore(path, { log: captureLog().log });
    },
  },
  {
    name: 'RedisKeyStore',
    open: async (records) => {
      const store = new RedisKeyStore({ url: redis.url, keyPrefix: `c${n++}:`, commandTimeoutMs: 500, cacheSeconds: 5, log: captureLog().log });
      for (const r of records) await store.create(r);
      return store;
    },
  },
  {
    name: 'CompositeKeyStore (static + Redis)',
    open: async (records) => {
      const half = Math.floor(records.length / 2);
      const r = new RedisKeyStore({ url: redis.url, keyPrefix: `c${n++}:`, commandTimeoutMs: 500, cacheSeconds: 5, log: captureLog().log });
      for (const rec of records.slice(half)) await r.create(rec);
      return new CompositeKeyStore([new StaticKeyStore(records.slice(0, half)), r]);
    },
  },
];

for (const kind of kinds) {
  describe(`ApiKeyStore contract: ${kind.name}`, () => {
    test('returns each seeded record exactly, and null for an unknown id', async () => {
      const records = seed();
      const store = await kind.open(records);
      try {
        for (const r of records) assert.deepEqual(await store.get(r.id), r, r.id);
        assert.equal(await store.get('00000000'), null);
        assert.equal(await store.get(makeKey().record.id), null);
      } finally {
        await store.close();
      }
    });

    test('repeated and concurrent lookups agree', async () => {
      const records = seed();
      const store = await kind.open(records);
      try {
        const first = records[1];
        assert.ok(first !== undefined);
        const answers = await Promise.all(Array.from({ length: 50 }, () => store.get(first.id)));
        for (const a of answers) assert.deepEqual(a, first);
        assert.deepEqual(await store.get(first.id), first);
      } finally {
        await store.close();
      }
    });

    test('close() resolves and can be called twice', async () => {
      const store = await kind.open(seed());
      await store.close();
      await store.close();
    });
  });
}

interface WritableKind {
  readonly name: string;
  open(): Promise<WritableKeyStore>;
}

const writable: WritableKind[] = [
  { name: 'KeyFile (YAML)', open: async () => new KeyFile(join(dir, `w-${n++}.yaml`)) },
  { name: 'KeyFile (JSON)', open: async () => new KeyFile(join(dir, `w-${n++}.json`)) },
  {
    name: 'RedisKeyStore',
    open: async () =>
      new RedisKeyStore({ url: redis.url, keyPrefix: `w${n++}:`, commandTimeoutMs: 500, cacheSeconds: 0, subscribe: false, log: captureLog().log }),
  },
];

for (const kind of writable) {
  describe(`WritableKeyStore contract: ${kind.name}`, () => {
    test('create, get, list; a duplicate id is refused', async () => {
      const store = await kind.open();
      try {
        const records = seed();
        for (const r of records) await store.create(r);
        const first = records[0];
        assert.ok(first !== undefined);
        await assert.rejects(store.create(first), /already exists/);
        assert.deepEqual(await store.get(first.id), first);
        const listed = await store.list();
        assert.deepEqual(new Set(listed.map((r) => r.id)), new Set(records.map((r) => r.id)));
        for (const r of listed)
          assert.deepEqual(
            r,
            records.find((x) => x.id === r.id),
          );
      } finally {
        await store.close();
      }
    });

    test('update sets and clears fields; an unknown id yields null', async () => {
      const store = await kind.open();
      try {
        const rec = makeKey({ expiresAt: T0 }).record;
        await store.create(rec);
        const revoked = await store.update(rec.id, { revokedAt: T0 + 5, replacedBy: 'AbCd1234' });
        assert.deepEqual(revoked, { ...rec, revokedAt: T0 + 5, replacedBy: 'AbCd1234' });
        assert.deepEqual(await store.get(rec.id), revoked);
        const cleared = await store.update(rec.id, { expiresAt: null });
        assert.equal(cleared?.expiresAt, null);
        assert.equal((await store.get(rec.id))?.expiresAt, null);
        assert.equal(await store.update('Nope0000', { revokedAt: T0 }), null);
      } finally {
        await store.close();
      }
    });
  });
}
