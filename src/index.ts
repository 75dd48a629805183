/**
 * sead: SEAD neural cellular automata. Learned local rules, iterated to a fixed point, that
 * generalize far beyond the lengths they were trained on.
 *
 * The typed API: tasks (parity, addition, elementary CA) with exact references, models and
 * checkpoints, backends (the Rust CPU core, or a GPU through wgpu), running to a fixed point,
 * training, evaluation.
 */
export * from "./errors.js";
export { Rng } from "./rng.js";
export * from "./tasks/index.js";
export { loadTaskModules } from "./tasks/modules.js";
export { Model } from "./model/model.js";
export { type ModelSpec, type ModelSpecInput, modelSpecSchema, parseSpec, paramLayout, macsPerCellStep, type ParamLayout } from "./model/spec.js";
export {
  saveCheckpoint,
  loadCheckpoint,
  parseCheckpoint,
  checkpointToJson,
  type CheckpointContents,
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
} from "./model/checkpoint.js";
export {
  type Backend,
  type BackendInfo,
  type BackendOptions,
  type Session,
  type SessionOptions,
  type GridShape,
  type TrainBatch,
  type TrainStepResult,
  type ConvergeOptions,
  type ConvergeResult,
  type StepResult,
  CpuBackend,
  GpuBackend,
  type GpuBackendOptions,
  type GpuAdapterInfo,
  gpuAdapters,
  createBackend,
} from "./backend/index.js";
export { runEncoded, solve, checkModelFitsTask, convergeDefaults, type RunOptions, type RunResult, type SolveResult } from "./run.js";
export {
  Trainer,
  trainConfigSchema,
  parseTrainConfig,
  safeParseTrainConfig,
  learningRate,
  stepWeights,
  specFor,
  type TrainConfig,
  type TrainConfigInput,
  type TrainSummary,
  type StepReport,
  type EvalReport,
  type TrainerHooks,
} from "./train/trainer.js";
export { adamInit, adamStep, type AdamState } from "./train/adam.js";
export { lengthSweep, evaluateInputs, hardCaseSweep, type LengthResult, type AdversarialResult } from "./eval/sweep.js";
export { loadModel, modelsDir, SHIPPED_MODELS, type ShippedModel } from "./models.js";
export { writeFileAtomic } from "./io/atomic.js";
export { learnedTrajectories, type TrajectoryResult } from "./eval/trajectory.js";
export * from "./sweep/index.js";
export { verifyModel, verifyRefusal, relationOf, stepRow, DEFAULT_VERIFY_BUDGET, type VerifyBudget, type VerifyOptions, type VerifyRow, type PropertyResult, type VerifyResult } from "./verify/index.js";
