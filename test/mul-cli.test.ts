/**
 * `sead mul` with the shipped multiplication model, run as a user runs it: the product checked
 * against BigInt in text and JSON (the whole product, and its SHA-256 when long), --out written
 * atomically, 2D skipping (--freeze) giving the same product, and bad input refused with one line
 * and exit 2.
 */
import test from "ava";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeBuild } from "../src/backend/native.js";
import { Rng } from "../src/rng.js";
import { multiplicationTask } from "../src/tasks/index.js";
import { type ProcessResult, runNode } from "./helpers.js";

const ROOT = join(__dirname, "..");
const MAIN = join(ROOT, "src", "cli", "main.ts");
const dir = mkdtempSync(join(tmpdir(), "sead-mul-"));

function sead(args: string[]): Promise<ProcessResult> {
  return runNode(["--import=tsx", MAIN, "mul", ...args, "--backend", "cpu"], ROOT);
}

const product = (a: string, b: string) => (BigInt(`0b${a}`) * BigInt(`0b${b}`)).toString(2).padStart(2 * Math.max(a.length, b.length), "0");

test("sead mul a b: the product, exact, in text and JSON", async (t) => {
  const r = await sead(["1011", "110"]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /product: +01000010\n/);
  t.regex(r.stdout, /exact: +yes, equal to the exact product/);
  const j = await sead(["11111111", "11111111", "--json"]);
  t.is(j.code, 0, j.stderr);
  const d = JSON.parse(j.stdout) as Record<string, unknown>;
  t.is(d["product"], product("11111111", "11111111"));
  t.is(d["exact"], true);
  t.is(d["digits"], 8);
  t.true((d["steps"] as number) > 0);
});

test("sead mul --bits N: the whole product and its SHA-256 in JSON, the same with --freeze, and --out", async (t) => {
  const n = 96;
  const input = multiplicationTask().sample(new Rng(4), n);
  const exact = product(input.a, input.b);
  const out = join(dir, "product.txt");
  const r = await sead(["--bits", String(n), "--seed", "4", "--json", "--out", out]);
  t.is(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as Record<string, unknown>;
  t.is(d["product"], exact);
  t.is(d["productSha256"], createHash("sha256").update(exact).digest("hex"));
  t.is(readFileSync(out, "utf8"), exact + "\n");
  const f = JSON.parse((await sead(["--bits", String(n), "--seed", "4", "--json", "--freeze", "0"])).stdout) as Record<string, unknown>;
  t.is(f["product"], exact);
  t.is(f["steps"], d["steps"], "freeze 0 takes the steps of plain stepping");
  t.true((f["cellsComputed"] as number) <= (d["cellsComputed"] as number));
});

test("sead mul: bad input is one line and exit 2, before any work", async (t) => {
  const cases: [string[], RegExp][] = [
    [["1021", "11"], /the first number: '2' at position 2/],
    [["11", ""], /the second number|empty/],
    [["11"], /needs two numbers, got 1/],
    [[], /needs two numbers \(sead mul 1011 110\) or --bits N/],
    [["--bits", "0"], /--bits must be at least 1/],
    [["--bits", "5", "1", "1"], /give either two numbers or --bits N, not both/],
    [["1", "1", "--model", "addition-base2"], /addition-base2 was trained for addition-base2, not for multiplication/],
    // The WebAssembly (WASI) build (npm run test:wasi) is 32-bit: there the grid is past its whole memory.
    [["--bits", "60000000"], nativeBuild() === "wasm" ? /60,000,000-digit operands: .*grid needs more than 4 GiB, the whole memory of sead's WebAssembly \(WASI\) build/ : /60,000,000-digit operands: a 60,000,000 x 60,000,001 grid needs [\d,]+ bytes; the backend's limit is 17,179,869,184/],
    [["1", "1", "--out", join(dir, "missing", "p.txt")], /--out .*: the folder .* does not exist/],
  ];
  for (const [args, re] of cases) {
    const r = await sead(args);
    t.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    t.is(r.stderr.trim().split("\n").length, 1, r.stderr);
    t.regex(r.stderr, re);
  }
  t.false(existsSync(join(dir, "missing")));
});

test("sead mul --model multiplication-base2-ternary: the quantized model's 256-bit products and 1,024-bit all ones x all ones are exact, settled, stepping only the cells that change", async (t) => {
  const n = 256;
  const input = multiplicationTask().sample(new Rng(5), n);
  const r = await sead(["--bits", String(n), "--seed", "5", "--json", "--model", "multiplication-base2-ternary"]);
  t.is(r.code, 0, r.stderr);
  const d = JSON.parse(r.stdout) as Record<string, unknown>;
  t.is(d["product"], product(input.a, input.b));
  t.true((d["steps"] as number) < 8 * n + 256, "settled before the step budget");
  // Event-driven stepping (the default for quantized models) computes a fraction of every cell every step.
  t.true((d["cellsComputed"] as number) < 0.5 * (d["steps"] as number) * n * (n + 1));
  const ones = "1".repeat(1024);
  const o = await sead([ones, ones, "--json", "--model", "multiplication-base2-ternary"]);
  t.is(o.code, 0, o.stderr);
  t.is((JSON.parse(o.stdout) as Record<string, unknown>)["product"], product(ones, ones));
});
