/**
 * `inference-gateway admin <resource> <verb>`: the control plane's admin API
 * (docs/control-plane.md) from the command line. Prints the API's JSON on
 * stdout; an API refusal is exit 1 with its message (and each field it
 * names) on stderr; a bad command line is exit 2. `keys create` and
 * `keys rotate` print the new key once, alone on stdout, and the key's
 * record on stderr, as `inference-gateway keys create` does.
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { extname } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { errorMessage } from '../shared/values.ts';
import { parseDuration } from './keys.ts';
import { UsageError } from './dispatch.ts';

const USAGE = `Usage: inference-gateway admin [connection] <resource> <verb> [ID] [options]

Resources: models, deployments, plans, tenants, keys

Verbs:
  list                       every resource of the kind
  get ID                     one resource (its ETag on stderr)
  create (--file F | --set k=v ...)
                             a new resource from a JSON or YAML file, or from fields
  update ID (--file F | --set k=v ...) [--if-match ETAG]
                             change fields (JSON merge patch: null removes a field); the
                             current ETag is read first unless --if-match gives it
  delete ID [--if-match ETAG]
  keys revoke ID [--if-match ETAG]
  keys rotate ID [--grace 24h] [--expires ISO] [--if-match ETAG]

  keys create prints the new key once on stdout and its record on stderr; so does
  keys rotate for the key it makes.
  --set k=v: the value is JSON when it parses as JSON (3, true, ["chat"]), else a string;
  a dotted key sets a nested field (price.inputPerMillion='"2.5"': quoted, a string). --set after --file
  overrides the file's fields.

Connection:
  --url URL          the control plane (default $INFERENCE_GATEWAY_ADMIN_URL, else http://127.0.0.1:9470)
  --token TOKEN      a bearer JWT (default $INFERENCE_GATEWAY_ADMIN_TOKEN)
  --token-file F     read the bearer JWT from a file
  --cert F --key F   a client certificate and its key (mTLS: auth.mtls)
  --ca F             the CA that signed the control plane's certificate (https)

Exit: 0 done, 1 the call failed (the API's message on stderr), 2 bad command line.
`;

const RESOURCES = ['models', 'deployments', 'plans', 'tenants', 'keys'] as const;
type Resource = (typeof RESOURCES)[number];
const VERBS = ['list', 'get', 'create', 'update', 'delete', 'revoke', 'rotate'] as const;
type Verb = (typeof VERBS)[number];

/** The API answered with an error, or could not be reached: exit 1. */
class CallError extends Error {}

interface Connection {
  readonly url: URL;
  readonly token: string | null;
  readonly tls: { cert?: Buffer; key?: Buffer; ca?: Buffer };
}

interface Reply {
  readonly status: number;
  readonly etag: string | null;
  readonly body: unknown;
}

function send(c: Connection, method: string, path: string, opts: { body?: unknown; ifMatch?: string; contentType?: string } = {}): Promise<Reply> {
  const target = new URL(path.replace(/^\//, ''), c.url.href.endsWith('/') ? c.url : new URL(`${c.url.href}/`));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (c.token !== null) headers['authorization'] = `Bearer ${c.token}`;
  if (opts.ifMatch !== undefined) headers['if-match'] = opts.ifMatch;
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  const https = target.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const onResponse = (res: IncomingMessage): void => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('error', reject);
      res.on('end', () => {
        let body: unknown = null;
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            body = text;
          }
        }
        const etag = res.headers.etag;
        resolve({ status: res.statusCode ?? 0, etag: etag === undefined ? null : etag, body });
      });
    };
    const options = { method, headers, timeout: 30_000 };
    const req = https ? httpsRequest(target, { ...options, ...c.tls }, onResponse) : httpRequest(target, options, onResponse);
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => reject(new CallError(`cannot reach ${c.url.origin}: ${errorMessage(err)}`)));
    req.end(payload);
  });
}

/** The API's error as one message: `403 forbidden: …`, then each field it names. */
function failure(r: Reply): CallError {
  const e = (r.body as { error?: { code?: string; message?: string; details?: Array<{ field: string; message: string }> } } | null)?.error;
  if (e === undefined) return new CallError(`HTTP ${r.status}: ${typeof r.body === 'string' ? r.body : JSON.stringify(r.body)}`);
  const details = (e.details ?? []).map((d) => `\n  ${d.field}: ${d.message}`).join('');
  return new CallError(`${r.status} ${e.code ?? 'error'}: ${e.message ?? ''}${details}`);
}

async function ok(p: Promise<Reply>): Promise<Reply> {
  const r = await p;
  if (r.status >= 400) throw failure(r);
  return r;
}

function readFileArg(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${what}: ${errorMessage(err)}`);
  }
}

/** `--set a.b=v` into `into`. */
function setField(into: Record<string, unknown>, pair: string): void {
  const eq = pair.indexOf('=');
  if (eq <= 0) throw new UsageError(`--set ${pair}: expected key=value`);
  const path = pair.slice(0, eq).split('.');
  if (path.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) throw new UsageError(`--set ${pair}: bad key`);
  const raw = pair.slice(eq + 1);
  let value: unknown;
  try {
    value = JSON.parse(raw) as unknown;
  } catch {
    value = raw;
  }
  let at = into;
  for (const p of path.slice(0, -1)) {
    const next = at[p];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) at[p] = {};
    at = at[p] as Record<string, unknown>;
  }
  at[path.at(-1) as string] = value;
}

/** The body of create/update: --file (JSON or YAML), then --set pairs over it. */
function bodyOf(file: string | undefined, sets: readonly string[]): Record<string, unknown> {
  let body: Record<string, unknown> = {};
  if (file !== undefined) {
    const text = readFileArg(file, '--file');
    let parsed: unknown;
    try {
      parsed = extname(file).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
    } catch (err) {
      throw new UsageError(`--file ${file}: ${errorMessage(err)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError(`--file ${file}: must hold one object`);
    body = parsed as Record<string, unknown>;
  }
  for (const s of sets) setField(body, s);
  if (file === undefined && sets.length === 0) throw new UsageError('give the fields: --file F or --set key=value');
  return body;
}

function print(body: unknown, to: NodeJS.WritableStream = process.stdout): void {
  to.write(`${JSON.stringify(body, null, 2)}\n`);
}

/** The new key alone on stdout, the rest of the answer on stderr. */
function printKey(body: Record<string, unknown>, key: unknown): void {
  const { key: _key, ...rest } = body;
  process.stdout.write(`${String(key)}\n`);
  process.stderr.write('\nThe key above is shown once; only its hash is stored.\n');
  print(rest, process.stderr);
}

function connection(v: { url?: string; token?: string; 'token-file'?: string; cert?: string; key?: string; ca?: string }): Connection {
  const urlText = v.url ?? (process.env['INFERENCE_GATEWAY_ADMIN_URL'] || 'http://127.0.0.1:9470');
  let url: URL;
  try {
    url = new URL(urlText);
  } catch {
    throw new UsageError(`--url ${urlText}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http:// or https://');
  if (v.token !== undefined && v['token-file'] !== undefined) throw new UsageError('give either --token or --token-file, not both');
  const token =
    v['token-file'] !== undefined ? readFileArg(v['token-file'], '--token-file').trim() : (v.token ?? process.env['INFERENCE_GATEWAY_ADMIN_TOKEN'] ?? '');
  if ((v.cert === undefined) !== (v.key === undefined)) throw new UsageError('--cert and --key go together');
  if ((v.cert !== undefined || v.ca !== undefined) && url.protocol !== 'https:') throw new UsageError('--cert, --key and --ca need an https:// --url');
  return {
    url,
    token: token === '' ? null : token,
    tls: {
      ...(v.cert === undefined ? {} : { cert: Buffer.from(readFileArg(v.cert, '--cert')) }),
      ...(v.key === undefined ? {} : { key: Buffer.from(readFileArg(v.key, '--key')) }),
      ...(v.ca === undefined ? {} : { ca: Buffer.from(readFileArg(v.ca, '--ca')) }),
    },
  };
}

export async function adminCommand(argv: string[]): Promise<number> {
  try {
    return await run(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`admin: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof CallError) {
      process.stderr.write(`admin: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function run(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        'token-file': { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        ca: { type: 'string' },
        file: { type: 'string', short: 'f' },
        set: { type: 'string', multiple: true },
        'if-match': { type: 'string' },
        grace: { type: 'string' },
        expires: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
  const { values: v, positionals } = parsed;
  if (v.help === true || positionals[0] === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const [resourceWord, verbWord, id, ...extra] = positionals;
  if (resourceWord === undefined) throw new UsageError('name a resource');
  if (!(RESOURCES as readonly string[]).includes(resourceWord)) throw new UsageError(`unknown resource '${resourceWord}' (${RESOURCES.join(', ')})`);
  const resource = resourceWord as Resource;
  if (verbWord === undefined) throw new UsageError(`name a verb for ${resource}`);
  if (!(VERBS as readonly string[]).includes(verbWord)) throw new UsageError(`unknown verb '${verbWord}' (${VERBS.join(', ')})`);
  const verb = verbWord as Verb;
  if ((verb === 'revoke' || verb === 'rotate') && resource !== 'keys') throw new UsageError(`${verb} is only for keys`);
  const needsId = verb !== 'list' && verb !== 'create';
  if (needsId && id === undefined) throw new UsageError(`${resource} ${verb} needs an ID`);
  if ((!needsId && id !== undefined) || extra.length > 0) throw new UsageError(`unexpected argument '${needsId ? extra[0] : id}'`);
  const fieldsAllowed = verb === 'create' || verb === 'update';
  if (!fieldsAllowed && (v.file !== undefined || v.set !== undefined)) throw new UsageError(`--file and --set are for create and update`);
  if (verb !== 'rotate' && (v.grace !== undefined || v.expires !== undefined)) throw new UsageError('--grace and --expires are for keys rotate');
  if (v['if-match'] !== undefined && !needsId) throw new UsageError('--if-match is for update, delete, revoke and rotate');
  const body = fieldsAllowed ? bodyOf(v.file, v.set ?? []) : undefined;
  const rotation: Record<string, unknown> = {};
  if (v.grace !== undefined) rotation['graceMs'] = parseDuration(v.grace);
  if (v.expires !== undefined) rotation['expiresAt'] = v.expires;
  const c = connection(v);

  const base = `/v1/${resource}`;
  const one = `${base}/${encodeURIComponent(id ?? '')}`;
  /** The ETag to send: --if-match as given (quoted if bare), else the resource's current one. */
  const etag = async (): Promise<string> => {
    const given = v['if-match'];
    if (given !== undefined) return /^".*"$/.test(given) ? given : `"${given}"`;
    const r = await ok(send(c, 'GET', one));
    if (r.etag === null) throw new CallError(`GET ${one} returned no ETag`);
    return r.etag;
  };
  switch (verb) {
    case 'list':
      print((await ok(send(c, 'GET', base))).body);
      return 0;
    case 'get': {
      const r = await ok(send(c, 'GET', one));
      print(r.body);
      if (r.etag !== null) process.stderr.write(`ETag: ${r.etag}\n`);
      return 0;
    }
    case 'create': {
      const r = await ok(send(c, 'POST', base, { body }));
      const b = r.body as Record<string, unknown>;
      if (resource === 'keys') printKey(b, b['key']);
      else print(b);
      return 0;
    }
    case 'update': {
      const r = await ok(send(c, 'PATCH', one, { body, ifMatch: await etag(), contentType: 'application/merge-patch+json' }));
      print(r.body);
      return 0;
    }
    case 'delete':
      await ok(send(c, 'DELETE', one, { ifMatch: await etag() }));
      process.stderr.write(`deleted ${resource.slice(0, -1)} ${id ?? ''}\n`);
      return 0;
    case 'revoke':
      print((await ok(send(c, 'POST', `${one}/revoke`, { ifMatch: await etag() }))).body);
      return 0;
    case 'rotate': {
      const r = await ok(send(c, 'POST', `${one}/rotate`, { body: rotation, ifMatch: await etag() }));
      const b = r.body as Record<string, unknown>;
      printKey(b, b['key']);
      return 0;
    }
  }
}
