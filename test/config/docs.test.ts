/**
 * docs/configuration.md is kept equal to the config schema (and its Routing
 * snapshot section to the snapshot format), the way
 * docs/errors.md is kept equal to the error registry
 * (test/pipeline/errors.test.ts).
 *
 * "Equal" means, for the tables of the doc's Settings section:
 * - every setting of the schema is documented: each leaf path, walking
 *   objects, arrays (`auth.apiKeys[].id` for the fields of a list's
 *   entries), records (`*` for the key) and unions;
 * - every documented path exists in the schema (a leaf, or an object or
 *   list documented as a whole, like `routing.redis` or `auth.apiKeys[]`);
 * - the documented default is the schema's: a value (read as YAML, as it
 *   would be written in the config file; a string may also be given as is),
 *   `unset` (optional, no default) or `required`.
 *
 * A table row's path cell holds one or more paths in backticks; `.name`
 * abbreviates a sibling of the path before it. Its default cell holds one
 * default per path, or one for all of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigSchema } from '../../src/config/schema.ts';
import { SnapshotSchema } from '../../src/control/snapshot.ts';

const DOC = new URL('../../docs/configuration.md', import.meta.url);

type Default = { kind: 'value'; value: unknown } | { kind: 'unset' } | { kind: 'required' };

interface Setting {
  readonly default: Default;
  /** A leaf must be documented; an object or a list of objects may be documented as a whole. */
  readonly leaf: boolean;
}

const REQUIRED: Default = { kind: 'required' };
const UNSET: Default = { kind: 'unset' };

/** The schema inside optional/default/nullable/pipe wrappers: what decides whether a node has fields. */
function core(s: z.core.$ZodType): z.core.$ZodType {
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault || s instanceof z.ZodPrefault) return core(s.def.innerType);
  if (s instanceof z.ZodPipe) return core(s.def.in);
  return s;
}

function hasFields(s: z.core.$ZodType): boolean {
  const c = core(s);
  return c instanceof z.ZodObject || (c instanceof z.ZodUnion && c.options.some(hasFields));
}

/** Every path of `schema` under `path`, with its default. */
function settingsOf(schema: z.core.$ZodType, path = '', dflt: Default = REQUIRED, out = new Map<string, Setting>()): Map<string, Setting> {
  const at = (name: string): string => (path === '' ? name : `${path}.${name}`);
  if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    const value: unknown = schema.def.defaultValue;
    // `.default(null)` is how the schema says "unset" for a nullable setting.
    return settingsOf(schema.def.innerType, path, value === null ? UNSET : { kind: 'value', value }, out);
  }
  if (schema instanceof z.ZodOptional) return settingsOf(schema.def.innerType, path, dflt.kind === 'required' ? UNSET : dflt, out);
  if (schema instanceof z.ZodNullable) return settingsOf(schema.def.innerType, path, dflt, out);
  if (schema instanceof z.ZodPipe) return settingsOf(schema.def.in, path, dflt, out);
  if (schema instanceof z.ZodObject) {
    if (path !== '' && !out.has(path)) out.set(path, { default: dflt, leaf: false });
    for (const [name, field] of Object.entries<z.core.$ZodType>(schema.shape)) settingsOf(field, at(name), REQUIRED, out);
    return out;
  }
  if (schema instanceof z.ZodUnion && hasFields(schema)) {
    // Each alternative's fields, all under the same path.
    for (const option of schema.options) if (hasFields(option)) settingsOf(option, path, dflt, out);
    return out;
  }
  if (schema instanceof z.ZodArray && hasFields(schema.element)) {
    out.set(`${path}[]`, { default: dflt, leaf: false });
    return settingsOf(schema.element, `${path}[]`, REQUIRED, out);
  }
  if (schema instanceof z.ZodRecord && hasFields(schema.def.valueType)) {
    out.set(path, { default: dflt, leaf: false });
    return settingsOf(schema.def.valueType, at('*'), REQUIRED, out);
  }
  out.set(path, { default: dflt, leaf: true });
  return out;
}

interface Documented {
  readonly path: string;
  readonly default: string;
  readonly line: number;
}

/** The paths and defaults in the tables of one `## ` section of the doc. */
function documentedSettings(markdown: string, section: string): { rows: Documented[]; problems: string[] } {
  const rows: Documented[] = [];
  const problems: string[] = [];
  const lines = markdown.split('\n');
  const start = lines.indexOf(section);
  if (start < 0) return { rows, problems: [`no "${section}" section`] };
  for (let i = start + 1; i < lines.length && !(lines[i] ?? '').startsWith('## '); i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('| `')) continue;
    const [, pathCell = '', defaultCell = ''] = line.split('|').map((c) => c.trim());
    if (!/^`[^`]+`(, `[^`]+`)*$/.test(pathCell)) {
      problems.push(`line ${i + 1}: path cell must be \`path\`[, \`path\`…]: ${pathCell}`);
      continue;
    }
    const paths: string[] = [];
    for (const [, p = ''] of pathCell.matchAll(/`([^`]+)`/g)) {
      const prev = paths.at(-1);
      paths.push(p.startsWith('.') && prev !== undefined ? `${prev.slice(0, prev.lastIndexOf('.'))}${p}` : p);
    }
    if (!/^(`[^`]*`|unset|required)(, (`[^`]*`|unset|required))*$/.test(defaultCell)) {
      problems.push(`line ${i + 1}: default cell must be \`value\`, unset or required (comma-separated, one per path): ${defaultCell}`);
      continue;
    }
    const defaults = [...defaultCell.matchAll(/`[^`]*`|unset|required/g)].map((m) => m[0]);
    if (defaults.length !== 1 && defaults.length !== paths.length) {
      problems.push(`line ${i + 1}: ${paths.length} paths but ${defaults.length} defaults`);
      continue;
    }
    paths.forEach((path, j) => rows.push({ path, default: defaults[defaults.length === 1 ? 0 : j] ?? '', line: i + 1 }));
  }
  return { rows, problems };
}

function sameDefault(documented: string, schema: Default): boolean {
  if (documented === 'unset' || documented === 'required') return schema.kind === documented;
  if (schema.kind !== 'value') return false;
  const text = documented.slice(1, -1);
  if (typeof schema.value === 'string' && text === schema.value) return true;
  try {
    return isDeepStrictEqual(parseYaml(text), schema.value);
  } catch {
    return false;
  }
}

function describe(d: Default): string {
  return d.kind === 'value' ? `\`${JSON.stringify(d.value)}\`` : d.kind;
}

/** Where the doc and the schema disagree, one line each; empty when they agree. */
function mismatches(schema: z.core.$ZodType, markdown: string, section = '## Settings'): string[] {
  const settings = settingsOf(schema);
  const { rows, problems } = documentedSettings(markdown, section);
  const seen = new Set<string>();
  for (const row of rows) {
    const s = settings.get(row.path);
    if (seen.has(row.path)) problems.push(`line ${row.line}: ${row.path} is documented twice`);
    seen.add(row.path);
    if (s === undefined) problems.push(`line ${row.line}: ${row.path} is not a setting`);
    else if (!sameDefault(row.default, s.default))
      problems.push(`line ${row.line}: ${row.path}: documented default ${row.default}, schema ${describe(s.default)}`);
  }
  for (const [path, s] of settings) if (s.leaf && !seen.has(path)) problems.push(`${path} (default ${describe(s.default)}) is not documented`);
  return problems;
}

test('docs/configuration.md documents every setting of the config schema, and only those, with their defaults', () => {
  assert.deepEqual(mismatches(ConfigSchema, readFileSync(DOC, 'utf8')), []);
});

test('docs/configuration.md documents every field of the routing snapshot format, and only those, with their defaults', () => {
  assert.deepEqual(mismatches(SnapshotSchema, readFileSync(DOC, 'utf8'), '## Routing snapshot'), []);
});

test('the schema walk reaches list entries, nested objects, optional objects and scalar lists', () => {
  const s = settingsOf(ConfigSchema);
  assert.deepEqual(s.get('server.grpc.port'), { default: UNSET, leaf: true });
  assert.deepEqual(s.get('auth.apiKeys[]'), { default: { kind: 'value', value: [] }, leaf: false });
  assert.deepEqual(s.get('auth.apiKeys[].hash'), { default: REQUIRED, leaf: true });
  assert.deepEqual(s.get('auth.apiKeys[].endpoints'), { default: { kind: 'value', value: ['*'] }, leaf: true });
  assert.deepEqual(s.get('auth.jwt.issuers[].claims.principal'), { default: { kind: 'value', value: 'sub' }, leaf: true });
  assert.deepEqual(s.get('quotas.plans[].limits[].scope'), { default: REQUIRED, leaf: true });
  assert.deepEqual(s.get('quotas.plans[].soft.threshold'), { default: REQUIRED, leaf: true });
  assert.deepEqual(s.get('routing.redis'), { default: UNSET, leaf: false });
  assert.deepEqual(s.get('routing.redis.key'), { default: { kind: 'value', value: 'igw:routing:snapshot' }, leaf: true });
  assert.deepEqual(s.get('redis.clusterNodes'), { default: { kind: 'value', value: [] }, leaf: true });
  const union = z.strictObject({
    a: z.union([z.strictObject({ b: z.string() }), z.strictObject({ c: z.number().default(1) })]),
    m: z.record(z.string(), z.strictObject({ d: z.boolean().optional() })),
  });
  assert.deepEqual([...settingsOf(union).keys()], ['a', 'a.b', 'a.c', 'm', 'm.*', 'm.*.d']);
});

test('the check fails for a setting added without docs, a documented setting that does not exist, and a wrong default', () => {
  const doc = readFileSync(DOC, 'utf8');
  // A setting no schema has (tracing, which this example once named, is now a real one).
  const extended = ConfigSchema.safeExtend({ undocumented: z.strictObject({ sampleRate: z.number().default(0.1) }).prefault({}) });
  assert.deepEqual(mismatches(extended, doc), ['undocumented.sampleRate (default `0.1`) is not documented']);

  const row = '| `policy.maxJsonDepth` | `32` |';
  assert.ok(doc.includes(row));
  const bogus = doc.replace(row, `| \`policy.maxJsonBytes\` | \`1\` | … |\n${row}`);
  assert.match(mismatches(ConfigSchema, bogus).join('\n'), /policy\.maxJsonBytes is not a setting/);
  const wrong = doc.replace(row, '| `policy.maxJsonDepth` | `64` |');
  assert.match(mismatches(ConfigSchema, wrong).join('\n'), /policy\.maxJsonDepth: documented default `64`, schema `32`/);
  const missing = doc.replace(/^\| `logging\.level` .*\n/m, '');
  assert.deepEqual(mismatches(ConfigSchema, missing), ['logging.level (default `"info"`) is not documented']);
});
