// `inference-gateway demo-upstream`: run the demo model server (OpenAI and Anthropic APIs)
// until SIGTERM/SIGINT. Also runnable directly: `node src/demo/main.ts --port 0`.

import { DEFAULT_MODEL_IDS, startDemoUpstream } from './upstream.ts';
import type { DemoUpstreamOptions } from './upstream.ts';
import { errorMessage } from '../shared/values.ts';

export const DEMO_UPSTREAM_USAGE = `Usage: inference-gateway demo-upstream [options]

Options:
  --host <addr>     address to bind (default 127.0.0.1)
  --port <n>        port to listen on, 0 for a free port (default 8000)
  --model <id>      model id to serve; repeat for several (default demo-model)
  --no-record       do not record requests (for benchmarks)
  -h, --help        show this help
`;

export const DEFAULT_DEMO_PORT = 8000;

export interface DemoUpstreamArgs extends DemoUpstreamOptions {
  help: boolean;
}

/** Parse `--host`, `--port`, `--model`, `--no-record` (`--flag value` or `--flag=value`). */
export function parseDemoUpstreamArgs(argv: string[]): DemoUpstreamArgs {
  const out: DemoUpstreamArgs = { host: '127.0.0.1', port: DEFAULT_DEMO_PORT, record: true, help: false };
  const models: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const inline = arg.startsWith('--') && eq > 0 ? arg.slice(eq + 1) : undefined;
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[++i];
      if (next === undefined) throw new Error(`${name} needs a value`);
      return next;
    };
    switch (name) {
      case '--host':
        out.host = value();
        if (out.host === '') throw new Error('--host must not be empty');
        break;
      case '--port': {
        const raw = value();
        const port = Number(raw);
        if (!/^\d+$/.test(raw) || port > 65535) throw new Error(`--port must be an integer from 0 to 65535, got ${raw}`);
        out.port = port;
        break;
      }
      case '--model':
        models.push(value());
        break;
      case '--no-record':
        if (inline !== undefined) throw new Error('--no-record takes no value');
        out.record = false;
        break;
      case '-h':
      case '--help':
        out.help = true;
        break;
      default:
        throw new Error(`unknown argument: ${arg}\n\n${DEMO_UPSTREAM_USAGE}`);
    }
  }
  if (models.length > 0) out.modelIds = models;
  return out;
}

/**
 * Start the demo upstream, print one JSON line
 * `{"msg":"demo upstream listening","url":...}` to stdout, and resolve once
 * SIGTERM or SIGINT has been received and the server has closed.
 */
export async function runDemoUpstream(argv: string[]): Promise<void> {
  const args = parseDemoUpstreamArgs(argv);
  if (args.help) {
    process.stdout.write(DEMO_UPSTREAM_USAGE);
    return;
  }
  const upstream = await startDemoUpstream(args);
  process.stdout.write(
    JSON.stringify({
      msg: 'demo upstream listening',
      url: upstream.url,
      port: upstream.port,
      models: args.modelIds ?? DEFAULT_MODEL_IDS,
      record: args.record,
    }) + '\n',
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (sig: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve(sig);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  await upstream.close();
  process.stdout.write(JSON.stringify({ msg: 'demo upstream stopped', signal }) + '\n');
}

if (import.meta.main) {
  runDemoUpstream(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`demo-upstream: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  });
}
