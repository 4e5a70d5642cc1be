import { readFileSync, writeFileSync } from 'node:fs';
// Regenerates envoy/ext-authz.yaml after a change to envoy/gateway.yaml: node scripts/gen-ext-authz.ts
import { toExtAuthzConfig } from '../src/envoy/ext-authz.ts';
const header = `# GENERATED from envoy/gateway.yaml by src/envoy/ext-authz.ts (test/envoy/ext-authz.test.ts keeps them equal).
# The gateway for meshes that only speak ext_authz: same listener, routing and
# error mapping, with ext_authz instead of ext_proc. Differences in behaviour:
# no body rewrite (the model server sees the client's model id), no response
# processing (no token counting); see README "ext_authz".
`;
writeFileSync('envoy/ext-authz.yaml', header + toExtAuthzConfig(readFileSync('envoy/gateway.yaml', 'utf8')));
