import test, { type ExecutionContext } from "ava";
import fc from "fast-check";
import { InvalidInputError } from "../src/errors.js";
import { Rng } from "../src/rng.js";
import {
  type AdditionInput,
  additionTask,
  addDigitStrings,
  allMax,
  allZeros,
  carryChain,
  noCarryRun,
  uniformRun,
  carryRun,
  elementaryStep,
  elementaryTask,
  padOperands,
  parityTask,
  multiplicationTask,
  parseOperand,
  parseTaskName,
  taskFromInfo,
  taskFromName,
  trajectory,
  type Boundary,
} from "../src/tasks/index.js";

const bits = (s: string) => Uint8Array.from(s, (c) => Number(c));
const bitString = (row: Uint8Array) => Array.from(row).join("");

function throwsInvalid(t: ExecutionContext, fn: () => unknown, message: RegExp): void {
  const error = t.throws(fn, { instanceOf: InvalidInputError });
  t.regex(error?.message ?? "", message);
}

// ---------------------------------------------------------------- Rng

test("rng: xoshiro128** known outputs from state 1, 2, 3, 4", (t) => {
  const rng = Rng.fromState("xoshiro128**:00000001000000020000000300000004");
  t.deepEqual([rng.nextU32(), rng.nextU32(), rng.nextU32()], [11520, 0, 5927040]);
});

test("rng: the same seed gives the same stream; number and bigint seeds agree", (t) => {
  const draw = (rng: Rng) => Array.from({ length: 20 }, () => rng.nextU32());
  t.deepEqual(draw(new Rng(42)), draw(new Rng(42)));
  t.deepEqual(draw(new Rng(42)), draw(new Rng(42n)));
  t.notDeepEqual(draw(new Rng(42)), draw(new Rng(43)));
  t.notDeepEqual(draw(new Rng(0)), draw(new Rng(1)));
  t.notThrows(() => new Rng(2n ** 64n - 1n));
});

test("rng: getState/fromState resumes mid-stream exactly", (t) => {
  const rng = new Rng(7);
  for (let i = 0; i < 37; i++) rng.normal();
  rng.int(10);
  const state = rng.getState();
  const mixed = (r: Rng) => [r.nextU32(), r.float(), r.int(1000), r.normal(), r.bit(), r.int(2 ** 32)];
  const expected = Array.from({ length: 50 }, () => mixed(rng));
  const resumed = Rng.fromState(state);
  t.is(resumed.getState(), state);
  t.deepEqual(Array.from({ length: 50 }, () => mixed(resumed)), expected);
});

test("rng: int(n) stays in [0, n) and is roughly uniform", (t) => {
  const rng = new Rng(1);
  for (const n of [1, 2, 3, 7, 10, 1000, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32]) {
    for (let i = 0; i < 2000; i++) {
      const v = rng.int(n);
      t.true(Number.isInteger(v) && v >= 0 && v < n, `int(${n}) gave ${v}`);
    }
  }
  const counts = new Array<number>(3).fill(0);
  for (let i = 0; i < 30000; i++) counts[rng.int(3)]! += 1;
  for (const c of counts) t.true(Math.abs(c - 10000) < 500, `counts ${counts.join(", ")}`);
});

test("rng: float in [0, 1), bit, and normal moments", (t) => {
  const rng = new Rng(3);
  let ones = 0;
  let sum = 0;
  let sumSq = 0;
  const n = 20000;
  for (let i = 0; i < n; i++) {
    const f = rng.float();
    t.true(f >= 0 && f < 1);
    const b = rng.bit();
    t.true(b === 0 || b === 1);
    ones += b;
    const z = rng.normal();
    t.true(Number.isFinite(z));
    sum += z;
    sumSq += z * z;
  }
  t.true(Math.abs(ones / n - 0.5) < 0.02);
  t.true(Math.abs(sum / n) < 0.05);
  t.true(Math.abs(sumSq / n - 1) < 0.05);
});

test("rng: fork is deterministic, independent per label, and does not advance the parent", (t) => {
  const parent = new Rng(9);
  const before = parent.getState();
  const a1 = parent.fork(1);
  const a2 = parent.fork(1);
  const b = parent.fork(2);
  t.is(parent.getState(), before);
  const draw = (rng: Rng) => Array.from({ length: 10 }, () => rng.nextU32());
  const fromA1 = draw(a1);
  t.deepEqual(fromA1, draw(a2));
  t.notDeepEqual(fromA1, draw(b));
  t.notDeepEqual(fromA1, draw(new Rng(9)));
});

test("rng: bad seeds, states, and arguments are rejected with the argument named", (t) => {
  for (const seed of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 64, -1n, 2n ** 64n, "1"]) {
    throwsInvalid(t, () => new Rng(seed as number), /seed must be a finite integer/);
  }
  const rng = new Rng(0);
  for (const n of [0, -3, 1.5, 2 ** 32 + 1, Number.NaN]) throwsInvalid(t, () => rng.int(n), /^n must be an integer/);
  throwsInvalid(t, () => rng.fork(-1), /label/);
  throwsInvalid(t, () => Rng.fromState("garbage"), /state must be a string from Rng.getState/);
  throwsInvalid(t, () => Rng.fromState("xoshiro128**:00000000000000000000000000000000"), /all zeros/);
});

// ---------------------------------------------------------------- parity

function naiveParity(row: Uint8Array): Uint8Array {
  return row.map((_, i) => row.slice(0, i + 1).reduce((p, b) => p ^ b, 0));
}

test("parity: reference matches a naive running xor", (t) => {
  const task = parityTask();
  fc.assert(
    fc.property(fc.uint8Array({ min: 0, max: 1, minLength: 1, maxLength: 100 }), (row) => {
      t.deepEqual(task.reference(row), naiveParity(row));
    }),
  );
  t.deepEqual(task.reference(bits("1101")), bits("1001"));
});

test("parity: encode is one-hot with running-parity targets, decode inverts the targets", (t) => {
  const task = parityTask();
  const rng = new Rng(5);
  const inputs = Array.from({ length: 4 }, () => task.sample(rng, 33));
  const enc = task.encode(inputs);
  t.like(enc, { batch: 4, height: 1, width: 33, cIn: 2, cOut: 2 });
  t.is(enc.x.length, 4 * 33 * 2);
  inputs.forEach((row, n) => {
    for (let i = 0; i < 33; i++) {
      const cell = (n * 33 + i) * 2;
      t.deepEqual([enc.x[cell], enc.x[cell + 1]], row[i] ? [0, 1] : [1, 0]);
    }
  });
  const decoded = task.decode(Uint8Array.from(enc.target), { batch: 4, height: 1, width: 33 });
  inputs.forEach((row, n) => t.true(task.equal(decoded[n]!, task.reference(row))));
  t.is(task.grid(33).width, 33);
  t.deepEqual(task.describe(), { name: "parity" });
});

test("parity: bad inputs are rejected", (t) => {
  const task = parityTask();
  throwsInvalid(t, () => task.reference(bits("102")), /input: value 2 at position 2 is not a bit/);
  throwsInvalid(t, () => task.reference(new Uint8Array(0)), /input is empty/);
  throwsInvalid(t, () => task.encode([]), /inputs is empty/);
  throwsInvalid(t, () => task.encode([bits("01"), bits("011")]), /inputs\[1\] has length 3 but inputs\[0\] has length 2/);
  throwsInvalid(t, () => task.decode(new Uint8Array(5), { batch: 2, height: 1, width: 3 }), /outputs has 5 values but batch \* width = 2 \* 3 = 6/);
  for (const length of [0, -1, 1.5, Number.NaN]) {
    throwsInvalid(t, () => task.grid(length).width, /length must be an integer >= 1/);
    throwsInvalid(t, () => task.sample(new Rng(0), length), /length must be an integer >= 1/);
  }
});

// ---------------------------------------------------------------- addition

/** Independent exact value of a digit string (BigInt's own parsers where it has them). */
function toBigInt(s: string, base: number): bigint {
  if (base === 10) return BigInt(s);
  if (base === 2) return BigInt(`0b${s}`);
  if (base === 16) return BigInt(`0x${s}`);
  let v = 0n;
  for (const c of s) v = v * BigInt(base) + BigInt(Number.parseInt(c, base));
  return v;
}

/** The expected answer: the BigInt sum in `base`, L + 1 digits. */
function bigSum(input: AdditionInput, base: number): string {
  return (toBigInt(input.a, base) + toBigInt(input.b, base)).toString(base).padStart(input.a.length + 1, "0");
}

/** Whether a carry enters each cell 0..L, computed from the values: (a mod B^i + b mod B^i) >= B^i. */
function carriesIn(input: AdditionInput, base: number): boolean[] {
  const a = toBigInt(input.a, base);
  const b = toBigInt(input.b, base);
  const B = BigInt(base);
  return Array.from({ length: input.a.length + 1 }, (_, i) => {
    const m = B ** BigInt(i);
    return a % m + (b % m) >= m;
  });
}

/** Lengths of the maximal runs of consecutive cells receiving a carry. */
function carryRuns(carries: boolean[]): number[] {
  const runs: number[] = [];
  let run = 0;
  for (const c of [...carries, false]) {
    if (c) run++;
    else if (run > 0) {
      runs.push(run);
      run = 0;
    }
  }
  return runs;
}

function checkRoundTrip(t: ExecutionContext, base: number, inputs: AdditionInput[]): void {
  const task = additionTask({ base });
  const enc = task.encode(inputs);
  const width = inputs[0]!.a.length + 1;
  t.like(enc, { batch: inputs.length, height: 1, width, cIn: 2 * base, cOut: base });
  const decoded = task.decode(Uint8Array.from(enc.target), { batch: inputs.length, height: 1, width: width });
  inputs.forEach((input, n) => {
    const expected = bigSum(input, base);
    t.is(task.reference(input), expected, `base ${base}: ${input.a} + ${input.b}`);
    t.is(decoded[n], expected, `decoded targets, base ${base}: ${input.a} + ${input.b}`);
  });
}

for (const base of [2, 3, 10, 16]) {
  test(`addition base ${base}: reference and encoded targets match BigInt, lengths 1..200`, (t) => {
    const task = additionTask({ base });
    const rng = new Rng(base);
    for (let length = 1; length <= 200; length++) {
      checkRoundTrip(t, base, [task.sample(rng, length), task.sample(rng, length), allMax(base, length)]);
    }
  });

  test(`addition base ${base}: a 10,000-digit case matches BigInt`, (t) => {
    const task = additionTask({ base });
    const rng = new Rng(1000 + base);
    checkRoundTrip(t, base, [task.sample(rng, 10000), carryChain(base, 10000, 9000, rng)]);
  });
}

test("addition: encoding layout, least significant digit at cell 0, carry cell all zero", (t) => {
  const task = additionTask({ base: 10 });
  const enc = task.encode([{ a: "12", b: "39" }]);
  t.deepEqual(Array.from(enc.target), [1, 5, 0]);
  const hot = (cell: number) =>
    Array.from(enc.x.subarray(cell * 20, (cell + 1) * 20).entries())
      .filter(([, v]) => v === 1)
      .map(([c]) => c);
  t.deepEqual(hot(0), [2, 10 + 9]);
  t.deepEqual(hot(1), [1, 10 + 3]);
  t.deepEqual(hot(2), []);
  t.is(enc.x.reduce((s, v) => s + v, 0), 4);
  t.deepEqual(task.decode(Uint8Array.from(enc.target), { batch: 1, height: 1, width: 3 }), ["051"]);
  t.is(task.reference({ a: "12", b: "39" }), "051");
  t.is(task.grid(2).width, 3);
  t.is(task.name, "addition-base10");
});

test("addition: the leading digit is kept even when it is 0; digits are case-insensitive", (t) => {
  const task = additionTask({ base: 16 });
  t.is(task.reference({ a: "0A", b: "05" }), "00f");
  t.is(task.reference({ a: "FF", b: "01" }), "100");
  t.true(task.equal("00F", "00f"));
  t.false(task.equal("00f", "0f"));
  t.is(addDigitStrings("1", "1", 2), "10");
  t.deepEqual(padOperands("7", "1234"), { a: "0007", b: "1234" });
  t.deepEqual(parseOperand("1aF", 16, "a"), Uint8Array.from([1, 10, 15]));
});

test("addition: carryChain without rng is 99...9 + 1 and its carry travels exactly chainLength cells", (t) => {
  t.deepEqual(carryChain(10, 5, 5), { a: "99999", b: "00001" });
  t.is(additionTask({ base: 10 }).reference(carryChain(10, 5, 5)), "100000");
  for (const base of [2, 3, 10, 16]) {
    for (const [length, chain] of [[1, 1], [8, 3], [20, 20], [40, 17]] as const) {
      const input = carryChain(base, length, chain);
      const carries = carriesIn(input, base);
      // Carries enter exactly cells 1..chain.
      t.deepEqual(carries, carries.map((_, i) => i >= 1 && i <= chain), `base ${base}, L ${length}, chain ${chain}`);
    }
  }
});

test("addition: carryChain with rng contains a maximal carry run of exactly chainLength", (t) => {
  const rng = new Rng(11);
  for (const base of [2, 3, 10, 16]) {
    for (let trial = 0; trial < 50; trial++) {
      const length = 1 + rng.int(40);
      const chain = 1 + rng.int(length);
      const input = carryChain(base, length, chain, rng);
      t.is(input.a.length, length);
      t.is(input.b.length, length);
      t.true(carryRuns(carriesIn(input, base)).includes(chain), `base ${base}: ${input.a} + ${input.b}, chain ${chain}`);
      t.is(additionTask({ base }).reference(input), bigSum(input, base));
    }
  }
});

test("addition: allZeros has no carries, allMax carries into every cell", (t) => {
  for (const base of [2, 7, 10, 16]) {
    const zeros = allZeros(base, 12);
    t.is(zeros.a, "0".repeat(12));
    t.true(carriesIn(zeros, base).every((c) => !c));
    t.is(additionTask({ base }).reference(zeros), "0".repeat(13));
    const max = allMax(base, 12);
    t.is(max.a, max.b);
    t.is(toBigInt(max.a, base), BigInt(base) ** 12n - 1n);
    t.true(carriesIn(max, base).every((c, i) => c === i > 0));
  }
});

test("addition: bad inputs throw InvalidInputError naming the problem", (t) => {
  const task = additionTask({ base: 2 });
  throwsInvalid(t, () => parseOperand("1017", 2, "a"), /^operand a: digit '7' at position 3 .*is not valid in base 2$/);
  throwsInvalid(t, () => task.reference({ a: "101", b: "1x1" }), /operand b: character 'x' at position 1 .*is not a digit/);
  throwsInvalid(t, () => task.reference({ a: "1", b: "" }), /operand b is empty/);
  throwsInvalid(t, () => task.reference({ a: "101", b: "11" }), /same length \(a has 3 digits, b has 2\)/);
  throwsInvalid(t, () => task.reference(null as unknown as AdditionInput), /input must be an object/);
  throwsInvalid(t, () => task.encode([{ a: "10", b: "01" }, { a: "1", b: "1" }]), /inputs\[1\] has length 1 but inputs\[0\] has length 2/);
  throwsInvalid(t, () => task.encode([{ a: "10", b: "01" }, { a: "12", b: "11" }]), /operand a of inputs\[1\]: digit '2'/);
  throwsInvalid(t, () => task.decode(Uint8Array.from([0, 1, 2]), { batch: 1, height: 1, width: 3 }), /class 2 at cell 2 is not a digit in base 2/);
  throwsInvalid(t, () => task.decode(Uint8Array.from([0]), { batch: 1, height: 1, width: 1 }), /width must be an integer >= 2/);
  for (const base of [1, 17, 2.5, 0, Number.NaN]) {
    throwsInvalid(t, () => additionTask({ base }), /base must be an integer from 2 to 16/);
  }
  for (const length of [0, -1, 1.5]) {
    throwsInvalid(t, () => task.grid(length).width, /length must be an integer >= 1/);
    throwsInvalid(t, () => task.sample(new Rng(0), length), /length must be an integer >= 1/);
    throwsInvalid(t, () => allZeros(2, length), /length must be an integer >= 1/);
  }
  throwsInvalid(t, () => carryChain(10, 5, 6), /chainLength must be at most length \(5\)/);
  throwsInvalid(t, () => carryChain(10, 5, 0), /chainLength must be an integer >= 1/);
});

for (const base of [2, 10]) {
  test(`addition base ${base}: encode + reference + decode of 1,000,000 digits`, (t) => {
    const task = additionTask({ base });
    const length = 1_000_000;
    const input = task.sample(new Rng(base), length);
    const t0 = performance.now();
    const enc = task.encode([input]);
    const t1 = performance.now();
    const sum = task.reference(input);
    const t2 = performance.now();
    const [decoded] = task.decode(Uint8Array.from(enc.target), { batch: 1, height: 1, width: enc.width });
    const t3 = performance.now();
    t.is(decoded, sum);
    t.is(sum.length, length + 1);
    t.log(`encode ${(t1 - t0).toFixed(0)} ms, reference ${(t2 - t1).toFixed(0)} ms, decode ${(t3 - t2).toFixed(0)} ms`);
  });
}

// ---------------------------------------------------------------- elementary automata

/** Independent reference: the rule's truth table as a string, indexed by the neighbourhood text. */
function naiveStep(rule: number, row: string, boundary: Boundary): string {
  const table = rule.toString(2).padStart(8, "0"); // table[0] is the output for "111"
  const padded = boundary === "zero" ? `0${row}0` : `${row.at(-1)}${row}${row[0]}`;
  let out = "";
  for (let i = 0; i < row.length; i++) out += table[7 - Number.parseInt(padded.slice(i, i + 3), 2)];
  return out;
}

test("elementary: all 256 rules match the truth-table reference, both boundaries", (t) => {
  const rng = new Rng(110);
  const rows = ["0", "1", "01", "10", "111", "0001000", "1011001110"];
  for (let i = 0; i < 6; i++) rows.push(bitString(parityTask().sample(rng, 1 + rng.int(40))));
  for (let rule = 0; rule < 256; rule++) {
    for (const boundary of ["zero", "periodic"] as const) {
      for (const row of rows) {
        const got = bitString(elementaryStep(rule, bits(row), boundary));
        if (got !== naiveStep(rule, row, boundary)) {
          t.fail(`rule ${rule}, ${boundary}, row ${row}: got ${got}, expected ${naiveStep(rule, row, boundary)}`);
          return;
        }
      }
    }
  }
  t.pass();
});

test("elementary: known patterns (rule 90 Sierpinski, rule 110 default boundary is zero)", (t) => {
  const gens = trajectory(90, bits("0001000"), 3).map(bitString);
  t.deepEqual(gens, ["0001000", "0010100", "0100010", "1010101"]);
  t.is(bitString(elementaryStep(110, bits("0001"))), "0011");
  t.is(bitString(elementaryStep(110, bits("1000"), "periodic")), "1001");
  t.is(bitString(elementaryStep(110, bits("1000"))), "1000");
});

test("elementary: trajectories chain exact steps and copy the initial row", (t) => {
  const rng = new Rng(30);
  for (const rule of [30, 54, 110, 184]) {
    for (const boundary of ["zero", "periodic"] as const) {
      const row = parityTask().sample(rng, 64);
      const traj = trajectory(rule, row, 200, boundary);
      t.is(traj.length, 201);
      t.deepEqual(traj[0], row);
      t.not(traj[0], row);
      let current = bitString(row);
      for (let g = 1; g <= 200; g++) {
        current = naiveStep(rule, current, boundary);
        t.is(bitString(traj[g]!), current);
      }
    }
  }
  t.deepEqual(trajectory(110, bits("1"), 0), [bits("1")]);
  t.is(trajectory(110, bits("1"), 1, "periodic").length, 2);
});

test("elementary task: encode targets are the next generation; names and describe", (t) => {
  const task = elementaryTask({ rule: 110, boundary: "periodic" });
  t.is(task.name, "elementary-rule110-periodic");
  t.is(task.boundary, "periodic");
  t.deepEqual(task.describe(), { name: "elementary", rule: 110, boundary: "periodic" });
  t.is(elementaryTask({ rule: 30, boundary: "zero" }).name, "elementary-rule30");
  const rng = new Rng(4);
  const inputs = Array.from({ length: 3 }, () => task.sample(rng, 25));
  const enc = task.encode(inputs);
  t.like(enc, { batch: 3, height: 1, width: 25, cIn: 2, cOut: 2 });
  const decoded = task.decode(Uint8Array.from(enc.target), { batch: 3, height: 1, width: 25 });
  inputs.forEach((row, n) => {
    t.is(bitString(decoded[n]!), naiveStep(110, bitString(row), "periodic"));
    t.true(task.equal(task.reference(row), decoded[n]!));
  });
});

test("elementary: bad rules, rows, boundaries and generation counts are rejected", (t) => {
  for (const rule of [256, -1, 1.5, Number.NaN]) {
    throwsInvalid(t, () => elementaryTask({ rule, boundary: "zero" }), /rule must be an integer from 0 to 255/);
    throwsInvalid(t, () => elementaryStep(rule, bits("01"), "zero"), /rule must be an integer from 0 to 255/);
  }
  throwsInvalid(t, () => elementaryTask({ rule: 110, boundary: "wrap" as Boundary }), /boundary must be "zero" or "periodic"/);
  throwsInvalid(t, () => elementaryStep(110, Uint8Array.from([0, 3]), "zero"), /row: value 3 at position 1 is not a bit/);
  throwsInvalid(t, () => elementaryStep(110, new Uint8Array(0), "zero"), /row is empty/);
  throwsInvalid(t, () => trajectory(110, bits("01"), -1), /generations must be an integer >= 0/);
  throwsInvalid(t, () => trajectory(110, bits("01"), 2.5), /generations must be an integer >= 0/);
});

// ---------------------------------------------------------------- task registry

test("taskFromInfo rebuilds every task from its JSON'd describe()", (t) => {
  const tasks = [
    parityTask(),
    additionTask({ base: 2 }),
    additionTask({ base: 16 }),
    elementaryTask({ rule: 110, boundary: "zero" }),
    elementaryTask({ rule: 0, boundary: "periodic" }),
    multiplicationTask(),
    multiplicationTask({ supervise: "all" }),
  ];
  for (const task of tasks) {
    const rebuilt = taskFromInfo(JSON.parse(JSON.stringify(task.describe())));
    t.is(rebuilt.name, task.name);
    t.deepEqual(rebuilt.describe(), task.describe());
    t.deepEqual(parseTaskName(task.name), task.describe());
    t.is(taskFromName(task.name).name, task.name);
  }
});

test("taskFromInfo names the bad field", (t) => {
  throwsInvalid(t, () => taskFromInfo({ name: "sorting" }), /task.name: task "sorting" is not registered \(known tasks: parity, addition, elementary, multiplication\); register it with registerTask/);
  throwsInvalid(t, () => taskFromInfo("parity"), /task must be an object/);
  throwsInvalid(t, () => taskFromInfo({ name: "addition", base: 17 }), /task.base:/);
  throwsInvalid(t, () => taskFromInfo({ name: "addition" }), /task.base:/);
  throwsInvalid(t, () => taskFromInfo({ name: "elementary", rule: 1.5, boundary: "zero" }), /task.rule:/);
  throwsInvalid(t, () => taskFromInfo({ name: "elementary", rule: 30 }), /task.boundary:/);
  throwsInvalid(t, () => taskFromInfo({ name: "parity", base: 2 }), /task: .*base/);
});

test("parseTaskName accepts the short forms", (t) => {
  t.deepEqual(parseTaskName("parity"), { name: "parity" });
  t.deepEqual(parseTaskName("addition"), { name: "addition", base: 10 });
  t.deepEqual(parseTaskName("addition-base2"), { name: "addition", base: 2 });
  t.deepEqual(parseTaskName("rule110"), { name: "elementary", rule: 110, boundary: "zero" });
  t.deepEqual(parseTaskName("Elementary-Rule30"), { name: "elementary", rule: 30, boundary: "zero" });
  t.deepEqual(parseTaskName("rule30-periodic"), { name: "elementary", rule: 30, boundary: "periodic" });
  throwsInvalid(t, () => parseTaskName("rule256"), /rule must be from 0 to 255/);
  throwsInvalid(t, () => parseTaskName("addition-base17"), /base must be from 2 to 16/);
  t.deepEqual(parseTaskName("multiplication"), { name: "multiplication", supervise: "edges" });
  throwsInvalid(t, () => parseTaskName("sorting"), /"sorting" is not known; known names: parity, addition-base2, .*--tasks/);
});

/**
 * Draws `count` inputs per base (2, 10 and 16) from `make`, of random lengths L (1 to 40) and
 * run lengths (1 to L) from `rng`, checks their length and hands each to `check`.
 */
function eachRunInput(
  t: ExecutionContext,
  rng: Rng,
  count: number,
  make: (base: number, length: number, runLength: number, rng: Rng) => AdditionInput,
  check: (input: AdditionInput, base: number, length: number, runLength: number) => void,
): void {
  for (const base of [2, 10, 16]) {
    for (let k = 0; k < count; k++) {
      const L = 1 + rng.int(40);
      const runLength = 1 + rng.int(L);
      const input = make(base, L, runLength, rng);
      t.is(input.a.length, L);
      t.is(input.b.length, L);
      check(input, base, L, runLength);
    }
  }
}

test("noCarryRun: a run of digit pairs summing to base-1 with no carry coming in", (t) => {
  eachRunInput(t, new Rng(4), 50, noCarryRun, (input, base, _L, runLength) => {
    const sum = addDigitStrings(input.a, input.b, base);
    // Some window of runLength cells has every sum digit base-1 (no carry went through it).
    const max = "0123456789abcdef"[base - 1]!;
    t.true(sum.slice(1).includes(max.repeat(runLength)), `${input.a} + ${input.b} = ${sum}`);
  });
});

test("uniformRun: a run of one repeated digit pair, the rest random, sums checked", (t) => {
  const rng = new Rng(5);
  eachRunInput(t, rng, 50, uniformRun, ({ a, b }, _base, L, runLength) => {
    // Some window of runLength cells repeats one pair (the strings are most significant first).
    let found = false;
    for (let s = 0; s + runLength <= L && !found; s++) {
      const wa = a.slice(s, s + runLength);
      const wb = b.slice(s, s + runLength);
      found = wa === wa[0]!.repeat(runLength) && wb === wb[0]!.repeat(runLength);
    }
    t.true(found, `${a} + ${b}`);
  });
  t.throws(() => uniformRun(10, 4, 5, rng), { message: /runLength must be at most length \(4\), got 5/ });
});

test("carryRun: a generating pair of any split, then propagating pairs of any split", (t) => {
  const rng = new Rng(6);
  const splits = new Set<string>();
  eachRunInput(t, rng, 200, carryRun, ({ a, b }, base, L, runLength) => {
    // Cells least significant first: some cell generates (a + b >= base) and the
    // runLength - 1 cells above it propagate (a + b = base - 1).
    const da = [...a].reverse().map((c) => parseInt(c, 16));
    const db = [...b].reverse().map((c) => parseInt(c, 16));
    let found = false;
    for (let s = 0; s + runLength <= L && !found; s++) {
      found = da[s]! + db[s]! >= base;
      for (let c = s + 1; c < s + runLength && found; c++) found = da[c]! + db[c]! === base - 1;
      if (found && base === 10) splits.add(`${da[s]}+${db[s]}`);
    }
    t.true(found, `${a} + ${b}`);
  });
  // Not only 9 + x: generating pairs such as 7 + 3 and 3 + 7 occur.
  t.true([...splits].some((p) => !p.startsWith("9")), [...splits].join(" "));
  t.throws(() => carryRun(10, 4, 5, rng), { message: /runLength must be at most length \(4\), got 5/ });
});
