/**
 * The benchmark's load generator, run by bench/run.ts as a child process (so
 * its CPU is not spent inside any measured process). It receives one phase
 * over IPC, sends `mark` messages at the start and end of the measurement
 * window (the parent reads the measured processes' CPU counters at those
 * moments), then the phase result, and exits.
 *
 * Not meant to be run by hand.
 */
import { performance } from 'node:perf_hooks';
import { Http1Connection } from './lib/http1.ts';
import type { Http1Response } from './lib/http1.ts';
import type { BodyCheck, ClosedPhaseSpec, ErrorTally, FromChild, HoldPhaseSpec, OpenPhaseSpec, PhaseResult, PhaseSpec, ToChild } from './lib/protocol.ts';
import { Samples } from './lib/stats.ts';

const now = (): number => performance.now();

function send(msg: FromChild): void {
  process.send?.(msg);
}

/** Sends the final message, then closes the channel (which ends the process). */
function sendLast(msg: FromChild): void {
  process.send?.(msg, undefined, {}, () => process.disconnect());
}

const mark = (which: 'start' | 'end'): void => send({ type: 'mark', mark: which });

function newTally(): ErrorTally {
  return { total: 0, byKind: {}, samples: [] };
}

function addError(t: ErrorTally, kind: string, detail: string): void {
  t.total++;
  t.byKind[kind] = (t.byKind[kind] ?? 0) + 1;
  if (t.samples.length < 5) t.samples.push(detail);
}

const SSE_DONE = Buffer.from('data: [DONE]');
const CHAT_OBJECT = Buffer.from('"object":"chat.completion"');

/** null when the response is a good one, else the error kind. */
function checkResponse(res: Http1Response, check: BodyCheck): string | null {
  if (res.status !== 200) return `status ${res.status}`;
  if (check === 'chat-json') {
    if (res.body[0] !== 0x7b || !res.body.includes(CHAT_OBJECT)) return 'bad body';
  } else if (res.body.lastIndexOf(SSE_DONE) < 0) {
    return 'bad body';
  }
  return null;
}

function describe(res: Http1Response): string {
  return `HTTP ${res.status}: ${res.body.toString('utf8', 0, Math.min(res.body.length, 300)).trim()}`;
}

function runClosed(spec: ClosedPhaseSpec): Promise<PhaseResult> {
  const request = Buffer.from(spec.requestBase64, 'base64');
  const latency = new Samples();
  const errors = newTally();
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  let stopping = false;
  let inWindow = 0;
  let sentTotal = 0;
  let okTotal = 0;
  let open = 0;
  let maxOpen = 0;

  const connect = (): Http1Connection => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    return new Http1Connection(spec.host, spec.port, spec.timeoutMs);
  };

  return new Promise((resolve) => {
    let active = spec.connections;
    const finish = (): void => {
      resolve({
        kind: 'closed',
        windowMs: windowEnd - windowStart,
        requests: inWindow,
        okTotal,
        sentTotal,
        latency: latency.summary(),
        maxConnections: maxOpen,
        errors,
      });
    };
    setTimeout(() => {
      windowStart = now();
      mark('start');
    }, spec.warmupMs);
    setTimeout(() => {
      windowEnd = now();
      stopping = true;
      mark('end');
    }, spec.warmupMs + spec.durationMs);

    const worker = (): void => {
      let conn = connect();
      const next = (): void => {
        if (stopping) {
          conn.destroy();
          if (--active === 0) finish();
          return;
        }
        if (conn.closed) {
          open--;
          conn = connect();
        }
        const started = now();
        sentTotal++;
        conn.send(request, (err, res) => {
          const t = now();
          if (err !== null || res === null) {
            addError(errors, err?.message ?? 'no response', err?.message ?? 'no response');
            // Do not spin if the server refuses connections.
            setTimeout(next, 10);
            return;
          }
          const bad = checkResponse(res, spec.check);
          if (bad !== null) addError(errors, bad, describe(res));
          else {
            okTotal++;
            if (t >= windowStart && t < windowEnd) {
              inWindow++;
              latency.add(t - started);
            }
          }
          next();
        });
      };
      next();
    };
    for (let i = 0; i < spec.connections; i++) worker();
  });
}

async function runOpen(spec: OpenPhaseSpec): Promise<PhaseResult> {
  const request = Buffer.from(spec.requestBase64, 'base64');
  const latency = new Samples();
  const lateness = new Samples();
  const service = new Samples();
  const gaps = new Samples();
  let reads = 0;
  const errors = newTally();
  const interval = 1000 / spec.rate;
  const warmCount = Math.round((spec.warmupMs * spec.rate) / 1000);
  const measuredCount = Math.max(1, Math.round((spec.durationMs * spec.rate) / 1000));
  const total = warmCount + measuredCount;
  const conns = new Set<Http1Connection>();
  const idle: Http1Connection[] = [];
  const queue: number[] = [];
  let maxOpen = 0;
  let queued = 0;
  let sentTotal = 0;
  let okTotal = 0;
  let measuredOk = 0;
  let done = 0;
  let windowStart = 0;

  const openCount = (): number => {
    for (const c of conns) if (c.closed) conns.delete(c);
    return conns.size;
  };
  const connect = (): Http1Connection => {
    const c = new Http1Connection(spec.host, spec.port, spec.timeoutMs, { trackArrivals: spec.chunkGaps === true });
    conns.add(c);
    maxOpen = Math.max(maxOpen, conns.size);
    return c;
  };

  // Connections are opened before the clock starts, so connection set-up is
  // not charged to the first requests.
  await Promise.all(
    Array.from({ length: spec.initialConnections }, () => {
      const c = connect();
      idle.push(c);
      return new Promise<void>((resolve, reject) => c.whenConnected((err) => (err === null ? resolve() : reject(err))));
    }),
  );

  return new Promise((resolve) => {
    const t0 = now() + 20;
    const sched = (i: number): number => t0 + i * interval;

    const finish = (): void => {
      const windowEnd = now();
      mark('end');
      for (const c of conns) c.destroy();
      resolve({
        kind: 'open',
        windowMs: windowEnd - windowStart,
        requests: measuredCount,
        okTotal,
        sentTotal,
        latency: latency.summary(),
        sendLateness: lateness.summary(),
        serviceTime: service.summary(),
        maxConnections: maxOpen,
        queued,
        ...(spec.chunkGaps === true ? { chunkGap: gaps.summary(), readsPerResponse: measuredOk > 0 ? reads / measuredOk : Number.NaN } : {}),
        errors,
      });
    };

    const release = (conn: Http1Connection): void => {
      const waiting = queue.shift();
      if (waiting === undefined) {
        if (!conn.closed) idle.push(conn);
        return;
      }
      sendOn(conn.closed ? connect() : conn, waiting);
    };

    const sendOn = (conn: Http1Connection, i: number): void => {
      const sentAt = now();
      sentTotal++;
      conn.send(request, (err, res) => {
        const t = now();
        const measured = i >= warmCount;
        if (err !== null || res === null) {
          addError(errors, err?.message ?? 'no response', err?.message ?? 'no response');
        } else {
          const bad = checkResponse(res, spec.check);
          if (bad !== null) addError(errors, bad, describe(res));
          else {
            okTotal++;
            if (measured) {
              latency.add(t - sched(i));
              lateness.add(sentAt - sched(i));
              service.add(t - sentAt);
              const arrivals = res.arrivals;
              if (arrivals !== undefined) {
                measuredOk++;
                reads += arrivals.length;
                for (let k = 1; k < arrivals.length; k++) gaps.add((arrivals[k] ?? 0) - (arrivals[k - 1] ?? 0));
              }
            }
          }
        }
        done++;
        if (done === total) finish();
        else release(conn);
      });
    };

    const dispatch = (i: number): void => {
      if (i === warmCount) {
        windowStart = now();
        mark('start');
      }
      let conn: Http1Connection | undefined;
      while ((conn = idle.pop()) !== undefined && conn.closed);
      if (conn === undefined && openCount() < spec.maxConnections) conn = connect();
      if (conn === undefined) {
        queued++;
        queue.push(i);
        return;
      }
      sendOn(conn, i);
    };

    let next = 0;
    const tick = (): void => {
      const n = now();
      while (next < total && sched(next) <= n) dispatch(next++);
      if (next < total) setTimeout(tick, Math.max(0, sched(next) - now()));
    };
    setTimeout(tick, Math.max(0, t0 - now()));
  });
}

/** Holds `spec.streams` streams open at once (see HoldPhaseSpec); latency = time to each stream's first bytes. */
function runHold(spec: HoldPhaseSpec): Promise<PhaseResult> {
  const request = Buffer.from(spec.requestBase64, 'base64');
  const firstBytes = new Samples();
  const errors = newTally();
  const conns: Http1Connection[] = [];
  const t0 = now();
  let started = 0;
  let opened = 0;
  let holding = false;
  let over = false;

  return new Promise((resolve) => {
    const finish = (): void => {
      if (over) return;
      over = true;
      clearTimeout(openLimit);
      const windowMs = now() - t0;
      for (const c of conns) c.destroy();
      resolve({
        kind: 'hold',
        windowMs,
        requests: opened,
        okTotal: opened,
        sentTotal: started,
        latency: firstBytes.summary(),
        maxConnections: conns.length,
        errors,
      });
    };
    const hold = (): void => {
      holding = true;
      mark('start');
      setTimeout(() => {
        mark('end');
        finish();
      }, spec.holdMs);
    };
    // Streams not open in time are errors; the phase ends anyway.
    const openLimit = setTimeout(() => {
      for (let i = opened; i < spec.streams; i++) addError(errors, 'not open in time', `stream not open after ${spec.durationMs} ms`);
      if (!holding) hold();
    }, spec.durationMs);

    const openOne = (): void => {
      if (over || started >= spec.streams) return;
      started++;
      const sentAt = now();
      let seen = false;
      const conn = new Http1Connection(spec.host, spec.port, spec.timeoutMs, {
        onData: () => {
          if (seen) return;
          seen = true;
          opened++;
          firstBytes.add(now() - sentAt);
          if (opened === spec.streams && !holding) hold();
          else openOne();
        },
      });
      conns.push(conn);
      conn.send(request, (err, res) => {
        if (over) return;
        // Any end before the hold is over (the stream should still be running) is an error.
        if (err !== null || res === null) addError(errors, err?.message ?? 'no response', err?.message ?? 'no response');
        else addError(errors, 'ended during the hold', describe(res));
        if (!seen) openOne();
      });
    };
    for (let i = 0; i < Math.min(spec.openConcurrency, spec.streams); i++) openOne();
  });
}

function run(spec: PhaseSpec): Promise<PhaseResult> {
  return spec.kind === 'closed' ? runClosed(spec) : spec.kind === 'open' ? runOpen(spec) : runHold(spec);
}

if (process.send === undefined) {
  process.stderr.write('bench/loadgen.ts is started by bench/run.ts (it needs an IPC channel)\n');
  process.exit(2);
}

// The parent going away (crash, Ctrl+C) ends the generator too.
process.on('disconnect', () => process.exit(0));

process.once('message', (msg: ToChild) => {
  const spec = msg.spec;
  // Hard stop: a phase can never outlive its planned length by much.
  const limit = setTimeout(
    () => {
      send({ type: 'failed', message: 'load generator exceeded its time limit' });
      process.exit(3);
    },
    spec.warmupMs + spec.durationMs + spec.timeoutMs + 15_000,
  );
  run(spec).then(
    (result) => {
      clearTimeout(limit);
      sendLast({ type: 'result', result });
    },
    (err: unknown) => {
      clearTimeout(limit);
      sendLast({ type: 'failed', message: err instanceof Error ? err.message : String(err) });
    },
  );
});
