/** describeRedisUrl: the one way a Redis URL appears in messages and logs (CLI, stores, snapshot delivery, audit verify). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRedisUrl } from '../../src/stores/redis-connection.ts';

test('describeRedisUrl keeps scheme, host, port and database, never the credentials or query', () => {
  assert.equal(describeRedisUrl('redis://127.0.0.1:6379/0'), 'redis://127.0.0.1:6379/0');
  assert.equal(describeRedisUrl('redis://redis:6379'), 'redis://redis:6379');
  assert.equal(describeRedisUrl('rediss://:s3cret@cache.example.org:6380/2'), 'rediss://cache.example.org:6380/2');
  assert.equal(describeRedisUrl('redis://gateway:s3cret@[::1]:6379/1?password=s3cret'), 'redis://[::1]:6379/1');
  assert.equal(
    describeRedisUrl({
      cluster: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
      ],
    }),
    'cluster(10.0.0.1:7000,10.0.0.2:7001)',
  );
});

test('an unparseable URL is described as just "redis" (it may hold a password in any position)', () => {
  assert.equal(describeRedisUrl('not a url :s3cret@'), 'redis');
});
