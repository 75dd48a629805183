/**
 * Worker thread of test/concurrency.test.ts: runs the jobs it is given (at once, within this
 * thread) and posts their results back. The test starts it after registering tsx's require
 * hook in the worker. A failure rejects, which Node reports as the worker's "error" event.
 */
import { parentPort, workerData } from "node:worker_threads";
import { disposeGpu, type Job, runJob } from "./concurrency-shared.js";

void Promise.all((workerData as Job[]).map((j) => runJob(j))).then((results) => {
  disposeGpu();
  parentPort!.postMessage(results);
});
