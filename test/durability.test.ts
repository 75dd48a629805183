/**
 * Checkpoints survive kills and corruption:
 *  - writers killed with SIGKILL at random moments leave either no file or one complete
 *    checkpoint from the sequence they wrote, never a partial or mixed one;
 *  - every kind of damaged file (truncated, flipped bits anywhere, wrong version or format,
 *    empty, a folder, missing) is refused with a CheckpointError naming the file and the problem;
 *  - a model or checkpoint is refused on a task it was not trained for.
 *
 * Reduced counts by default; SEAD_FULL=1 runs the full ones.
 */
import test from "ava";
import { spawn } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createBackend } from "../src/backend/index.js";
import { CheckpointError, InvalidInputError } from "../src/errors.js";
import { STALE_TEMP_MS } from "../src/io/atomic.js";
import { loadCheckpoint, parseCheckpoint, saveCheckpoint } from "../src/model/checkpoint.js";
import { Model } from "../src/model/model.js";
import { Rng } from "../src/rng.js";
import { solve } from "../src/run.js";
import { additionTask } from "../src/tasks/index.js";
import { Trainer, type TrainConfigInput } from "../src/train/trainer.js";
import { tinyConfig } from "./helpers.js";

const FULL = process.env["SEAD_FULL"] === "1";
const ROOT = join(__dirname, "..");
const WRITER = join(__dirname, "children", "checkpoint-writer.js");
const dir = mkdtempSync(join(tmpdir(), "sead-durability-"));

/** The params of save k in children/checkpoint-writer.js (same formula). */
function paramsFor(k: number, n: number): Float32Array {
  const p = new Float32Array(n);
  for (let i = 0; i < n; i++) p[i] = ((k * 7919 + i) % 2001) - 1000;
  return p;
}

const temps = (folder: string) => readdirSync(folder).filter((f) => f.endsWith(".tmp"));

interface Kill {
  /** The last save the child reported finished (0: none). */
  lastSaved: number;
  /** Whether the child had printed "ready" (loaded sead) before it died. */
  ready: boolean;
}

/**
 * Starts a writer and SIGKILLs it: `early` kills count from the spawn (so some land before the
 * first save, even before sead is loaded), the others from its "ready" (so they land in the
 * first ~10 saves: mostly inside writeFileAtomic, whose fsync takes most of each save).
 */
function killWriter(path: string, early: boolean, delayMs: number): Promise<Kill> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WRITER, path], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    let armed = false;
    const arm = () => {
      armed = true;
      setTimeout(() => child.kill("SIGKILL"), delayMs);
    };
    if (early) arm();
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (!armed && out.includes("ready\n")) arm();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (signal !== "SIGKILL") return reject(new Error(`writer exited with ${code}/${signal} before the kill`));
      const saved = [...out.matchAll(/^saved (\d+)$/gm)].map((m) => Number(m[1]));
      resolve({ lastSaved: saved.at(-1) ?? 0, ready: out.includes("ready\n") });
    });
  });
}

// Serial: ava runs these first, alone, so that the other tests' long synchronous loops do not
// stall the timers that send the kills.
test.serial("a checkpoint writer killed at any moment leaves no file or a complete checkpoint it wrote", async (t) => {
  const kills = FULL ? 2000 : 200;
  t.timeout(FULL ? 30 * 60_000 : 5 * 60_000); // about 0.15-0.5 s a kill on 2 busy cores
  const lanes = 4;
  const seed = 20240601;
  let next = 0;
  const stats = { absent: 0, loaded: 0, midWrite: 0, beforeReady: 0 };
  const started = Date.now();
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      const rng = new Rng(seed + lane);
      const folder = join(dir, `lane${lane}`);
      mkdirSync(folder);
      const path = join(folder, "model.json.ckpt");
      while (next < kills) {
        next++;
        // Start each writer with no file, so "absent" means no save completed; the temporary
        // files earlier writers left stay, to show they do not confuse a later writer or reader.
        rmSync(path, { force: true });
        const tempsBefore = temps(folder).length;
        const early = rng.float() < 0.15;
        const k = await killWriter(path, early, early ? rng.int(300) : rng.int(150));
        if (!k.ready) stats.beforeReady++;
        if (temps(folder).length > tempsBefore) stats.midWrite++;
        const where = `lane ${lane}, last reported save ${k.lastSaved}`;
        if (!existsSync(path)) {
          // The rename makes a save visible and comes before its "saved" line.
          t.is(k.lastSaved, 0, `${where}: a save reported done has no file`);
          stats.absent++;
          continue;
        }
        const c = loadCheckpoint(path);
        const counter = c.training["counter"] as number;
        // The file is the last reported save, or the next one if the kill fell between its
        // rename and its "saved" line.
        t.true(counter === k.lastSaved || counter === k.lastSaved + 1, `${where}: file holds save ${counter}`);
        const want = paramsFor(counter, c.model.paramCount);
        t.true(
          c.model.params.every((v, i) => v === want[i]),
          `${where}: the params of save ${counter} are not the ones it wrote`,
        );
        stats.loaded++;
      }
    }),
  );
  t.is(stats.absent + stats.loaded, kills);
  t.log(
    `${kills} kills in ${((Date.now() - started) / 1000).toFixed(1)} s (${lanes} at a time, seed ${seed}): ` +
      `${stats.absent} before the first save (${stats.beforeReady} before sead loaded), ${stats.loaded} complete checkpoints, ` +
      `${stats.midWrite} left a temporary file (killed mid-write)`,
  );
  t.true(stats.absent > 0 && stats.loaded > 0 && stats.midWrite > 0, "the kills span before the first save to mid-write");

  // Leftover temporary files: readers never see them; once they are stale (writer dead, file
  // older than STALE_TEMP_MS) the next save of the same target removes them.
  const model = Model.init({ dims: 1, cIn: 2, cH: 4, features: 8, cOut: 2 }, 1);
  let left = 0;
  for (let lane = 0; lane < lanes; lane++) {
    const folder = join(dir, `lane${lane}`);
    const old = (Date.now() - STALE_TEMP_MS - 60_000) / 1000;
    for (const f of temps(folder)) utimesSync(join(folder, f), old, old);
    left += temps(folder).length;
    saveCheckpoint(join(folder, "model.json.ckpt"), model);
    for (const f of temps(folder)) {
      // Only one whose pid was taken by a live process since may stay.
      const pid = Number(f.split(".").at(-4));
      t.notThrows(() => process.kill(pid, 0), `${f} of a dead writer was not removed`);
    }
  }
  t.is(left, stats.midWrite, "fresh temporary files are kept (their writer may be alive where we cannot see it)");
  t.log(`${left} temporary files left by killed writers were removed by the next save once stale`);
});

// --- damaged files ---------------------------------------------------------------------------

const tinyParity = tinyConfig({ name: "parity" }, { model: { cH: 4, features: 8 }, seed: 2, steps: 3, batch: 4, lengths: { min: 2, max: 6 }, unroll: { min: 4, max: 6 } });

/** A trainer's checkpoint (model, provenance and resume state): the richest kind of file. */
async function trainerCheckpoint(name: string, config: TrainConfigInput = tinyParity): Promise<string> {
  const path = join(dir, name);
  await new Trainer(config, createBackend({ backend: "cpu" }), { checkpointPath: path }).run();
  return path;
}

/** Runs `load`, which must throw a CheckpointError naming `source`; returns its message. */
function refusal(t: import("ava").ExecutionContext, load: () => unknown, source: string, what: string): string {
  try {
    load();
  } catch (e) {
    // t.fail only: the flip test calls this tens of thousands of times.
    if (!(e instanceof CheckpointError)) t.fail(`${what}: threw ${String(e)}`);
    const msg = (e as Error).message;
    if (!msg.includes(source)) t.fail(`${what}: message does not name the file: ${msg}`);
    return msg;
  }
  t.fail(`${what}: was loaded`);
  return "";
}

test("truncated, empty, foreign, future, missing and folder checkpoints are refused, naming the file and the problem", async (t) => {
  const path = await trainerCheckpoint("ref.json.ckpt");
  const text = readFileSync(path, "utf8");
  t.truthy(loadCheckpoint(path).resume);

  // Every cut point: the last byte is a newline, so only a cut before the final "}" damages it.
  for (let cut = 1; cut < text.length - 1; cut++) {
    const msg = refusal(t, () => parseCheckpoint(text.slice(0, cut), "cut.json"), "cut.json", `cut at ${cut}`);
    if (!/cut\.json is not a valid checkpoint: not valid JSON, it is truncated/.test(msg)) t.fail(`cut at ${cut}: ${msg}`);
  }
  t.log(`${text.length - 2} cut points of a ${text.length}-byte checkpoint refused as truncated`);
  // And from disk, at a few of them.
  for (const frac of [0.1, 0.5, 0.99]) {
    const p = join(dir, `cut-${frac}.json`);
    writeFileSync(p, text.slice(0, Math.floor(text.length * frac)));
    t.regex(refusal(t, () => loadCheckpoint(p), p, `cut ${frac}`), /not valid JSON, it is truncated/);
  }

  const doc = JSON.parse(text) as Record<string, unknown>;
  const cases: [string, string, RegExp][] = [
    ["future.json", JSON.stringify({ ...doc, version: 2 }), /future\.json has checkpoint version 2; this sead reads version 1/],
    ["old.json", JSON.stringify({ ...doc, version: 0 }), /old\.json has checkpoint version 0/],
    ["foreign.json", JSON.stringify({ ...doc, format: "other-checkpoint" }), /foreign\.json is not a sead checkpoint/],
    ["empty.json", "", /empty\.json is not a valid checkpoint: not valid JSON \(the file is empty\)/],
    ["blank.json", "\n \n", /blank\.json is not a valid checkpoint: not valid JSON \(the file is empty\)/],
  ];
  for (const [name, content, re] of cases) {
    const p = join(dir, name);
    writeFileSync(p, content);
    t.regex(refusal(t, () => loadCheckpoint(p), p, name), re);
  }
  const folder = join(dir, "folder.json");
  mkdirSync(folder);
  t.regex(refusal(t, () => loadCheckpoint(folder), folder, "folder"), /cannot read checkpoint .*folder\.json: it is a folder, not a file/);
  const missing = join(dir, "missing.json");
  t.regex(refusal(t, () => loadCheckpoint(missing), missing, "missing"), /cannot read checkpoint .*missing\.json: it does not exist/);
});

/** What a refusal says, by the phrase that names the problem. */
const PROBLEMS: [string, RegExp][] = [
  ["truncated", /not valid JSON, it is truncated/],
  ["JSON syntax", /not valid JSON \(.*\); the file was altered or corrupted/],
  ["format", /is not a sead checkpoint/],
  ["version", /has checkpoint version/],
  ["params sha256", /params: data does not match its sha256/],
  ["params base64", /params: data is not valid base64/],
  ["params count", /params: holds \d+ bytes of data but says \d+ float32 values/],
  ["spec vs params", /params has \d+ values but this spec needs \d+/],
  ["schema", /is not a valid checkpoint: /],
  ["document checksum", /does not match its checksum: the file was altered or corrupted/],
];

test("a flipped bit anywhere in a checkpoint is refused: in the params data, the JSON syntax or any field", async (t) => {
  const path = await trainerCheckpoint("flip.json.ckpt");
  const bytes = readFileSync(path);
  const dataStart = bytes.indexOf(`"data": "`) + `"data": "`.length; // the first blob is the params
  const dataEnd = bytes.indexOf(`"`, dataStart);
  const why = new Map<string, number>();
  let flips = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const b = Buffer.from(bytes);
      b[i]! ^= 1 << bit;
      const what = `byte ${i} bit ${bit}`;
      // Decoded as loadCheckpoint does (invalid UTF-8 becomes U+FFFD).
      const msg = refusal(t, () => parseCheckpoint(b.toString("utf8"), "flip.json"), "flip.json", what);
      const inData = i >= dataStart && i < dataEnd;
      const kind = PROBLEMS.find(([, re]) => re.test(msg))?.[0];
      // In the params data the blob's own checks name it, or a character that ends the JSON
      // string is a syntax error. Elsewhere: the syntax, a field's schema, a consistency check
      // or, for a change nothing else notices, the document checksum.
      const ok = inData ? kind === "params sha256" || kind === "params base64" || kind === "JSON syntax" : kind !== undefined;
      if (!ok) t.fail(`${what}${inData ? " (params data)" : ""}: ${msg}`);
      const key = `${inData ? "params data" : "elsewhere"}: ${kind}`;
      why.set(key, (why.get(key) ?? 0) + 1);
      flips++;
    }
  }
  t.log(`${flips} single-bit flips of a ${bytes.length}-byte checkpoint, all refused:`);
  for (const [k, n] of [...why].sort((a, b) => b[1] - a[1])) t.log(`  ${n}  ${k}`);
  // The same from disk, for a flip that only the document checksum catches (a step count).
  const text = bytes.toString("utf8");
  const at = text.indexOf(`"step": 3`) + `"step": `.length;
  const p = join(dir, "flipped-step.json");
  writeFileSync(p, text.slice(0, at) + "2" + text.slice(at + 1));
  t.regex(refusal(t, () => loadCheckpoint(p), p, "step"), /does not match its checksum: the file was altered or corrupted/);
});

test("a model is refused on a task it was not trained for: when solving, resuming, and in the CLI", async (t) => {
  const path = await trainerCheckpoint("parity.json.ckpt");
  const ckpt = loadCheckpoint(path);
  const backend = createBackend({ backend: "cpu" });
  await t.throwsAsync(solve(backend, ckpt.model, additionTask({ base: 2 }), [{ a: "1", b: "1" }]), {
    instanceOf: InvalidInputError,
    message: /trained for \{"name":"parity"\}, not for \{"name":"addition","base":2\}/,
  });
  // The library gets the loaded contents, not the path: the message names the problem only.
  t.throws(() => new Trainer({ ...tinyParity, task: { name: "elementary", rule: 110, boundary: "periodic" } }, backend, {}, ckpt), {
    instanceOf: CheckpointError,
    message: /cannot resume: the checkpoint was written with a different training config/,
  });
  // The command names the file (the built CLI, as a user runs it).
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "dist", "src", "cli", "main.js"), "add", "1", "1", "--model", path], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (code) => resolve({ code, stderr }));
  });
  t.is(r.code, 2);
  t.regex(r.stderr, /parity\.json\.ckpt was trained for parity, not for addition-base2/);
});
