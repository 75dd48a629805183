// Where does a quantized adder's state keep moving? Step a random L-digit sum well past the
// carry time and report cells whose hidden state differs between consecutive steps.
import { createBackend } from "../src/backend/index.js";
import { loadCheckpoint } from "../src/model/checkpoint.js";
import { taskFromInfo } from "../src/tasks/registry.js";
import { Rng } from "../src/rng.js";
import "../src/tasks/index.js";
async function main(): Promise<void> {
const [path, Ls] = process.argv.slice(2);
const L = Number(Ls ?? 100);
const { model } = loadCheckpoint(path!);
const task = taskFromInfo(model.task);
const backend = createBackend({ backend: "cpu" });
const rng = new Rng(7);
const inputs = Array.from({ length: 8 }, () => task.sample(rng, L));
const enc = task.encode(inputs);
const s = backend.createSession(model.spec, { batch: enc.batch, height: enc.height, width: enc.width }, enc.x);
await s.step(model.params, 3 * L + 50);
const cH = model.spec.cH;
const hist: Float32Array[] = [];
for (let k = 0; k < 6; k++) { await s.step(model.params, 1); hist.push(s.hidden()); }
for (let b = 0; b < enc.batch; b++) {
  const moving: number[] = [];
  for (let c = 0; c < enc.width; c++) {
    const o = (b * enc.width + c) * cH;
    let diff = false;
    for (let k = 1; k < hist.length; k++) for (let j = 0; j < cH; j++) if (hist[k]![o + j] !== hist[k - 1]![o + j]) diff = true;
    if (diff) moving.push(c);
  }
  const period2 = moving.every((c) => { const o = (b * enc.width + c) * cH; for (let j = 0; j < cH; j++) if (hist[0]![o + j] !== hist[2]![o + j]) return false; return true; });
  console.log(`sample ${b}: ${moving.length} moving cells${moving.length ? ` e.g. ${moving.slice(0, 12).join(",")}` : ""}; period 2: ${period2}`);
}

}
void main();
