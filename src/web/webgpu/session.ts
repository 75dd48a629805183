/**
 * A batch of grids on WebGPU, stepped in place: crates/sead-gpu/src/session.rs `GpuSession`,
 * over the same step.wgsl entry points and the same buffers, bindings and records (GroupInfo,
 * SampleState, Slot, ConvInfo). How the work is laid out, as there:
 * - the batch is split into groups whose buffers fit the device's storage binding limit; each
 *   holds x, two copies of h (a sample's current copy is its clock's parity) and the outputs;
 * - a window of `checkEvery` steps is one command buffer: per step one step_forward (or, for
 *   short 1D rows laid end to end, step_packed) dispatch per group and one sample_update; then
 *   the per-step stats (stepping) or the per-sample states (converging) are read back once;
 * - sample_update runs the settle test after every step, so a sample stops at exactly the
 *   step the CPU backend stops it, even in the middle of a window; between windows the host
 *   drops settled samples from the dispatch (`compact`);
 * - with `freeze` (1D and 2D), tiles whose neighbourhood did not change in the last step are not
 *   computed: before each step queue_tiles lists the tiles to compute and sizes step_forward's
 *   indirect dispatch (settled-tile skipping, described in step.wgsl; `set_freeze`).
 * WebGPU reads are asynchronous, so each step() and converge() ends by reading back the
 * outputs and the hidden state: the synchronous getters return those copies.
 */
import type { ConvergeOptions, ConvergeResult, GridShape, Session, StepResult } from "../../backend/types.js";
import { AbortError, InvalidInputError, ResourceLimitError, SeadError } from "../../errors.js";
import { type ModelSpec, paramLayout } from "../../model/spec.js";
import { type Bind, STAGING_USAGE, STORAGE_USAGE, UNIFORM_USAGE, type WebGpuContext, WebGpuError } from "./context.js";
import { BufferUsage, type GPUBindGroup, type GPUBuffer, type GPUCommandEncoder, type GPUComputePipeline } from "./gpu-types.js";
import { WG, WG_FLAT, checkParams, fold, packStepWeights, records, stepConstants, stepTile, stepWeightsLen, stride } from "./kernels.js";

/** Steps recorded per submission (and between readbacks) unless the batch needs fewer (`DEFAULT_CHECK_EVERY`). */
export const DEFAULT_CHECK_EVERY = 32;
/** Words of `SampleState` in step.wgsl. */
const SAMPLE_WORDS = 10;
/** Words per sample and step in the stats buffer (`STAT_WORDS` in step.wgsl). */
const STAT_WORDS = 3;
/** Bytes of `Slot` (a dynamic-offset uniform window). */
const SLOT_BYTES = 16;
/** Words of `GroupInfo`; word 5 is n_active. */
const INFO_WORDS = 12;
const U32_MAX = 0xffffffff;
/** Words of `tile_queue` before the list (QUEUE_AT in step.wgsl): words 4 and 5 hold the two step parities' counts. */
const QUEUE_AT = 8;

// Binding tables, binding i = position i (STEP_KINDS, UPDATE_KINDS, READOUT_KINDS in session.rs).
const STEP_KINDS: readonly Bind[] = [
  "read", // params
  "read", // xs
  "write", // hs
  "write", // outs
  "write", // samples
  "write", // stats
  "read", // active_list
  "uniform", // info
  "dynamic", // slot
  "uniform", // conv
  "read", // wpack
  "write", // tile_still
  "write", // tile_queue
  "unused", // tile_dispatch (its indirect size)
];
/** `queue_tiles` (settled-tile skipping). */
const QUEUE_KINDS: readonly Bind[] = ["unused", "unused", "unused", "unused", "write", "unused", "read", "uniform", "dynamic", "unused", "unused", "write", "write", "write"];
const UPDATE_KINDS: readonly Bind[] = ["unused", "unused", "unused", "unused", "write", "write", "unused", "unused", "dynamic", "uniform", "unused", "unused", "unused", "unused"];
const READOUT_KINDS: readonly Bind[] = ["read", "unused", "write", "write", "write", "unused", "unused", "uniform", "unused", "unused", "unused", "unused", "unused", "unused"];

/** One entry of a binding table: a whole buffer, or a window of `size` bytes (`Res`). */
type Res = GPUBuffer | { buffer: GPUBuffer; size: number };

/** How a session is made (the backend's limits, and SessionOptions). */
export interface WebGpuSessionOptions {
  /** Refuse a session needing more bytes of GPU memory than this. */
  maxBytes: number;
  /** Bytes this session needs (`bytes_needed`). */
  needBytes: number;
  /** Settled-tile skipping (`set_freeze`); absent: off. */
  freeze?: number | undefined;
  /** Cap on any one buffer binding below the device's (`max_group_bytes`): exercises grouping in tests. */
  maxGroupBytes?: number | undefined;
}

interface Group {
  /** Global index of the first sample, and the sample count. */
  start: number;
  len: number;
  hs: GPUBuffer;
  outs: GPUBuffer;
  active: GPUBuffer;
  info: GPUBuffer;
  /** `tile_still`: which tiles did not change in the step that made each copy of h. */
  still: GPUBuffer;
  /** `tile_queue` and `tile_dispatch`: the tiles to compute at each step and step_forward's indirect size. */
  queue: GPUBuffer;
  dispatch: GPUBuffer;
  bgStep: GPUBindGroup;
  bgQueue: GPUBindGroup;
  bgReadout: GPUBindGroup;
  /** Samples this window dispatches. */
  nActive: number;
  infoWords: Uint32Array;
}

export class WebGpuSession implements Session {
  readonly grid: GridShape;
  /** Steps per submission (`GpuSession::check_every`). */
  readonly checkEvery: number;
  /** With short rows packed end to end (`step_packed`, not with freeze): its cells per tile. */
  readonly packedTile: number | undefined;
  /**
   * Settled-tile skipping: a cell keeps its state when no hidden channel would move by more
   * than this. Undefined: every tile is computed every step.
   */
  readonly freeze: number | undefined;
  private readonly cells: number;
  private readonly tilesPerSample: number;
  private readonly foldMax: number;
  private readonly align: number;
  private readonly groups: Group[] = [];
  private readonly buffers: GPUBuffer[] = [];
  private readonly params: GPUBuffer;
  private readonly wpack: GPUBuffer;
  private readonly samples: GPUBuffer;
  private readonly samplesStaging: GPUBuffer;
  private readonly stats: GPUBuffer;
  private readonly statsStaging: GPUBuffer;
  private readonly conv: GPUBuffer;
  private readonly bgUpdate: GPUBindGroup;
  private readonly pStep: GPUComputePipeline;
  /** With freeze: the `queue_tiles` pipeline. */
  private readonly pQueue: GPUComputePipeline | undefined;
  /** The parameters of the last skipping step: other parameters make every tile unknown. */
  private freezeParams: Float32Array | undefined;
  private readonly pUpdate: GPUComputePipeline;
  private readonly pReadout: GPUComputePipeline;
  private readonly stepsTaken: Float64Array;
  private readonly computed: Float64Array;
  /** Host copy of the per-sample state written at the start of each call. */
  private readonly hostSamples: Uint32Array;
  /** What the synchronous getters return: read back at the end of every call. */
  private readonly outs: Uint8Array;
  private readonly hid: Float32Array;
  /** Errors of creating the buffers and pipelines (WebGPU reports them asynchronously). */
  private created: Promise<string | undefined> | undefined;
  private busy = false;
  private disposed = false;

  /** Uploads x ([batch][height][width][C_in]), sets h = 0 and every output to 0 (`GpuSession::new`). */
  constructor(
    private readonly ctx: WebGpuContext,
    private readonly spec: ModelSpec,
    grid: GridShape,
    x: Float32Array,
    { maxBytes, needBytes, freeze, maxGroupBytes }: WebGpuSessionOptions,
  ) {
    this.grid = checkGrid(spec, grid);
    if (freeze !== undefined && !(typeof freeze === "number" && Number.isFinite(freeze) && freeze >= 0)) {
      throw new InvalidInputError(`createSession.options.freeze: must be finite and >= 0, got ${String(freeze)}`);
    }
    this.freeze = freeze;
    const { batch, height, width } = this.grid;
    if (needBytes > maxBytes) {
      throw new ResourceLimitError(
        `createSession: a session of ${batch} x ${height} x ${width} cells with ${spec.cIn + spec.cH} channels needs ` +
          `${needBytes} bytes of GPU memory, over the limit of ${maxBytes}`,
      );
    }
    const cells = height * width;
    this.cells = cells;
    if (!(x instanceof Float32Array)) throw new InvalidInputError("createSession.x: must be a Float32Array");
    const want = batch * cells * spec.cIn;
    if (x.length !== want) throw new InvalidInputError(`createSession: x has ${x.length} values but batch x height x width x cIn = ${want}`);
    const bad = x.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new InvalidInputError(`createSession: x[${bad}] is ${x[bad]} (must be finite)`);
    // Everything the kernels index is a u32 float index below 2^31.
    if (batch > 2 ** 24) throw new ResourceLimitError(`createSession: WebGPU takes at most ${2 ** 24} samples per session, got ${batch}`);
    const limits = ctx.limits;
    const maxGroup = Math.min(maxGroupBytes ?? limits.maxBinding, limits.maxBinding);
    const perSample = Math.max(2 * cells * spec.cH * 4, cells * spec.cIn * 4);
    if (perSample > maxGroup) {
      throw new ResourceLimitError(
        `createSession: one sample of ${height} x ${width} cells needs ${perSample} bytes of GPU state in one buffer, ` +
          `over this GPU's binding limit of ${maxGroup}: use fewer cells or the CPU backend`,
      );
    }
    const groupLen = Math.min(Math.max(Math.floor(maxGroup / perSample), 1), batch);
    if (4 * SAMPLE_WORDS * batch > maxGroup) {
      throw new ResourceLimitError(
        `createSession: a batch of ${batch} samples needs ${4 * SAMPLE_WORDS * batch} bytes of per-sample state in one ` +
          `buffer, over this GPU's binding limit of ${maxGroup}: use at most ${Math.floor(maxGroup / (4 * SAMPLE_WORDS))} samples per session`,
      );
    }
    this.checkEvery = Math.max(1, Math.min(DEFAULT_CHECK_EVERY, Math.floor(maxGroup / (4 * STAT_WORDS * batch))));
    this.foldMax = limits.maxWorkgroupsPerDim;

    const tc = stepTile(spec, width, false, limits.maxWorkgroupStorage);
    const consts = stepConstants(spec, tc, WG);
    const tilesPerRow = Math.ceil(width / tc);
    this.tilesPerSample = tilesPerRow * height;
    // Pack short rows when it takes at least 10% fewer workgroups than tiling each row.
    let packedTile: number | undefined;
    if (spec.dims === 1 && freeze === undefined) {
      const ptc = stepTile(spec, batch * cells, true, limits.maxWorkgroupStorage);
      if (Math.ceil((batch * cells) / ptc) * 10 <= batch * this.tilesPerSample * 9) packedTile = ptc;
    }
    this.packedTile = packedTile;

    const device = ctx.device;
    device.pushErrorScope("out-of-memory");
    device.pushErrorScope("validation");
    // WebGPU reports these errors asynchronously: the first call awaits them (`created`).
    try {
      if (freeze !== undefined) {
        const fc = { ...consts, FREEZE: freeze };
        this.pStep = ctx.pipeline("step_forward", STEP_KINDS, fc);
        this.pQueue = ctx.pipeline("queue_tiles", QUEUE_KINDS, fc);
      } else {
        this.pStep =
          packedTile === undefined
            ? ctx.pipeline("step_forward", STEP_KINDS, consts)
            : ctx.pipeline("step_packed", STEP_KINDS, { ...stepConstants(spec, packedTile, WG), PACKED: 1 });
      }
      this.pUpdate = ctx.pipeline("sample_update", UPDATE_KINDS, consts);
      this.pReadout = ctx.pipeline("readout_outputs", READOUT_KINDS, consts);

      this.align = stride(SLOT_BYTES, limits.uniformAlign);
      const k = this.checkEvery;
      const buf = (label: string, bytes: number, usage: number) => this.keep(ctx.buffer(label, bytes, usage));
      this.params = buf("params", 4 * paramLayout(spec).total, STORAGE_USAGE);
      this.wpack = buf("packed weights", 4 * stepWeightsLen(spec), STORAGE_USAGE);
      this.samples = buf("sample states", 4 * SAMPLE_WORDS * batch, STORAGE_USAGE);
      this.samplesStaging = buf("sample states (readback)", 4 * SAMPLE_WORDS * batch, STAGING_USAGE);
      this.stats = buf("step stats", 4 * STAT_WORDS * k * batch, STORAGE_USAGE);
      this.statsStaging = buf("step stats (readback)", 4 * STAT_WORDS * k * batch, STAGING_USAGE);
      const slotRecs = Array.from({ length: k }, (_, i) => [i, 0, 0, 0]);
      const slots = this.keep(ctx.bufferInit("step slots", records(slotRecs, this.align), UNIFORM_USAGE));
      this.conv = buf("converge info", 16, UNIFORM_USAGE);
      const slot = { buffer: slots, size: SLOT_BYTES };
      this.bgUpdate = this.bindGroup("sample_update", UPDATE_KINDS, [, , , , this.samples, this.stats, , , slot, this.conv]);

      for (let start = 0; start < batch; start += groupLen) {
        const len = Math.min(groupLen, batch - start);
        const gcells = len * cells;
        const xg = this.keep(ctx.bufferInit("inputs x", x.subarray(start * cells * spec.cIn, (start + len) * cells * spec.cIn), STORAGE_USAGE));
        const infoWords = new Uint32Array([width, height, cells, tilesPerRow, this.tilesPerSample, 0, start, len, gcells * spec.cH, 0, 0, 0]);
        const tiles = len * this.tilesPerSample;
        // Per step parity: x (counted by queue_tiles), the rows y that keep x within the
        // per-dimension cap for every tile of the group, z.
        const rows = Math.max(Math.ceil(tiles / this.foldMax), 1);
        // The group's own buffers (Group's fields of the same names).
        const own = {
          hs: buf("hidden states", 2 * gcells * spec.cH * 4, STORAGE_USAGE),
          outs: buf("outputs", gcells * 4, STORAGE_USAGE),
          active: buf("active samples", len * 4, STORAGE_USAGE),
          info: this.keep(ctx.bufferInit("group info", infoWords, UNIFORM_USAGE)),
          still: buf("still tiles", 2 * 4 * tiles, STORAGE_USAGE),
          queue: buf("tile queue", 4 * (QUEUE_AT + tiles), STORAGE_USAGE),
          dispatch: this.keep(
            ctx.bufferInit("tile dispatch size", new Uint32Array([0, rows, 1, 0, 0, rows, 1, 0]), STORAGE_USAGE | BufferUsage.INDIRECT),
          ),
        };
        const { hs, outs, active, info, still, queue, dispatch } = own;
        const table: (Res | undefined)[] = [this.params, xg, hs, outs, this.samples, this.stats, active, info, slot, this.conv, this.wpack, still, queue, dispatch];
        this.groups.push({
          start,
          len,
          ...own,
          bgStep: this.bindGroup("step_forward", STEP_KINDS, table),
          bgQueue: this.bindGroup("queue_tiles", QUEUE_KINDS, table),
          bgReadout: this.bindGroup("readout_outputs", READOUT_KINDS, table),
          nActive: 0,
          infoWords,
        });
      }
    } catch (e) {
      void device.popErrorScope();
      void device.popErrorScope();
      for (const buffer of this.buffers) buffer.destroy();
      throw e;
    }
    const validation = device.popErrorScope();
    const memory = device.popErrorScope();
    this.created = Promise.all([validation, memory]).then(([v, m]) => (m ?? v)?.message);

    this.stepsTaken = new Float64Array(batch);
    this.computed = new Float64Array(batch);
    this.hostSamples = new Uint32Array(SAMPLE_WORDS * batch);
    this.outs = new Uint8Array(batch * cells);
    this.hid = new Float32Array(batch * cells * spec.cH);
  }

  /** Groups the batch was split into (1 unless the batch is larger than one buffer binding). */
  groupCount(): number {
    return this.groups.length;
  }

  /**
   * Runs `steps` steps on the samples marked active (all when `active` is absent) and returns
   * each step's per-sample stats, `[step][sample]` (inactive: zeros) (`GpuSession::step`).
   */
  async step(params: Float32Array, steps: number, options: { active?: Uint8Array; signal?: AbortSignal } = {}): Promise<StepResult> {
    const batch = this.grid.batch;
    if (!Number.isSafeInteger(steps) || steps < 0) throw new InvalidInputError(`session.step: steps must be a non-negative integer, got ${steps}`);
    const active = options.active;
    if (active !== undefined && (!(active instanceof Uint8Array) || active.length !== batch)) {
      throw new InvalidInputError(`session.step: active must be a Uint8Array with one entry per sample (${batch})`);
    }
    return this.run("session.step", options.signal, async () => {
      this.uploadParams(params, "session.step");
      this.forgetStillTiles(params);
      const live = Array.from({ length: batch }, (_, b) => active === undefined || active[b] !== 0);
      this.uploadSamples(
        (b) => live[b]!,
        () => U32_MAX,
      );
      this.writeConv(0, 0, 0);
      const maxDelta = new Float32Array(steps * batch);
      const changed = new Float64Array(steps * batch);
      if (this.compact(live) === 0) return { maxDelta, changed };
      let done = 0;
      const counted = new Float64Array(batch);
      let failure: unknown;
      try {
        while (done < steps) {
          if (options.signal?.aborted) throw new AbortError("session.step: the operation was aborted", { cause: options.signal.reason });
          const m = Math.min(this.checkEvery, steps - done);
          const enc = this.ctx.device.createCommandEncoder();
          this.recordSteps(enc, m);
          const bytes = 4 * STAT_WORDS * m * batch;
          enc.copyBufferToBuffer(this.stats, 0, this.statsStaging, 0, bytes);
          this.ctx.device.queue.submit([enc.finish()]);
          const [raw] = await this.ctx.readMapped("session.step", [{ buffer: this.statsStaging, bytes }]);
          const w = new Uint32Array(raw!);
          const f = new Float32Array(raw!);
          for (let i = 0; i < m; i++) {
            for (let b = 0; b < batch; b++) {
              const q = STAT_WORDS * (i * batch + b);
              maxDelta[(done + i) * batch + b] = f[q]!;
              changed[(done + i) * batch + b] = w[q + 1]!;
              counted[b] = counted[b]! + w[q + 2]!;
            }
          }
          done += m;
        }
      } catch (e) {
        failure = e;
      }
      for (let b = 0; b < batch; b++) {
        if (live[b]) {
          this.stepsTaken[b] = this.stepsTaken[b]! + done;
          this.countComputed(b, done, counted[b]!);
        }
      }
      if (failure !== undefined) throw failure;
      return { maxDelta, changed };
    });
  }

  /**
   * Steps every unsettled sample until it settles (outputs unchanged for `patience` steps and
   * the last max |h' - h| below `tol`) or reaches `maxSteps`, exactly as the CPU backend
   * decides it: sample_update decides, the host only reads the states between windows
   * (`GpuSession::converge`). At most 2^32 - 1 steps per call and sample.
   */
  async converge(params: Float32Array, options: ConvergeOptions, signal?: AbortSignal): Promise<ConvergeResult> {
    const { patience, tol, maxSteps } = checkConverge(options);
    const batch = this.grid.batch;
    return this.run("session.converge", signal, async () => {
      this.uploadParams(params, "session.converge");
      this.forgetStillTiles(params);
      const live = Array.from({ length: batch }, (_, b) => this.stepsTaken[b]! < maxSteps);
      const steps0 = this.stepsTaken.slice();
      this.uploadSamples(
        (b) => live[b]!,
        (b) => Math.min(Math.max(maxSteps - steps0[b]!, 0), U32_MAX),
      );
      this.writeConv(1, patience, tol);
      this.recordRefreshAndSubmit();
      const bytes = 4 * SAMPLE_WORDS * batch;
      let state = this.hostSamples.slice();
      let failure: unknown;
      try {
        while (this.compact(live) > 0) {
          if (signal?.aborted) throw new AbortError("session.converge: the operation was aborted", { cause: signal.reason });
          const enc = this.ctx.device.createCommandEncoder();
          this.recordSteps(enc, this.checkEvery);
          enc.copyBufferToBuffer(this.samples, 0, this.samplesStaging, 0, bytes);
          this.ctx.device.queue.submit([enc.finish()]);
          const [raw] = await this.ctx.readMapped("session.converge", [{ buffer: this.samplesStaging, bytes }]);
          state = new Uint32Array(raw!);
          for (let b = 0; b < batch; b++) live[b] = state[b * SAMPLE_WORDS] !== 0;
        }
      } catch (e) {
        failure = e;
      }
      const bits = new Float32Array(state.buffer, state.byteOffset, state.length);
      const result: ConvergeResult = {
        steps: new Float64Array(batch),
        converged: new Uint8Array(batch),
        lastMaxDelta: new Float32Array(batch),
      };
      for (let b = 0; b < batch; b++) {
        const at = b * SAMPLE_WORDS;
        const taken = state[at + 2]!;
        this.stepsTaken[b] = steps0[b]! + taken;
        this.countComputed(b, taken, state[at + 8]! + state[at + 9]! * 2 ** 32);
        result.steps[b] = this.stepsTaken[b]!;
        result.converged[b] = state[at + 5]! !== 0 ? 1 : 0;
        result.lastMaxDelta[b] = bits[at + 6]!;
      }
      if (failure !== undefined) throw failure;
      return result;
    });
  }

  /** Argmax output per cell, [batch][height][width], as read back at the end of the last call. */
  outputs(): Uint8Array {
    return this.copyOf("session.outputs", this.outs);
  }

  /** Hidden state, [batch][height][width][cH], as read back at the end of the last call. */
  hidden(): Float32Array {
    return this.copyOf("session.hidden", this.hid);
  }

  /**
   * Not available: the WGSL has no entry point writing logits (readout_outputs writes only the
   * argmax), and the readout is not written a second time in TypeScript.
   */
  logits(_params: Float32Array): Float32Array {
    throw new InvalidInputError("session.logits: logits are not available on WebGPU in the browser (outputs() gives the argmax per cell)");
  }

  steps(): Float64Array {
    return this.copyOf("session.steps", this.stepsTaken);
  }

  /** Cell updates each sample has computed: steps x cells, or with `freeze` the cells of the tiles computed. */
  cellsComputed(): Float64Array {
    return this.copyOf("session.cellsComputed", this.computed);
  }

  dispose(): void {
    if (this.disposed) throw new InvalidInputError("session.dispose: this session was already disposed");
    if (this.busy) throw new InvalidInputError("session.dispose: a step or converge call is still running; await it first");
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
  }

  // ---- Internals.

  private keep(b: GPUBuffer): GPUBuffer {
    this.buffers.push(b);
    return b;
  }

  private checkOpen(what: string): void {
    if (this.disposed) throw new InvalidInputError(`${what}: this session was disposed`);
  }

  /** What a synchronous getter (`what`) returns: a copy of `array`, refused once disposed. */
  private copyOf<A extends Uint8Array | Float32Array | Float64Array>(what: string, array: A): A {
    this.checkOpen(what);
    return array.slice() as A;
  }

  /** One call at a time: runs `body`, then reads back what the synchronous getters return. */
  private async run<T>(what: string, signal: AbortSignal | undefined, body: () => Promise<T>): Promise<T> {
    this.checkOpen(what);
    if (this.busy) throw new InvalidInputError(`${what}: another step or converge call on this session is still running; await it first`);
    if (signal?.aborted) throw new AbortError(`${what}: aborted before it started`, { cause: signal.reason });
    this.busy = true;
    try {
      if (this.created) {
        const err = await this.created;
        this.created = undefined;
        if (err !== undefined) throw new WebGpuError(`creating a WebGPU session: ${err}`);
      }
      let result: T;
      try {
        result = await body();
      } finally {
        // The states reached, also when the call failed part way (as the native sessions keep them).
        await this.readBack(what).catch(() => undefined);
      }
      return result;
    } finally {
      this.busy = false;
    }
  }

  /**
   * With freeze on, marks every tile unknown (to be computed) when the parameters are not those
   * of the last skipping step: what a tile computed with other parameters says nothing about
   * these (`forget_still_tiles`).
   */
  private forgetStillTiles(params: Float32Array): void {
    if (this.freeze === undefined) return;
    const last = this.freezeParams;
    if (last !== undefined && last.length === params.length && last.every((v, i) => v === params[i])) return;
    const enc = this.ctx.device.createCommandEncoder();
    for (const g of this.groups) enc.clearBuffer(g.still);
    this.ctx.device.queue.submit([enc.finish()]);
    this.freezeParams = params.slice();
  }

  /** Adds a call's cell updates: counted by the kernel with freeze on, else steps x cells (`count_computed`). */
  private countComputed(b: number, steps: number, counted: number): void {
    this.computed[b] = this.computed[b]! + (this.freeze !== undefined ? counted : steps * this.cells);
  }

  private uploadParams(params: Float32Array, where: string): void {
    checkParams(this.spec, params, where);
    const q = this.ctx.device.queue;
    q.writeBuffer(this.params, 0, params);
    q.writeBuffer(this.wpack, 0, packStepWeights(this.spec, params));
  }

  /** Writes each sample's state for a call: live flag, clock parity, budget (`upload_samples`). */
  private uploadSamples(live: (b: number) => boolean, budget: (b: number) => number): void {
    this.hostSamples.fill(0);
    for (let b = 0; b < this.grid.batch; b++) {
      const at = b * SAMPLE_WORDS;
      this.hostSamples[at] = live(b) ? 1 : 0;
      this.hostSamples[at + 1] = this.stepsTaken[b]! % 2;
      this.hostSamples[at + 4] = budget(b);
    }
    this.ctx.device.queue.writeBuffer(this.samples, 0, this.hostSamples);
  }

  /** Points each group's dispatch at its live samples; returns how many there are (`compact`). */
  private compact(live: readonly boolean[]): number {
    let total = 0;
    const q = this.ctx.device.queue;
    for (const g of this.groups) {
      const list: number[] = [];
      for (let i = 0; i < g.len; i++) if (live[g.start + i]) list.push(i);
      g.nActive = list.length;
      total += list.length;
      if (list.length > 0) q.writeBuffer(g.active, 0, new Uint32Array(list));
      if (g.infoWords[5] !== g.nActive) {
        g.infoWords[5] = g.nActive;
        q.writeBuffer(g.info, 20, new Uint32Array([g.nActive]));
      }
    }
    return total;
  }

  /** ConvInfo: batch, mode (0 plain steps, 1 converge), patience, tol (`write_conv`). */
  private writeConv(mode: number, patience: number, tol: number): void {
    const w = new Uint32Array(4);
    w[0] = this.grid.batch;
    w[1] = mode;
    w[2] = patience;
    new Float32Array(w.buffer)[3] = tol;
    this.ctx.device.queue.writeBuffer(this.conv, 0, w);
  }

  /** Records `m` steps into `enc` (stats rows 0 .. m, cleared first) (`record_steps`). */
  private recordSteps(enc: GPUCommandEncoder, m: number): void {
    const batch = this.grid.batch;
    enc.clearBuffer(this.stats, 0, 4 * STAT_WORDS * m * batch);
    if (this.pQueue) {
      // The tile counts and dispatch widths of the window's first two steps (queue_tiles clears each next).
      for (const g of this.groups) {
        enc.clearBuffer(g.queue, 16, 8);
        enc.clearBuffer(g.dispatch, 0, 4);
        enc.clearBuffer(g.dispatch, 16, 4);
      }
    }
    const pass = enc.beginComputePass({ label: "sead steps" });
    const [ux, uy] = fold(Math.ceil(batch / WG_FLAT), this.foldMax);
    for (let i = 0; i < m; i++) {
      const off = [i * this.align];
      if (this.pQueue) {
        // Settled-tile skipping: list the tiles to compute, then compute those only.
        for (const g of this.groups) {
          if (g.nActive === 0) continue;
          pass.setBindGroup(0, g.bgQueue, off);
          pass.setPipeline(this.pQueue);
          const [qx, qy] = fold(Math.ceil((g.nActive * this.tilesPerSample) / WG_FLAT), this.foldMax);
          pass.dispatchWorkgroups(qx, qy, 1);
          pass.setPipeline(this.pStep);
          pass.setBindGroup(0, g.bgStep, off);
          pass.dispatchWorkgroupsIndirect(g.dispatch, 16 * (i & 1)); // this step parity's size
        }
      } else {
        pass.setPipeline(this.pStep);
        for (const g of this.groups) {
          if (g.nActive === 0) continue;
          pass.setBindGroup(0, g.bgStep, off);
          const tiles = this.packedTile === undefined ? g.nActive * this.tilesPerSample : Math.ceil((g.nActive * this.cells) / this.packedTile);
          const [x, y] = fold(tiles, this.foldMax);
          pass.dispatchWorkgroups(x, y, 1);
        }
      }
      pass.setPipeline(this.pUpdate);
      pass.setBindGroup(0, this.bgUpdate, off);
      pass.dispatchWorkgroups(ux, uy, 1);
    }
    pass.end();
  }

  /** Recomputes every output from the current hidden state (`record_refresh_and_submit`). */
  private recordRefreshAndSubmit(): void {
    const enc = this.ctx.device.createCommandEncoder();
    const pass = enc.beginComputePass({ label: "sead readout" });
    pass.setPipeline(this.pReadout);
    for (const g of this.groups) {
      pass.setBindGroup(0, g.bgReadout);
      const [x, y] = fold(Math.ceil((g.len * this.cells) / WG_FLAT), this.foldMax);
      pass.dispatchWorkgroups(x, y, 1);
    }
    pass.end();
    this.ctx.device.queue.submit([enc.finish()]);
  }

  /**
   * Reads the outputs and each sample's current copy of h into the host copies (`outputs`,
   * `hidden`): one submission, one staging buffer per group and kind.
   */
  private async readBack(what: string): Promise<void> {
    const ch = this.spec.cH;
    const per = this.cells * ch * 4;
    const enc = this.ctx.device.createCommandEncoder();
    const staging: { buffer: GPUBuffer; bytes: number }[] = [];
    for (const g of this.groups) {
      const outBytes = g.len * this.cells * 4;
      const so = this.ctx.buffer("outputs (readback)", outBytes, STAGING_USAGE);
      enc.copyBufferToBuffer(g.outs, 0, so, 0, outBytes);
      const sh = this.ctx.buffer("hidden (readback)", per * g.len, STAGING_USAGE);
      const half = per * g.len;
      for (let i = 0; i < g.len; i++) {
        const par = this.stepsTaken[g.start + i]! % 2;
        enc.copyBufferToBuffer(g.hs, par * half + i * per, sh, i * per, per);
      }
      staging.push({ buffer: so, bytes: outBytes }, { buffer: sh, bytes: per * g.len });
    }
    this.ctx.device.queue.submit([enc.finish()]);
    try {
      const raw = await this.ctx.readMapped(`${what} (reading back outputs and hidden state)`, staging);
      this.groups.forEach((g, k) => {
        const outs = new Uint32Array(raw[2 * k]!);
        const at = g.start * this.cells;
        for (let i = 0; i < outs.length; i++) this.outs[at + i] = outs[i]!;
        this.hid.set(new Float32Array(raw[2 * k + 1]!), at * ch);
      });
    } finally {
      for (const s of staging) s.buffer.destroy();
    }
  }

  private bindGroup(label: string, kinds: readonly Bind[], table: readonly (Res | undefined)[]): GPUBindGroup {
    const entries = [];
    for (let i = 0; i < kinds.length; i++) {
      if (kinds[i] === "unused") continue;
      const res = table[i];
      if (res === undefined) throw new SeadError(`${label}: binding ${i} has no buffer (a bug in sead's WebGPU host)`);
      entries.push({ binding: i, resource: "buffer" in res ? { buffer: res.buffer, offset: 0, size: res.size } : { buffer: res } });
    }
    return this.ctx.device.createBindGroup({ label, layout: this.ctx.layout(kinds), entries });
  }
}

/** Checks a grid against the spec (`Grid::validate`). */
function checkGrid(spec: ModelSpec, grid: GridShape): GridShape {
  if (typeof grid !== "object" || grid === null) throw new InvalidInputError("createSession.grid: must be an object { batch, height, width }");
  for (const name of ["batch", "height", "width"] as const) {
    const v = grid[name];
    if (!Number.isSafeInteger(v) || v < 1) throw new InvalidInputError(`createSession.grid.${name}: must be an integer of at least 1, got ${String(v)}`);
  }
  if (spec.dims === 1 && grid.height !== 1) throw new InvalidInputError(`createSession.grid.height: must be 1 for a 1D model, got ${grid.height}`);
  if (!Number.isSafeInteger(grid.batch * grid.height * grid.width)) throw new InvalidInputError("createSession.grid: batch x height x width overflows");
  return { batch: grid.batch, height: grid.height, width: grid.width };
}

/** Checks converge's options (`ConvergeOptions::validate`, and the binding's integer checks). */
function checkConverge(o: ConvergeOptions): ConvergeOptions {
  if (typeof o !== "object" || o === null) throw new InvalidInputError("session.converge: options must be an object { patience, tol, maxSteps }");
  if (!Number.isInteger(o.patience) || o.patience < 1 || o.patience > U32_MAX) {
    throw new InvalidInputError(`session.converge: patience must be an integer of at least 1, got ${String(o.patience)}`);
  }
  if (!(Number.isFinite(o.tol) && o.tol > 0)) throw new InvalidInputError(`session.converge: tol must be finite and > 0, got ${String(o.tol)}`);
  if (!Number.isSafeInteger(o.maxSteps) || o.maxSteps < 0) {
    throw new InvalidInputError(`session.converge: maxSteps must be a non-negative integer, got ${String(o.maxSteps)}`);
  }
  return { patience: o.patience, tol: o.tol, maxSteps: o.maxSteps };
}
