/**
 * Subcommand dispatch, for the top-level CLI and for each command group
 * (`keys`, `audit`, `snapshot`, …): a table of subcommands, the usage text
 * assembled from it, and the one place that decides what a help word, a
 * missing or unknown subcommand, and an error a subcommand throws come to.
 */
import { errorMessage } from '../shared/values.ts';

/** A bad command line: `<group> <subcommand>: <message>` on stderr, exit 2. */
export class UsageError extends Error {}

/** `fn()`, with whatever it throws (parseArgs' errors, an unreadable --keys file…) made a usage error. */
export function asUsage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

export interface Subcommand {
  /** This subcommand's lines of the group's usage text, as printed (indentation and final newline included). */
  readonly usage: string;
  readonly run: (argv: string[]) => Promise<number> | number;
}

export interface CommandGroup {
  /** How messages name the group: `keys: unknown command 'x'`, `keys create: …`. */
  readonly name: string;
  /** Usage text before the subcommands' lines, and after them. */
  readonly header: string;
  readonly footer?: string;
  /** In the order the usage lists them. */
  readonly commands: Readonly<Record<string, Subcommand>>;
  /** Words that print the usage on stdout and exit 0. Default: help, --help, -h. */
  readonly helpWords?: readonly string[];
  /**
   * Where the usage goes when no subcommand is given (exit 2). Default
   * stderr; the top level, config, envoy and snapshot have always printed it
   * on stdout, and scripts may depend on that.
   */
  readonly missingTo?: 'stdout' | 'stderr';
  /**
   * An unknown subcommand (exit 2): `named` says so on stderr before the
   * usage (default); `as-missing` prints the usage as for a missing one,
   * which is what config, envoy and snapshot have always done.
   */
  readonly unknown?: 'named' | 'as-missing';
  /**
   * The exit code for an error a subcommand throws, printed as
   * `<group> <subcommand>: <message>`; undefined lets it propagate (to the
   * top level, which prints it and exits 1). A UsageError is always 2.
   */
  readonly exitCodeFor?: (err: unknown) => number | undefined;
}

const HELP_WORDS = ['help', '--help', '-h'];

/** Where dispatch writes: the process, or a test's capture. */
export interface Output {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

export function usage(group: CommandGroup): string {
  return `${group.header}${Object.values(group.commands)
    .map((c) => c.usage)
    .join('')}${group.footer ?? ''}`;
}

export async function dispatch(group: CommandGroup, argv: readonly string[], out: Output = process): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== undefined && (group.helpWords ?? HELP_WORDS).includes(sub)) {
    out.stdout.write(usage(group));
    return 0;
  }
  // hasOwn: 'constructor' or '__proto__' must be unknown commands, not Object.prototype's members.
  const command = sub !== undefined && Object.hasOwn(group.commands, sub) ? group.commands[sub] : undefined;
  if (sub === undefined || command === undefined) {
    if (sub !== undefined && (group.unknown ?? 'named') === 'named') out.stderr.write(`${group.name}: unknown command '${sub}'\n\n${usage(group)}`);
    else (group.missingTo === 'stdout' ? out.stdout : out.stderr).write(usage(group));
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const code = err instanceof UsageError ? 2 : group.exitCodeFor?.(err);
    if (code === undefined) throw err;
    out.stderr.write(`${group.name} ${sub}: ${errorMessage(err)}\n`);
    return code;
  }
}
