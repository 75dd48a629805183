/**
 * The README's API example runs as written: the ```ts block(s) under its "The API" heading are
 * taken from README.md, `from "sead"` is pointed at the source entry (src/index.ts), and the
 * result runs as an ES module (top-level await, as a user's script would) in a child process,
 * in an empty folder (it writes parity.json.ckpt there). It must exit 0 and print what the
 * README's comments say it prints.
 *
 * The import is rewritten to a default import plus destructuring: Node finds the named exports
 * of a compiled CommonJS module (dist/, what users get) but not of src/ run through tsx.
 */
import test from "ava";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { type ProcessResult, runNode } from "./helpers.js";

const ROOT = join(__dirname, "..");
const ENTRY = pathToFileURL(join(ROOT, "src", "index.ts")).href;
/** tsx's loader by path: the child runs in an empty folder, where `--import=tsx` would not resolve. */
const TSX = pathToFileURL(require.resolve("tsx")).href;

/** The ```ts blocks between the heading that names the API and the next heading at its level or above. */
function apiBlocks(readme: string): string[] {
  const lines = readme.split("\n");
  const at = lines.findIndex((l) => /^#{1,6} .*\bAPI\b/.test(l));
  if (at < 0) return [];
  const level = /^(#+)/.exec(lines[at]!)![1]!.length;
  const blocks: string[] = [];
  let current: string[] | undefined;
  for (const line of lines.slice(at + 1)) {
    if (current) {
      if (line.startsWith("```")) {
        blocks.push(current.join("\n"));
        current = undefined;
      } else current.push(line);
      continue;
    }
    const h = /^(#+) /.exec(line);
    if (h && h[1]!.length <= level) break;
    if (/^```(ts|typescript)\s*$/.test(line)) current = [];
  }
  return blocks;
}

/** `import { a, b } from "sead";` -> a default import of the source entry, destructured. */
function pointAtSource(code: string): string {
  let n = 0;
  const out = code.replace(/import\s*\{([^}]*)\}\s*from\s*["']sead["'];?/g, (_m, names: string) => {
    const v = `__sead${n++}`;
    return `import ${v} from ${JSON.stringify(ENTRY)};\nconst {${names}} = ${v};`;
  });
  if (n === 0) throw new Error('the README\'s API example does not import from "sead"');
  return out;
}

function run(file: string, cwd: string): Promise<ProcessResult> {
  return runNode([`--import=${TSX}`, file], cwd);
}

test("the README's API example runs as written and prints what it says", async (t) => {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const blocks = apiBlocks(readme);
  t.true(blocks.length > 0, "README.md has a ```ts block under its API heading");
  const code = blocks.join("\n");
  // What the README says the example prints; if the README changes, change these with it.
  for (const said of ["// 10001 true 13", "// true 1433, then about 59,000", "// 4594 false"]) {
    t.true(code.includes(said), `the example's comments say ${JSON.stringify(said)}`);
  }

  // Inside test/ so tsx treats it as part of the project; .mts for top-level await.
  const file = join(ROOT, "test", `.readme-example-${process.pid}.mts`);
  const cwd = mkdtempSync(join(tmpdir(), "sead-readme-"));
  writeFileSync(file, pointAtSource(code));
  try {
    const r = await run(file, cwd);
    t.is(r.code, 0, `the example exits 0; stderr:\n${r.stderr}`);
    const lines = r.stdout.trim().split("\n");
    t.is(lines.length, 5, `five lines printed:\n${r.stdout}`);
    t.is(lines[0], "10001 true 13");
    // The chain settles in the same steps on either CPU kernel; the cells computed differ by a
    // few dozen between the AVX2 and portable kernels (58,709 and 58,697 when measured).
    const chain = /^true 1433 (\d+)$/.exec(lines[1] ?? "");
    t.truthy(chain, `the carry chain: ${lines[1]}`);
    const cells = Number(chain?.[1]);
    t.true(cells > 55_000 && cells < 63_000, `about 59,000 cells computed, got ${cells}`);
    t.regex(lines[2] ?? "", /^100 \d+\.\d{3}$/);
    t.regex(lines[3] ?? "", /^200 \d+\.\d{3}$/);
    t.is(lines[4], "4594 false");
    t.true(existsSync(join(cwd, "parity.json.ckpt")), "the trainer saved its checkpoint where the example says");
  } finally {
    rmSync(file, { force: true });
    rmSync(cwd, { recursive: true, force: true });
  }
});
