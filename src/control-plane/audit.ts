/**
 * The admin audit log: one record per mutation (whatever its outcome) and
 * per refused admin call (reads included), in the same signed hash chain as
 * the sidecars' request records (src/stores/audit/chain.ts: JSON Lines, each
 * record linked to the previous one's hash, Ed25519-signed checkpoints), so
 * `inference-gateway audit verify --keys KEY.pub FILE` checks it. Records
 * hold who, what, which resource and the sha256 of the canonical JSON of the
 * resource before and after — never a secret (a key's hash is digested, the
 * key itself is never seen here).
 */
import type { Logger } from 'pino';
import { canonicalJson, sha256Hex } from '../crypto/canonical.ts';
import { loadOrCreateSigningKey } from '../crypto/signing.ts';
import { AuditChain } from '../stores/audit/chain.ts';
import { JsonlFileSink } from '../stores/audit/file-sink.ts';

export type AdminActor =
  | {
      readonly method: 'jwt';
      readonly principal: string;
      readonly issuer: string;
      readonly subject: string;
      readonly roles: readonly string[];
    }
  | {
      /** A verified client certificate (auth.mtls): its SPIFFE ID or subject, and its digest. */
      readonly method: 'mtls';
      readonly principal: string;
      readonly spiffeId: string | null;
      readonly subject: string | null;
      readonly certDigest: string;
      readonly roles: readonly string[];
    };

export interface AdminAuditRecord {
  readonly type: 'admin';
  readonly v: 1;
  chain: null;
  readonly at: string;
  readonly requestId: string;
  /** null: the caller could not be authenticated. */
  readonly actor: AdminActor | null;
  readonly method: string;
  readonly path: string;
  /** create, replace, patch, delete, revoke, rotate, read (refused reads only). */
  readonly action: string;
  readonly resource: { readonly kind: string; readonly id: string | null } | null;
  /** sha256 of the canonical JSON of the resource before / after (null: did not exist / no longer exists or unchanged by a refusal). */
  readonly before: string | null;
  readonly after: string | null;
  readonly outcome: 'ok' | 'refused' | 'failed';
  readonly status: number;
  readonly code: string | null;
  /** The desired state's revision the change committed (null: nothing committed). */
  readonly revision: number | null;
}

export function digest(resource: unknown): string | null {
  return resource === null || resource === undefined ? null : sha256Hex(canonicalJson(resource));
}

export class AdminAudit {
  readonly #chain: AuditChain;
  readonly kid: string;

  constructor(opts: { file: string; signingKeyFile: string; checkpointEvery: number; checkpointSeconds: number; log: Logger }) {
    const { key, created } = loadOrCreateSigningKey(opts.signingKeyFile);
    if (created) opts.log.warn({ file: opts.signingKeyFile, kid: key.kid }, 'created a new admin audit signing key (keep its .pub for audit verify)');
    this.kid = key.kid;
    this.#chain = new AuditChain({
      sink: new JsonlFileSink(opts.file, { durability: 'fsync', log: opts.log }),
      key,
      checkpointEvery: opts.checkpointEvery,
      checkpointMs: opts.checkpointSeconds * 1000,
      log: opts.log,
    });
  }

  /** Resolves once the record is on disk (fsync). */
  append(record: Omit<AdminAuditRecord, 'type' | 'v' | 'chain'>): Promise<void> {
    // Keys in canonical order, `chain` in its slot: the chain links it in place.
    const full: AdminAuditRecord = { ...record, type: 'admin', v: 1, chain: null };
    return this.#chain.append(JSON.parse(canonicalJson(full)) as object);
  }

  close(): Promise<void> {
    return this.#chain.close();
  }
}
