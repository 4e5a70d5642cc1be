/**
 * The admin API over node:http: JSON in and out, every error in one shape
 * (errors.ts), authentication and the read/write role checked before
 * anything else, ETag on every resource read and write, If-Match required to
 * change or delete one, every mutation and every refused call written to the
 * admin audit log before the answer, and each committed change pushed to the
 * data plane (sync.ts) — the answer waits for that push up to 2 s and says
 * whether it landed (`x-igw-sync: pushed | pending`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { describeIssues } from '../config/errors.ts';
import { keyStatus } from '../stores/keys/port.ts';
import { errorMessage } from '../shared/values.ts';
import type { AdminAudit, AdminActor } from './audit.ts';
import { digest } from './audit.ts';
import type { AdminAuth } from './auth.ts';
import { ApiError, fieldProblems } from './errors.ts';
import { openApiDocument } from './openapi.ts';
import { KINDS, type Kind } from './resources.ts';
import { matchRoute, type Route } from './routes.ts';
import { snapshotVersion } from './snapshot.ts';
import { keyRecordOf, type Change, type DesiredState, type DesiredStateStore, type Stored, type StoredKey } from './store.ts';
import type { DataPlaneSync } from './sync.ts';

const MAX_BODY = 1024 * 1024;
const SYNC_WAIT_MS = 2000;

export interface AdminServerDeps {
  readonly store: DesiredStateStore;
  readonly auth: AdminAuth;
  readonly audit: AdminAudit;
  readonly sync: DataPlaneSync;
  readonly log: Logger;
  /** HTTPS (listen.tls): client certificates are requested and verified against clientCaFile. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly clientCaFile: string; readonly requireClientCertificate: boolean };
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly etag?: number;
  readonly headers?: Record<string, string>;
}

/** What the audit record of a mutation says about it. */
interface Audited {
  before: unknown;
  after: unknown;
  revision: number | null;
  resourceId: string | null;
}

/** The keys whose record a change to this resource changes: a tenant's keys take their tier from its plan. */
function keysFollowing(kind: Kind, state: DesiredState, id: string | null): string[] {
  return kind === 'tenants' ? state.keys.filter((k) => k.spec.tenant === id).map((k) => k.id) : [];
}

export function resourceView(s: Stored): Record<string, unknown> {
  return { ...s.spec, version: s.version, createdAt: s.createdAt, updatedAt: s.updatedAt };
}

export function keyView(k: StoredKey): Record<string, unknown> {
  return {
    id: k.id,
    ...k.spec,
    status: keyStatus(keyRecordOf(k), Date.now()),
    createdAt: k.createdAt,
    updatedAt: k.updatedAt,
    expiresAt: k.expiresAt,
    revokedAt: k.revokedAt,
    replacedBy: k.replacedBy,
    version: k.version,
  };
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function validate(schema: Route['body'], body: unknown): Record<string, unknown> {
  if (schema === undefined) return {};
  const r = schema.safeParse(body);
  if (!r.success) {
    const problems = fieldProblems(describeIssues(r.error));
    throw new ApiError(422, 'invalid_body', `the body is invalid: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, problems);
  }
  return r.data as Record<string, unknown>;
}

function ifMatchVersion(req: IncomingMessage): number {
  const h = req.headers['if-match'];
  if (h === undefined || h === '') throw new ApiError(428, 'precondition_required', 'send If-Match with the ETag you read (GET the resource first)');
  const m = /^\s*"(\d{1,9})"\s*$/.exec(h);
  if (m === null) throw new ApiError(412, 'version_mismatch', 'If-Match must be one ETag of this resource, e.g. "3"');
  return Number(m[1]);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw new ApiError(413, 'body_too_large', `the body is larger than ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/(merge-patch\+)?json\b/.test(type)) throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(400, 'invalid_json', 'the body is not valid JSON');
  }
}

export class AdminServer {
  readonly #d: AdminServerDeps;
  readonly #server: Server;

  constructor(deps: AdminServerDeps) {
    this.#d = deps;
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.#handle(req, res);
    const tls = deps.tls;
    this.#server =
      tls === undefined
        ? createServer(handler)
        : createHttpsServer(
            {
              cert: readFileSync(tls.certFile),
              key: readFileSync(tls.keyFile),
              ca: readFileSync(tls.clientCaFile),
              requestCert: true,
              // Optional certificates: the handshake lets an unverified one through and auth refuses it (401, audited).
              rejectUnauthorized: tls.requireClientCertificate,
              minVersion: 'TLSv1.2',
            },
            handler,
          );
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://admin');
    const method = req.method ?? 'GET';
    let actor: AdminActor | null = null;
    let route: Route | null = null;
    let id: string | null = null;
    const audited: Audited = { before: null, after: null, revision: null, resourceId: null };
    let answer: Answer;
    try {
      const m = matchRoute(method, url.pathname);
      if (m === null) throw new ApiError(404, 'not_found', `no route ${url.pathname}`);
      if ('allowed' in m) throw new ApiError(405, 'method_not_allowed', `${method} is not allowed here; use ${m.allowed.join(', ')}`);
      route = m.route;
      id = m.id;
      if (route.access !== null) {
        actor = await this.#d.auth.authenticate({
          authorization: req.headers.authorization,
          tls: req.socket instanceof TLSSocket ? req.socket : null,
        });
        this.#d.auth.authorize(actor, route.access);
      }
      answer = await this.#dispatch(route, id, req, audited);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(500, 'internal', 'internal error (logged with the request id)');
      if (!(err instanceof ApiError)) this.#d.log.error({ requestId, err: errorMessage(err) }, 'admin call failed');
      answer = { status: e.status, body: e.body() };
    }
    const refused = answer.status === 401 || answer.status === 403;
    const mutation = route !== null && route.access === 'write';
    if (refused || mutation) {
      try {
        await this.#d.audit.append({
          at: new Date().toISOString(),
          requestId,
          actor,
          method,
          path: url.pathname,
          action: route?.verb ?? 'unknown',
          resource: route?.kind == null ? null : { kind: route.kind, id: audited.resourceId ?? id },
          before: digest(audited.before),
          after: digest(audited.after),
          outcome: answer.status < 400 ? 'ok' : refused ? 'refused' : 'failed',
          status: answer.status,
          code: answer.status < 400 ? null : ((answer.body as { error?: { code?: string } }).error?.code ?? null),
          revision: audited.revision,
        });
      } catch (err) {
        this.#d.log.error({ requestId, err: errorMessage(err) }, 'admin audit write failed');
        answer = {
          status: 503,
          body: new ApiError(
            503,
            'audit_unavailable',
            `the admin audit log cannot be written${audited.revision === null ? '' : `; the change was committed (revision ${audited.revision})`}`,
          ).body(),
        };
      }
    }
    const headers: Record<string, string> = { 'content-type': 'application/json', 'x-request-id': requestId, ...answer.headers };
    if (answer.etag !== undefined) headers['etag'] = `"${answer.etag}"`;
    if (answer.status === 204) {
      res.writeHead(204, headers).end();
      return;
    }
    res.writeHead(answer.status, headers).end(`${JSON.stringify(answer.body, null, 2)}\n`);
  }

  async #dispatch(route: Route, id: string | null, req: IncomingMessage, audited: Audited): Promise<Answer> {
    const { store } = this.#d;
    if (route.verb === 'openapi') return { status: 200, body: openApiDocument() };
    if (route.verb === 'status') {
      const state = await store.state();
      return { status: 200, body: { revision: state.revision, snapshotVersion: snapshotVersion(state.revision), inSync: this.#d.sync.inSync } };
    }
    const raw = route.method === 'GET' || route.method === 'DELETE' ? {} : await readJson(req);
    const version = route.ifMatch ? ifMatchVersion(req) : 0;
    if (route.kind === 'keys') return this.#keys(route, id, raw, version, audited);
    const kind = route.kind as Kind;
    const info = KINDS[kind];
    const one = (s: Stored, status = 200, headers?: Record<string, string>): Answer => ({
      status,
      body: resourceView(s),
      etag: s.version,
      ...(headers === undefined ? {} : { headers }),
    });
    switch (route.verb) {
      case 'list':
        return { status: 200, body: { items: (await store.list(kind)).map(resourceView) } };
      case 'get':
        return one(await store.get(kind, id ?? ''));
      case 'create': {
        // Plans are kept as written (budgets as decimal strings); the others in their validated form (defaults filled in).
        const parsed = validate(info.schema, raw);
        const spec = kind === 'plans' ? (raw as Record<string, unknown>) : parsed;
        audited.resourceId = String(spec[info.idField]);
        const c = await store.create(kind, spec);
        return this.#committed(c, audited, (s, h) => one(s, 201, h), keysFollowing(kind, c.state, audited.resourceId));
      }
      case 'replace':
      case 'patch': {
        let body = raw;
        if (route.verb === 'patch') {
          const current = await store.get(kind, id ?? '');
          body = mergePatch(current.spec, raw);
        }
        const parsed = validate(info.schema, body);
        const spec = kind === 'plans' ? (body as Record<string, unknown>) : parsed;
        const c = await store.replace(kind, id ?? '', version, spec);
        return this.#committed(c, audited, (s, h) => one(s, 200, h), keysFollowing(kind, c.state, id));
      }
      case 'delete': {
        const c = await store.delete(kind, id ?? '', version);
        return this.#committed(c, audited, () => ({ status: 204, body: null }));
      }
      default:
        throw new ApiError(405, 'method_not_allowed', `${route.verb} is not defined for ${kind}`);
    }
  }

  async #keys(route: Route, id: string | null, raw: unknown, version: number, audited: Audited): Promise<Answer> {
    const { store } = this.#d;
    const one = (k: StoredKey, status = 200, extra: Record<string, unknown> = {}, headers?: Record<string, string>): Answer => ({
      status,
      body: { ...extra, ...keyView(k) },
      etag: k.version,
      ...(headers === undefined ? {} : { headers }),
    });
    switch (route.verb) {
      case 'list':
        return { status: 200, body: { items: (await store.listKeys()).map(keyView) } };
      case 'get':
        return one(await store.getKey(id ?? ''));
      case 'create': {
        const b = validate(route.body, raw) as { expiresAt?: string } & Record<string, unknown>;
        const { expiresAt, ...grants } = b;
        const c = await store.createKey(grants as never, expiresAt ?? null);
        audited.resourceId = c.after?.id ?? null;
        return this.#committed(c, audited, (k, h) => one(k, 201, { key: c.key }, h), c.after === null ? [] : [c.after.id]);
      }
      case 'patch': {
        const b = validate(route.body, raw);
        const c = await store.updateKey(id ?? '', version, b);
        return this.#committed(c, audited, (k, h) => one(k, 200, {}, h), [id ?? '']);
      }
      case 'revoke': {
        const c = await store.revokeKey(id ?? '', version);
        return this.#committed(c, audited, (k, h) => one(k, 200, {}, h), [id ?? '']);
      }
      case 'rotate': {
        const b = validate(route.body, raw) as { graceMs: number; expiresAt?: string };
        const c = await store.rotateKey(id ?? '', version, b.graceMs, b.expiresAt ?? null);
        return this.#committed(c, audited, (k, h) => one(k, 200, { key: c.key, created: keyView(c.created) }, h), [id ?? '', c.created.id]);
      }
      default:
        throw new ApiError(405, 'method_not_allowed', `${route.verb} is not defined for keys`);
    }
  }

  /** Records the change for the audit, pushes the new state to the data plane and waits (bounded) for it to land. */
  async #committed<T>(
    c: Change<T>,
    audited: Audited,
    answer: (after: T, headers: Record<string, string>) => Answer,
    keyIds: readonly string[] = [],
  ): Promise<Answer> {
    audited.before = c.before;
    audited.after = c.after;
    audited.revision = c.revision;
    this.#d.sync.push(c.state, keyIds);
    const pushed = await this.#d.sync.settled(SYNC_WAIT_MS);
    const headers = { 'x-igw-sync': pushed ? 'pushed' : 'pending', 'x-igw-revision': String(c.revision) };
    if (c.after === null) return { status: 204, body: null, headers };
    return answer(c.after, headers);
  }
}
