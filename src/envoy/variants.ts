/**
 * The committed Envoy config variants derived from envoy/gateway.yaml, so
 * that operators have real files to read and deploy while the one template
 * stays the source of truth. scripts/gen-envoy-variants.ts writes them;
 * test/envoy/variants.test.ts keeps them equal to this render.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './binary.ts';
import { renderGatewayConfig } from './config.ts';
import { toExtAuthzConfig } from './ext-authz.ts';

/** Where a Kubernetes TLS Secret (plus the client CA) is conventionally mounted. */
export const TLS_MOUNT = '/etc/envoy/tls';

export interface Variant {
  readonly file: string;
  readonly header: string;
  render(): string;
}

const gatewayYaml = (): string => readFileSync(join(PROJECT_ROOT, 'envoy', 'gateway.yaml'), 'utf8');

export const VARIANTS: readonly Variant[] = [
  {
    file: 'envoy/ext-authz.yaml',
    header: `# GENERATED from envoy/gateway.yaml by src/envoy/variants.ts (node scripts/gen-envoy-variants.ts).
# The gateway for meshes that only speak ext_authz: same listener, routing and
# error mapping, with ext_authz instead of ext_proc. Differences in behaviour:
# no body rewrite (the model server sees the client's model id), no response
# processing (no token counting); see README "ext_authz".
`,
    render: () => toExtAuthzConfig(gatewayYaml()),
  },
  {
    file: 'envoy/gateway-mtls.yaml',
    header: `# GENERATED from envoy/gateway.yaml by src/envoy/variants.ts (node scripts/gen-envoy-variants.ts).
# The gateway listener on :8443 with TLS that REQUIRES a client certificate
# signed by ${TLS_MOUNT}/ca.crt (server certificate ${TLS_MOUNT}/tls.crt and
# tls.key: a Kubernetes TLS Secret plus the client CA). The sidecar maps the
# certificate's SPIFFE ID or subject to an identity (auth.mtls, docs/identity.md).
`,
    render: () =>
      renderGatewayConfig({
        listenerPort: 8443,
        adminPort: 9901,
        sidecarSocket: '/tmp/inference-gateway/sidecar.sock',
        clusters: [{ name: 'demo-upstream', host: '127.0.0.1', port: 8000 }],
        tls: {
          certChainFile: `${TLS_MOUNT}/tls.crt`,
          privateKeyFile: `${TLS_MOUNT}/tls.key`,
          clientCaFile: `${TLS_MOUNT}/ca.crt`,
          requireClientCertificate: true,
        },
      }),
  },
  {
    file: 'envoy/gateway-xds.yaml',
    header: `# GENERATED from envoy/gateway.yaml by src/envoy/variants.ts (node scripts/gen-envoy-variants.ts).
# The gateway with its upstream clusters from the control plane over xDS: one
# ADS stream (gRPC, HTTP/2) to the xds-control-plane cluster (127.0.0.1:18000
# here; in Kubernetes the control plane's Service), CDS and EDS over it. No
# upstream cluster is static: a backend added, changed or removed through the
# control plane reaches Envoy without a restart or a new file. The sidecar's
# cluster stays static. The ADS stream is mutual TLS: Envoy presents
# ${TLS_MOUNT}/tls.crt (its identity, listed in the control plane's
# xds.tls.allowedClients) and trusts ${TLS_MOUNT}/ca.crt for the control
# plane's certificate. See docs/xds.md.
`,
    render: () =>
      renderGatewayConfig({
        listenerPort: 8080,
        adminPort: 9901,
        sidecarSocket: '/tmp/inference-gateway/sidecar.sock',
        clusters: [],
        xds: {
          host: '127.0.0.1',
          port: 18000,
          tls: { certChainFile: `${TLS_MOUNT}/tls.crt`, privateKeyFile: `${TLS_MOUNT}/tls.key`, caFile: `${TLS_MOUNT}/ca.crt` },
        },
      }),
  },
];
