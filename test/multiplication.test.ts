/**
 * Binary multiplication on a 2D grid: the layout (one-hot bits of a along columns and of b
 * along rows), the targets (the product on the left column and bottom row; with "all", every
 * cell's bit of its row's running sum), decoding, the adversarial cases and bad input, all
 * against BigInt.
 */
import test, { type ExecutionContext } from "ava";
import { createBackend } from "../src/backend/index.js";
import { nativeBuild } from "../src/backend/native.js";
import { InvalidInputError, ResourceLimitError } from "../src/errors.js";
import { loadModel } from "../src/models.js";
import { solve } from "../src/run.js";
import { Rng } from "../src/rng.js";
import { multiplicationTask, multiplyBitStrings, parseTaskName, taskFromName } from "../src/tasks/index.js";

const big = (s: string) => BigInt(`0b${s}`);
const bitsOf = (v: bigint, n: number) => v.toString(2).padStart(n, "0");

function throwsInvalid(t: ExecutionContext, fn: () => unknown, message: RegExp): void {
  const error = t.throws(fn, { instanceOf: InvalidInputError });
  t.regex(error?.message ?? "", message);
}

test("multiplication: the reference is BigInt's product, 2n bits, for every pair up to 5 bits and random pairs to 300", (t) => {
  const task = multiplicationTask();
  for (let n = 1; n <= 5; n++) {
    for (let a = 0; a < 2 ** n; a++) {
      for (let b = 0; b < 2 ** n; b++) {
        const input = { a: bitsOf(BigInt(a), n), b: bitsOf(BigInt(b), n) };
        t.is(task.reference(input), bitsOf(BigInt(a * b), 2 * n));
      }
    }
  }
  const rng = new Rng(3);
  for (const n of [7, 64, 300]) {
    const input = task.sample(rng, n);
    t.is(input.a.length, n);
    t.is(task.reference(input), bitsOf(big(input.a) * big(input.b), 2 * n));
    t.is(multiplyBitStrings(input.a, input.b), task.reference(input));
  }
});

test("multiplication: encoding puts a's bits along the columns and b's along the rows; the product's cells decode to the product", (t) => {
  const task = multiplicationTask();
  const rng = new Rng(5);
  for (const n of [1, 2, 3, 6, 17]) {
    const inputs = Array.from({ length: 4 }, () => task.sample(rng, n));
    const enc = task.encode(inputs);
    t.deepEqual([enc.batch, enc.height, enc.width, enc.cIn, enc.cOut], [4, n, n + 1, 4, 2]);
    t.deepEqual(task.grid(n), { height: n, width: n + 1 });
    inputs.forEach((input, s) => {
      const a = input.a.split("").reverse().map(Number); // least significant first
      const b = input.b.split("").reverse().map(Number);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j <= n; j++) {
          const cell = (s * n + i) * (n + 1) + j;
          const x = Array.from(enc.x.subarray(cell * 4, cell * 4 + 4));
          t.deepEqual(x, [j < n && a[j] ? 0 : 1, j < n && a[j] ? 1 : 0, b[i] ? 0 : 1, b[i] ? 1 : 0]);
          const edge = j === 0 || i === n - 1;
          t.is(enc.target[cell]! >= 0, edge, `cell (${i}, ${j}) supervised only on the product's cells`);
        }
      }
    });
    // Unsupervised cells decode as anything: fill them with 1 to show they are not read.
    const outputs = Uint8Array.from(enc.target, (v) => (v < 0 ? 1 : v));
    t.deepEqual(task.decode(outputs, enc), inputs.map((i) => task.reference(i)));
  }
});

test("multiplication-all: every cell holds bit i + j of its row's running sum a * (b mod 2^(i+1))", (t) => {
  const task = multiplicationTask({ supervise: "all" });
  t.is(task.name, "multiplication-all");
  const rng = new Rng(9);
  for (const n of [1, 4, 9, 33]) {
    const input = task.sample(rng, n);
    const enc = task.encode([input]);
    for (let i = 0; i < n; i++) {
      const sum = big(input.a) * (big(input.b) % (1n << BigInt(i + 1)));
      for (let j = 0; j <= n; j++) {
        t.is(enc.target[i * (n + 1) + j], Number((sum >> BigInt(i + j)) & 1n), `n ${n} cell (${i}, ${j})`);
      }
    }
    t.deepEqual(task.decode(Uint8Array.from(enc.target), enc), [task.reference(input)]);
  }
});

test("multiplication: the adversarial cases hold what their names say, and their products are exact", (t) => {
  const task = multiplicationTask();
  const n = 12;
  const cases = task.hardCases(n);
  const byName = new Map(cases.map((c) => [c.name, c.input]));
  const ones = (1n << 12n) - 1n;
  t.is(big(byName.get("all ones x all ones")!.a), ones);
  t.is(big(task.reference(byName.get("all ones x all ones")!)), ones * ones);
  t.is(big(byName.get("one x all ones")!.a), 1n);
  t.is(big(byName.get("zero x all ones")!.a), 0n);
  t.is(big(byName.get("(2^11 + 1) x (2^11 + 1)")!.a), 2049n);
  t.is(big(byName.get("(2^11 - 1) x (2^11 + 1)")!.a), 2047n);
  t.is(big(byName.get("2^11 x 2^11")!.b), 2048n);
  for (const c of cases) {
    t.is(c.input.a.length, n, c.name);
    t.is(big(task.reference(c.input)), big(c.input.a) * big(c.input.b), c.name);
  }
  t.true(task.hardCases(1).every((c) => c.input.a.length === 1));
});

test("multiplication: training samples follow the curriculum and stay n bits", (t) => {
  const task = multiplicationTask();
  const rng = new Rng(1);
  let ones = 0;
  for (let k = 0; k < 400; k++) {
    const s = task.trainingSample(rng, 8, { adversarial: 1 });
    t.is(s.a.length, 8);
    t.is(s.b.length, 8);
    if (s.a === "11111111" || s.b === "11111111") ones++;
  }
  t.true(ones > 10, `all-ones operands appear (${ones} of 400)`);
  // With no hard cases, one draw decides, then a uniform sample follows.
  const same = new Rng(2);
  same.float();
  t.deepEqual(task.trainingSample(new Rng(2), 8, { adversarial: 0 }), task.sample(same, 8));
});

test("multiplication: names, text input and bad input", (t) => {
  t.deepEqual(parseTaskName("multiplication"), { name: "multiplication", supervise: "edges" });
  t.deepEqual(parseTaskName("multiplication-all"), { name: "multiplication", supervise: "all" });
  const task = taskFromName("multiplication");
  t.is(task.dims, 2);
  t.deepEqual(task.parseInput!("101*11"), { a: "101", b: "011" });
  t.deepEqual(task.parseInput!(" 1 x 1 "), { a: "1", b: "1" });
  throwsInvalid(t, () => task.parseInput!("101+11"), /two binary numbers joined by \*/);
  throwsInvalid(t, () => task.parseInput!("121*11"), /the first number: '2' at position 1 .* is not a binary digit/);
  const mul = multiplicationTask();
  throwsInvalid(t, () => mul.encode([{ a: "", b: "" }]), /operand a of inputs\[0\] is empty/);
  throwsInvalid(t, () => mul.encode([{ a: "10", b: "1" }]), /must have the same length \(a has 2 bits, b has 1\)/);
  throwsInvalid(t, () => mul.encode([{ a: "12", b: "11" }]), /'2' at position 1/);
  throwsInvalid(t, () => mul.encode([{ a: "1", b: "1" }, { a: "10", b: "11" }]), /inputs\[1\] has length 2 but inputs\[0\] has length 1/);
  throwsInvalid(t, () => mul.decode(new Uint8Array(4), { batch: 1, height: 2, width: 2 }), /n rows and n \+ 1 columns, got 2 x 2/);
  throwsInvalid(t, () => mul.decode(new Uint8Array(5), { batch: 1, height: 2, width: 3 }), /outputs has 5 values but batch \* height \* width = 1 \* 2 \* 3 = 6/);
  throwsInvalid(t, () => mul.grid(0), /bits must be an integer >= 1/);
  throwsInvalid(t, () => multiplicationTask({ supervise: "some" as "all" }), /supervise must be "edges" or "all"/);
});

test("multiplication: a grid over the backend's memory limit is refused before anything is encoded, naming the bytes", async (t) => {
  const { model } = loadModel("multiplication-base2");
  const task = multiplicationTask({ supervise: "all" });
  const ones = "1".repeat(100_000);
  const started = performance.now();
  const error = await t.throwsAsync(solve(createBackend({ backend: "cpu" }), model, task, [{ a: ones, b: ones }]), { instanceOf: ResourceLimitError });
  // The WebAssembly (WASI) build is 32-bit: there the grid is past its whole memory.
  t.regex(error?.message ?? "", nativeBuild() === "wasm" ? /a 1 x 100000 x 100001 grid needs more than 4 GiB, the whole memory of sead's WebAssembly \(WASI\) build/ : /a 100,000 x 100,001 grid needs [\d,]+ bytes; the backend's limit is 17,179,869,184 \(option maxSessionBytes\)/);
  t.true(performance.now() - started < 5000, "refused at once, not after encoding 4 x 10^10 input channels");
  const small = createBackend({ backend: "cpu", maxSessionBytes: 1000 });
  await t.throwsAsync(solve(small, model, task, [{ a: "1011", b: "0110" }]), { instanceOf: ResourceLimitError, message: /a 4 x 5 grid needs [\d,]+ bytes; the backend's limit is 1,000/ });
});
