/**
 * A throwaway PKI for mTLS tests, made with the `openssl` CLI in a temp dir:
 * one CA, a server certificate for 127.0.0.1 / localhost, and client
 * certificates covering every case the mTLS verifier distinguishes. EC P-256
 * keys keep it fast (well under a second). Our own openssl config is used,
 * never the system's, so the extensions are exactly the ones listed here.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface CertFiles {
  /** PEM certificate. */
  readonly cert: string;
  /** PEM private key (unencrypted). */
  readonly key: string;
  /** SHA-256 of the DER certificate, lower-case hex: what Envoy reports as the digest. */
  readonly sha256: string;
}

export const SPIFFE_APP = 'spiffe://prod.example.org/ns/team-a/sa/app';
export const SPIFFE_OTHER = 'spiffe://prod.example.org/ns/team-b/sa/other';
export const SPIFFE_FOREIGN = 'spiffe://evil.example.com/ns/x/sa/y';

export interface TestPki {
  readonly dir: string;
  /** The trusted client (and server) CA, PEM. */
  readonly caCert: string;
  /** A second CA that Envoy does not trust, PEM. */
  readonly otherCaCert: string;
  /** Server certificate: SAN DNS:localhost and IP:127.0.0.1. */
  readonly server: CertFiles;
  readonly clients: {
    /** (a) URI SAN `spiffe://prod.example.org/ns/team-a/sa/app`, subject CN=team-a-app. */
    readonly spiffe: CertFiles;
    /** (b) no SAN; subject `CN=batch-client,O=Acme` (RFC 2253 order). */
    readonly subject: CertFiles;
    /** (c) two URI SANs: SPIFFE_APP then SPIFFE_OTHER. */
    readonly twoSans: CertFiles;
    /** (d) URI SAN in a foreign trust domain: `spiffe://evil.example.com/ns/x/sa/y`. */
    readonly foreignDomain: CertFiles;
    /** (e) looks like (a) (same SAN and subject) but is signed by the other CA. */
    readonly otherCa: CertFiles;
  };
  /** Removes the directory. */
  cleanup(): Promise<void>;
}

// The CA sections carry CA:TRUE; leaf sections carry the key usages Envoy and
// Node expect for TLS clients and servers, plus the SANs under test.
const OPENSSL_CNF = `
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[ client_spiffe ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:${SPIFFE_APP}
[ client_plain ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ client_two_sans ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:${SPIFFE_APP}, URI:${SPIFFE_OTHER}
[ client_foreign ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:${SPIFFE_FOREIGN}
`;

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir, env: { ...process.env, OPENSSL_CONF: join(dir, 'openssl.cnf') } });
  } catch (err) {
    const stderr = typeof err === 'object' && err !== null && 'stderr' in err ? String(err.stderr) : '';
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr}`, { cause: err });
  }
}

async function sha256Of(certPath: string): Promise<string> {
  const fp = new X509Certificate(await readFile(certPath)).fingerprint256;
  return fp.replaceAll(':', '').toLowerCase();
}

async function makeCa(dir: string, name: string, cn: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await openssl(dir, ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-subj', `/CN=${cn}`, '-days', '3', '-config', 'openssl.cnf', '-extensions', 'ca']);
  return { cert, key };
}

let serial = 1000;

async function makeLeaf(dir: string, ca: { cert: string; key: string }, name: string, subject: string, section: string): Promise<CertFiles> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  await openssl(dir, ['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', subject, '-config', 'openssl.cnf']);
  serial += 1;
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    String(serial),
    '-days',
    '2',
    '-extfile',
    'openssl.cnf',
    '-extensions',
    section,
    '-out',
    cert,
  ]);
  return { cert, key, sha256: await sha256Of(cert) };
}

/** Creates the whole PKI in a fresh temp dir (or `dir`, which must exist). */
export async function createTestPki(dir?: string): Promise<TestPki> {
  const root = dir ?? (await mkdtemp(join(tmpdir(), 'igw-pki-')));
  await writeFile(join(root, 'openssl.cnf'), OPENSSL_CNF);
  const [ca, otherCa] = await Promise.all([makeCa(root, 'ca', 'Inference Gateway Test CA'), makeCa(root, 'other-ca', 'Some Other CA')]);
  const [server, spiffe, subject, twoSans, foreignDomain, other] = await Promise.all([
    makeLeaf(root, ca, 'server', '/CN=localhost', 'server'),
    makeLeaf(root, ca, 'client-spiffe', '/CN=team-a-app', 'client_spiffe'),
    makeLeaf(root, ca, 'client-subject', '/O=Acme/CN=batch-client', 'client_plain'),
    makeLeaf(root, ca, 'client-two-sans', '/CN=two-sans', 'client_two_sans'),
    makeLeaf(root, ca, 'client-foreign', '/CN=foreign', 'client_foreign'),
    makeLeaf(root, otherCa, 'client-other-ca', '/CN=team-a-app', 'client_spiffe'),
  ]);
  return {
    dir: root,
    caCert: ca.cert,
    otherCaCert: otherCa.cert,
    server,
    clients: { spiffe, subject, twoSans, foreignDomain, otherCa: other },
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
