import type { z } from 'zod';

/** A config (or snapshot) that failed validation; each line names its path. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    super(`${source} is invalid:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** `quotas.plans[2].tpm` from zod's ['quotas', 'plans', 2, 'tpm']. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length > 0 ? `${formatPath(issue.path)}.` : '';
      return issue.keys.map((k) => `${where}${k}: is not a known setting`).join('\n  ');
    }
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
}
