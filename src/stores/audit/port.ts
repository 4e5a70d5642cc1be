/**
 * Where the audit chain writes: lines of JSON (one per record or checkpoint),
 * already serialized (the chain hashes the canonical JSON and writes those
 * same bytes). The lines of one call are written together, in order.
 * Implemented by the JSONL file sink and the Redis stream sink.
 */
export interface AuditLineSink {
  append(lines: readonly string[]): Promise<void>;
  close(): Promise<void>;
}
