/** Sweeps: seeds and hyperparameters as runs, executed locally, as array jobs, or from a Redis queue. */
export * from "./schema.js";
export * from "./plan.js";
export * from "./run.js";
export * from "./local.js";
export * from "./queue.js";
export * from "./report.js";
