/**
 * Every refusal of the admin API, in one JSON shape:
 * `{"error": {"status": 412, "code": "version_mismatch", "message": "...", "details": [{"field": "...", "message": "..."}]}}`.
 */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: readonly FieldProblem[];
  constructor(status: number, code: string, message: string, details: readonly FieldProblem[] = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }

  body(): object {
    return { error: { status: this.status, code: this.code, message: this.message, details: this.details } };
  }
}

/** `path: message` lines (describeIssues) → field problems. */
export function fieldProblems(lines: readonly string[]): FieldProblem[] {
  return lines.flatMap((l) =>
    l.split('\n  ').map((one) => {
      const at = one.indexOf(': ');
      return at === -1 ? { field: '(root)', message: one } : { field: one.slice(0, at), message: one.slice(at + 2) };
    }),
  );
}

export const notFound = (kind: string, id: string): ApiError => new ApiError(404, 'not_found', `no ${kind} "${id}"`);
