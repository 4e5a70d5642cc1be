import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigSchema } from '../../src/config/schema.ts';
import { Policy, type DataClassName, type PolicySubject } from '../../src/stages/policy/policy.ts';

const policy = new Policy(
  ConfigSchema.parse({
    policy: {
      version: 'p-7',
      defaultAction: 'permit',
      rules: [
        { name: 'secrets-never', classes: ['SECRET'], action: 'deny' },
        { name: 'clinicians-phi', match: { roles: ['clinician'] }, classes: ['PHI'], action: 'permit' },
        { name: 'phi-elsewhere', classes: ['PHI'], action: 'redact' },
        { name: 'pci-embeddings', match: { endpoints: ['embeddings'] }, classes: ['PCI'], action: 'deny' },
        { name: 'pci', classes: ['PCI'], action: 'redact' },
      ],
    },
  }).policy,
);

const who: PolicySubject = { endpoint: 'chat', model: 'gpt-demo', tenant: 'research', org: 'acme', roles: [] };
const decide = (classes: DataClassName[], extra: Partial<PolicySubject> = {}) => policy.decide(new Set(classes), { ...who, ...extra });

test('nothing found: permit, with the policy version', () => {
  const d = decide([]);
  assert.equal(d.action, 'permit');
  assert.equal(d.version, 'p-7');
});

test('first matching rule per class; the strictest wins', () => {
  assert.equal(decide(['PCI']).action, 'redact');
  assert.equal(decide(['PCI'], { endpoint: 'embeddings' }).action, 'deny');
  assert.equal(decide(['PHI']).action, 'redact');
  assert.equal(decide(['PHI'], { roles: ['clinician'] }).action, 'permit');
  const both = decide(['PCI', 'SECRET']);
  assert.equal(both.action, 'deny');
  assert.deepEqual(both.byClass.get('SECRET'), { action: 'deny', rule: 'secrets-never' });
  assert.deepEqual(both.byClass.get('PCI'), { action: 'redact', rule: 'pci' });
  assert.deepEqual(decide(['PII']).byClass.get('PII'), { action: 'permit', rule: null }, 'no rule: the default action');
});
