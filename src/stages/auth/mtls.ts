/**
 * mTLS client identity: maps the client certificate Envoy verified to a
 * configured identity (auth.mtls). Input is only what Envoy reports about the
 * connection (ConnectionInfo from ext_proc attributes or the ext_authz peer);
 * no HTTP header is ever read, and Envoy removes a client-sent
 * x-forwarded-client-cert (forward_client_cert_details: SANITIZE).
 *
 * Rules, in order, for a connection with a verified client certificate:
 * 1. Envoy's SHA-256 digest of the certificate must be present.
 * 2. At most one URI SAN: several are ambiguous and refused.
 * 3. A SPIFFE URI SAN must be a well-formed SPIFFE ID whose trust domain is in
 *    `trustDomains`.
 * 4. The identity is the exact `spiffeId` mapping, else the longest matching
 *    `spiffe://…/*` prefix, else the exact `subject` mapping (RFC 2253 as
 *    Envoy prints it). An unmapped certificate is refused.
 * Every refusal is `untrusted_client_certificate` (401). Messages name the
 * rule, never a value from the certificate.
 */
import type { AuthConfig, MtlsIdentityConfig } from '../../config/schema.ts';
import type { Endpoint } from '../../pipeline/endpoint.ts';
import { GatewayError } from '../../pipeline/errors.ts';
import type { Allow, ConnectionInfo, Credential, Grants } from '../../pipeline/identity.ts';

export type MtlsCredential = Extract<Credential, { method: 'mtls' }>;

type MtlsConfig = AuthConfig['mtls'];

interface Mapping {
  readonly principal: string;
  readonly grants: Grants;
}

/** SPIFFE trust domain: lower-case letters, digits, '.', '-', '_'. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
/** One SPIFFE ID path segment. */
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;
const DIGEST = /^[0-9a-f]{64}$/;

interface SpiffeId {
  readonly id: string;
  readonly trustDomain: string;
}

/**
 * Parses a SPIFFE ID (spiffe://trust-domain[/path]), per the SPIFFE ID spec:
 * lower-case scheme and trust domain, no port, user info, query or fragment,
 * no empty, "." or ".." path segments, no trailing slash. null = malformed.
 */
export function parseSpiffeId(uri: string): SpiffeId | null {
  if (!uri.startsWith('spiffe://')) return null;
  const rest = uri.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  if (trustDomain === '' || trustDomain.length > 255 || !TRUST_DOMAIN.test(trustDomain)) return null;
  if (slash !== -1) {
    for (const seg of rest.slice(slash + 1).split('/')) {
      if (!PATH_SEGMENT.test(seg) || seg === '.' || seg === '..') return null;
    }
  }
  if (uri.length > 2048) return null;
  return { id: uri, trustDomain };
}

function allow<T extends string>(list: readonly (T | '*')[]): Allow<T> {
  return list.includes('*') ? '*' : new Set(list.filter((x): x is T => x !== '*'));
}

function mappingOf(m: MtlsIdentityConfig): Mapping {
  return Object.freeze({
    principal: m.principal,
    grants: Object.freeze({
      org: m.org,
      tenant: m.tenant,
      tier: m.tier,
      roles: Object.freeze([...m.roles]),
      models: allow<string>(m.models),
      endpoints: allow<Endpoint>(m.endpoints),
    }),
  });
}

function refuse(reason: string): GatewayError {
  return new GatewayError('untrusted_client_certificate', `Untrusted client certificate: ${reason}.`);
}

export class MtlsVerifier {
  readonly #trustDomains: ReadonlySet<string>;
  readonly #exact = new Map<string, Mapping>();
  /** `/*` prefixes (the part before '*', ending in '/'), longest first. */
  readonly #prefixes: Array<{ prefix: string; mapping: Mapping }> = [];
  readonly #subjects = new Map<string, Mapping>();
  readonly #count: number;

  constructor(cfg: MtlsConfig) {
    this.#trustDomains = new Set(cfg.trustDomains);
    this.#count = cfg.identities.length;
    cfg.identities.forEach((m, i) => {
      const where = `auth.mtls.identities[${i}]`;
      const mapping = mappingOf(m);
      if (m.spiffeId !== undefined) {
        const isPrefix = m.spiffeId.endsWith('/*');
        const base = isPrefix ? m.spiffeId.slice(0, -2) : m.spiffeId;
        const parsed = parseSpiffeId(base);
        if (parsed === null) throw new Error(`${where}: spiffeId is not a valid SPIFFE ID${isPrefix ? ' prefix' : ''}`);
        if (!this.#trustDomains.has(parsed.trustDomain)) {
          throw new Error(`${where}: trust domain ${parsed.trustDomain} is not in auth.mtls.trustDomains`);
        }
        if (isPrefix) {
          const prefix = `${base}/`;
          if (this.#prefixes.some((p) => p.prefix === prefix)) throw new Error(`${where}: spiffeId ${m.spiffeId} is mapped twice`);
          this.#prefixes.push({ prefix, mapping });
        } else {
          if (this.#exact.has(base)) throw new Error(`${where}: spiffeId ${m.spiffeId} is mapped twice`);
          this.#exact.set(base, mapping);
        }
      } else if (m.subject !== undefined) {
        if (this.#subjects.has(m.subject)) throw new Error(`${where}: subject ${m.subject} is mapped twice`);
        this.#subjects.set(m.subject, mapping);
      }
    });
    this.#prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** At least one identity mapping is configured (otherwise every certificate would be refused). */
  get enabled(): boolean {
    return this.#count > 0;
  }

  /**
   * null when the connection carries no verified client certificate;
   * otherwise the mapped credential, or a thrown `untrusted_client_certificate`.
   */
  verify(conn: ConnectionInfo): MtlsCredential | null {
    if (!conn.mtls) return null;
    const digest = conn.sha256Digest?.toLowerCase() ?? '';
    if (!DIGEST.test(digest)) throw refuse('the certificate digest is missing');
    if (conn.uriSans.length > 1) throw refuse('it has several URI SANs');

    let spiffe: SpiffeId | null = null;
    const uri = conn.uriSans[0];
    if (uri !== undefined && /^spiffe:/i.test(uri)) {
      spiffe = parseSpiffeId(uri);
      if (spiffe === null) throw refuse('the SPIFFE ID is malformed');
      if (!this.#trustDomains.has(spiffe.trustDomain)) throw refuse('the SPIFFE trust domain is not accepted');
    }

    const subject = conn.subject === null || conn.subject === '' ? null : conn.subject;
    const mapping = (spiffe === null ? undefined : this.#bySpiffeId(spiffe.id)) ?? (subject === null ? undefined : this.#subjects.get(subject));
    if (mapping === undefined) throw refuse('no identity is configured for it');

    return Object.freeze({
      method: 'mtls',
      principal: mapping.principal,
      spiffeId: spiffe?.id ?? null,
      certSubject: subject,
      certDigest: digest,
      ...mapping.grants,
    });
  }

  #bySpiffeId(id: string): Mapping | undefined {
    const exact = this.#exact.get(id);
    if (exact !== undefined) return exact;
    return this.#prefixes.find((p) => id.startsWith(p.prefix))?.mapping;
  }
}
