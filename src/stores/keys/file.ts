/**
 * Key files: YAML or JSON lists of key entries (the `auth.apiKeys` shape plus
 * `createdAt`, `revokedAt`, `replacedBy`), typically a mounted Kubernetes
 * Secret.
 *
 * FileKeyStore serves lookups from the last good version and re-reads the
 * file when it changes. Kubernetes updates a mounted Secret by swapping a
 * `..data` symlink, which inotify on the file itself never reports, so the
 * store polls the file's identity (device, inode, size, mtime, following
 * symlinks) once per `pollMs` (1 s) on an unref'd timer; fs.watch on the
 * folder only makes the check happen sooner. A new version that fails to
 * read or validate is logged (once per version) and the last good one kept.
 *
 * KeyFile is the CLI's side: read-modify-write under a lock file, written to
 * a temp file in the same folder and renamed over the target, so a reader
 * sees the old file or the new one, never half of one. YAML comments survive.
 */
import { watch, readFileSync, statSync, type FSWatcher, type Stats } from 'node:fs';
import { open, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { Document, isMap, isSeq, parseDocument } from 'yaml';
import type { Logger } from 'pino';
import { ConfigError } from '../../config/errors.ts';
import type { ApiKeyStore, KeyRecord, KeyUpdate, WritableKeyStore } from './port.ts';
import { entryFromRecord, recordsFromKeyFile } from './record.ts';

function isJsonPath(path: string): boolean {
  return extname(path).toLowerCase() === '.json';
}

/** Parses and validates a key file's text; throws ConfigError naming the file. */
export function parseKeyFile(text: string, path: string): KeyRecord[] {
  let raw: unknown;
  if (isJsonPath(path)) {
    try {
      raw = JSON.parse(text) as unknown;
    } catch (err) {
      throw new ConfigError(path, [`is not valid JSON: ${(err as Error).message}`]);
    }
  } else {
    const doc = parseDocument(text);
    if (doc.errors.length > 0) throw new ConfigError(path, [`is not valid YAML: ${doc.errors[0]?.message ?? 'parse error'}`]);
    raw = doc.toJS({ maxAliasCount: 100 }) as unknown;
  }
  return recordsFromKeyFile(raw, path);
}

function signature(s: Stats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
}

function byId(records: readonly KeyRecord[]): Map<string, KeyRecord> {
  return new Map(records.map((r) => [r.id, r]));
}

export interface FileKeyStoreOptions {
  readonly log: Logger;
  /** How often the file's identity is checked (default 1000 ms). */
  readonly pollMs?: number;
  /** Also watch the folder so most changes are seen at once (default true; polling alone is enough). */
  readonly watch?: boolean;
  /**
   * Starts the poll: calls `tick` every `intervalMs`, returns how to stop.
   * Default: an unref'd setInterval. Tests pass their own to poll by hand.
   */
  readonly schedule?: (tick: () => void, intervalMs: number) => () => void;
}

const everyInterval = (tick: () => void, intervalMs: number): (() => void) => {
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
};

export class FileKeyStore implements ApiKeyStore {
  readonly inMemory = true;
  readonly path: string;
  readonly #log: Logger;
  #records: Map<string, KeyRecord>;
  #sig: string;
  /** The last version that failed, so each bad version is logged once. */
  #failedSig: string | null = null;
  #loads = 1;
  #checking: Promise<boolean> | null = null;
  readonly #listeners: Array<(id: string | null) => void> = [];
  #closed = false;
  readonly #stopPolling: () => void;
  readonly #watcher: FSWatcher | null;

  /** Loads the file synchronously; a missing or invalid file throws a ConfigError (fail at start-up). */
  constructor(path: string, opts: FileKeyStoreOptions) {
    this.path = resolve(path);
    this.#log = opts.log;
    let text: string;
    let sig: string;
    try {
      sig = signature(statSync(this.path));
      text = readFileSync(this.path, 'utf8');
    } catch (err) {
      throw new ConfigError(this.path, [`cannot be read: ${(err as Error).message}`]);
    }
    this.#records = byId(parseKeyFile(text, this.path));
    this.#sig = sig;
    this.#stopPolling = (opts.schedule ?? everyInterval)(() => void this.refresh(), opts.pollMs ?? 1000);
    this.#watcher = opts.watch === false ? null : this.#watchFolder();
  }

  get size(): number {
    return this.#records.size;
  }

  /** How many versions have been loaded (1 after construction). */
  get loads(): number {
    return this.#loads;
  }

  async get(id: string): Promise<KeyRecord | null> {
    return this.#records.get(id) ?? null;
  }

  onChange(listener: (id: string | null) => void): void {
    this.#listeners.push(listener);
  }

  /** Checks the file now; resolves true when a new version was loaded. Never rejects. */
  refresh(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    this.#checking ??= this.#check().finally(() => {
      this.#checking = null;
    });
    return this.#checking;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stopPolling();
    this.#watcher?.close();
    await this.#checking;
  }

  async #check(): Promise<boolean> {
    let sig: string;
    try {
      sig = signature(await stat(this.path));
    } catch (err) {
      this.#fail('missing', [`cannot be read: ${(err as Error).message}`]);
      return false;
    }
    if (sig === this.#sig || sig === this.#failedSig) return false;
    // Read through one descriptor so the signature and the text are the same version.
    let text: string;
    try {
      const fh = await open(this.path, 'r');
      try {
        sig = signature(await fh.stat());
        text = await fh.readFile('utf8');
      } finally {
        await fh.close();
      }
    } catch (err) {
      this.#fail(sig, [`cannot be read: ${(err as Error).message}`]);
      return false;
    }
    let records: KeyRecord[];
    try {
      records = parseKeyFile(text, this.path);
    } catch (err) {
      this.#fail(sig, err instanceof ConfigError ? err.problems : [String(err)]);
      return false;
    }
    if (this.#closed) return false;
    this.#records = byId(records);
    this.#sig = sig;
    this.#failedSig = null;
    this.#loads++;
    this.#log.info({ path: this.path, keys: records.length }, 'API key file reloaded');
    for (const l of this.#listeners) l(null);
    return true;
  }

  #fail(sig: string, problems: readonly string[]): void {
    if (this.#failedSig === sig) return;
    this.#failedSig = sig;
    this.#log.error({ path: this.path, problems }, 'API key file could not be loaded; keeping the previous version');
  }

  #watchFolder(): FSWatcher | null {
    try {
      const w = watch(dirname(this.path), { persistent: false }, () => void this.refresh());
      w.on('error', () => w.close());
      return w;
    } catch {
      return null; // polling alone still works
    }
  }
}

const LOCK_WAIT_MS = 5000;
const LOCK_STALE_MS = 30_000;

/** A key file as the CLI edits it. */
export class KeyFile implements WritableKeyStore {
  readonly path: string;
  readonly description: string;

  constructor(path: string) {
    this.path = resolve(path);
    this.description = `file ${path}`;
  }

  async get(id: string): Promise<KeyRecord | null> {
    return (await this.list()).find((r) => r.id === id) ?? null;
  }

  async list(): Promise<KeyRecord[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      throw new ConfigError(this.path, [`cannot be read: ${(err as Error).message}`]);
    }
    return parseKeyFile(text, this.path);
  }

  async create(record: KeyRecord): Promise<void> {
    await this.#edit(true, (records, doc) => {
      if (records.some((r) => r.id === record.id)) throw new Error(`key id ${record.id} already exists in ${this.path}`);
      doc.add(entryFromRecord(record));
      return null;
    });
  }

  async update(id: string, change: KeyUpdate): Promise<KeyRecord | null> {
    return this.#edit(false, (records, doc) => {
      const i = records.findIndex((r) => r.id === id);
      const rec = records[i];
      if (rec === undefined) return null;
      const next: KeyRecord = { ...rec, ...change };
      doc.replace(i, entryFromRecord(next), change);
      return next;
    });
  }

  async close(): Promise<void> {}

  async #edit<T>(allowMissing: boolean, fn: (records: KeyRecord[], doc: EditableList) => T): Promise<T> {
    const target = await realTarget(this.path);
    const release = await lock(`${target}.lock`);
    try {
      let text: string | null = null;
      let mode = 0o600;
      try {
        text = await readFile(target, 'utf8');
        mode = (await stat(target)).mode & 0o777;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || !allowMissing) {
          throw new ConfigError(this.path, [`cannot be read: ${(err as Error).message}`]);
        }
      }
      const records = text === null ? [] : parseKeyFile(text, this.path);
      const list = isJsonPath(target) ? new JsonList(text) : new YamlList(text);
      const result = fn(records, list);
      if (list.changed) await atomicWrite(target, list.toString(), mode);
      return result;
    } finally {
      await release();
    }
  }
}

interface EditableList {
  add(entry: Record<string, unknown>): void;
  /** Replaces entry `i`; `change` names the fields that changed (YAML edits only those, keeping comments). */
  replace(i: number, entry: Record<string, unknown>, change: KeyUpdate): void;
}

class JsonList implements EditableList {
  readonly #items: unknown[];
  changed = false;

  constructor(text: string | null) {
    this.#items = text === null ? [] : (JSON.parse(text) as unknown[]);
  }

  add(entry: Record<string, unknown>): void {
    this.#items.push(entry);
    this.changed = true;
  }

  replace(i: number, entry: Record<string, unknown>): void {
    this.#items[i] = entry;
    this.changed = true;
  }

  toString(): string {
    return `${JSON.stringify(this.#items, null, 2)}\n`;
  }
}

class YamlList implements EditableList {
  readonly #doc: Document;
  changed = false;

  constructor(text: string | null) {
    if (text === null || text.trim() === '') {
      this.#doc = new Document([]);
      this.#doc.commentBefore = ' inference-gateway API keys (hashes only). Edit with: inference-gateway keys … --file';
    } else {
      this.#doc = parseDocument(text);
    }
  }

  add(entry: Record<string, unknown>): void {
    const seq = this.#doc.contents;
    if (!isSeq(seq)) throw new Error('key file root is not a list');
    seq.flow = false; // `[]` grows into a block list
    seq.add(this.#doc.createNode(entry));
    this.changed = true;
  }

  replace(i: number, entry: Record<string, unknown>, change: KeyUpdate): void {
    const seq = this.#doc.contents;
    if (!isSeq(seq)) throw new Error('key file root is not a list');
    const item = seq.items[i];
    if (!isMap(item)) throw new Error(`key file entry [${i}] is not a mapping`);
    for (const field of Object.keys(change)) {
      const value = entry[field];
      if (value === undefined) item.delete(field);
      else item.set(field, value);
    }
    this.changed = true;
  }

  toString(): string {
    return this.#doc.toString();
  }
}

/** The file a path finally names (a symlinked file is edited where it lives). */
async function realTarget(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    return path;
  }
}

async function lock(path: string): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return async () => {
        await unlink(path).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(path).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > LOCK_STALE_MS) {
        await unlink(path).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${path} is held by another writer (remove it if no other 'keys' command is running)`, { cause: err });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Temp file in the same folder, fsync, rename over the target: readers see the old file or the new one. */
export async function atomicWrite(target: string, text: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { mode, flag: 'wx' });
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    const dir = await open(dirname(target), 'r');
    await dir.sync().finally(() => dir.close());
  } catch {
    // Some filesystems refuse fsync on a directory; the rename has happened either way.
  }
}
