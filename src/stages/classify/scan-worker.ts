/**
 * A classification worker thread (./pool.ts): the same detectors as the
 * main thread, built from the same config, scanning texts it is sent so a
 * large body never holds the event loop that serves every other request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Classifier, type ClassifierConfig, type Finding } from './classifier.ts';

export interface ScanJob {
  readonly id: number;
  readonly texts: readonly string[];
}

export interface ScanDone {
  readonly id: number;
  readonly findings?: Finding[][];
  readonly error?: string;
}

const classifier = new Classifier(workerData as ClassifierConfig);
const port = parentPort;
if (port === null) throw new Error('scan-worker.ts runs as a worker thread only');
port.on('message', (job: ScanJob) => {
  let done: ScanDone;
  try {
    done = { id: job.id, findings: job.texts.map((t) => classifier.scan(t)) };
  } catch (err) {
    done = { id: job.id, error: (err as Error).message };
  }
  port.postMessage(done);
});
