// Regenerates the committed Envoy config variants after a change to
// envoy/gateway.yaml: node scripts/gen-envoy-variants.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../src/envoy/binary.ts';
import { VARIANTS } from '../src/envoy/variants.ts';

for (const v of VARIANTS) {
  writeFileSync(join(PROJECT_ROOT, v.file), v.header + v.render());
  process.stdout.write(`wrote ${v.file}\n`);
}
