/**
 * pino JSON logs. Credentials, prompts and completions are never passed to
 * the logger; the redact list is a second line of defence for headers that
 * might slip into a logged object.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      name: 'inference-gateway',
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['headers.authorization', 'headers["x-api-key"]', '*.authorization', '*["x-api-key"]'],
        censor: '[redacted]',
      },
    },
    destination ?? process.stdout,
  );
}
