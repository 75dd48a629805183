/**
 * Generates the README's images (docs/images/*.png) with the sead CLI from the shipped models:
 *
 *   node --import=tsx scripts/make-images.ts            every image whose model is present
 *   node --import=tsx scripts/make-images.ts --out DIR  somewhere else
 *
 * A model that is not in models/ yet is skipped with a note; run the script again once it is.
 * Every image is a plain `sead viz` / `sead plot` command, printed as it runs, so each can be
 * remade (or varied) by hand.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main } from "../src/cli/main.js";

interface Job {
  /** Models it needs (shipped names). */
  needs: string[];
  /** A file it needs (relative to the repository), or one whose presence makes it unneeded. */
  needsFile?: string;
  unlessFile?: string;
  file: string;
  what: string;
  /** sead arguments; OUT is replaced by the image's path. */
  args: string[];
  /** Commands to run first (e.g. an evaluation whose JSON the plot reads); TMP is a scratch folder. */
  before?: string[][];
}

const jobs: Job[] = [
  {
    needs: ["addition-base2"],
    file: "addition-base2-settling.png",
    what: "binary addition settling: the news that no carry comes travels through a run of 1 + 0 digits",
    args: ["viz", "addition-base2", "--input", "110101111111111111100101+010010000000000000010110", "-o", "OUT"],
  },
  {
    needs: ["addition-base10"],
    file: "addition-base10-settling.png",
    what: "decimal addition settling: 'no carry' ripples through a run of nines",
    args: ["viz", "addition-base10", "--input", "31415999999999265358+27182000000000431241", "-o", "OUT"],
  },
  {
    needs: ["parity"],
    file: "parity-light-cone.png",
    what: "running parity: every output is fixed only once the light cone from cell 0 has reached it",
    args: ["viz", "parity", "--random", "48", "--seed", "2", "-o", "OUT"],
  },
  {
    needs: ["rule110"],
    file: "rule110-learned-vs-true.png",
    what: "Rule 110: the learned trajectory (output fed back as input) beside the exact automaton",
    args: ["viz", "rule110", "--random", "128", "--seed", "1", "--generations", "128", "-o", "OUT"],
  },
  {
    // The committed results (scripts/results.ts) when there are some: every shipped model.
    needs: [],
    needsFile: "results/results.json",
    file: "lengths.png",
    what: "accuracy and steps against length, from results/results.json: addition settles in about log L steps, parity needs about L",
    args: ["plot", "results/results.json", "-o", "OUT", "--title", "Length generalization of the shipped models"],
  },
  {
    needs: ["addition-base2", "parity"],
    unlessFile: "results/results.json",
    file: "lengths.png",
    what: "accuracy and steps against length: addition settles in about log L steps, parity needs about L",
    before: [
      ["eval", "addition-base2", "--lengths", "10,100,1000,10000,100000", "--samples", "10", "--out", "TMP/addition-base2.json", "--quiet"],
      ["eval", "parity", "--lengths", "10,30,100,300,1000", "--samples", "10", "--out", "TMP/parity.json", "--quiet"],
    ],
    args: ["plot", "TMP/addition-base2.json", "TMP/parity.json", "-o", "OUT", "--title", "Length generalization: trained on 16 digits or fewer"],
  },
];

async function run() {
  const argv = process.argv.slice(2);
  const outIdx = argv.indexOf("--out");
  const root = join(__dirname, "..");
  const outDir = outIdx >= 0 ? argv[outIdx + 1]! : join(root, "docs", "images");
  const tmp = mkdtempSync(join(tmpdir(), "sead-images-"));
  let failed = 0;
  try {
    for (const job of jobs) {
      if (job.unlessFile && existsSync(join(root, job.unlessFile))) continue;
      if (job.needsFile && !existsSync(join(root, job.needsFile))) {
        if (!jobs.some((j) => j.file === job.file && j !== job)) console.log(`skip ${job.file}: ${job.needsFile} not present`);
        continue;
      }
      const missing = job.needs.filter((m) => !existsSync(join(root, "models", `${m}.json`)));
      if (missing.length > 0) {
        console.log(`skip ${job.file}: models/${missing.join(".json, models/")}.json not present yet`);
        continue;
      }
      const path = join(outDir, job.file);
      const sub = (a: string) => (a === "OUT" ? path : a.startsWith("TMP/") ? join(tmp, a.slice(4)) : a === job.needsFile ? join(root, a) : a);
      const shown = (args: string[]) =>
        `sead ${args.map((a) => (a === "OUT" ? `docs/images/${job.file}` : a.startsWith("TMP/") ? a.slice(4) : a.includes(" ") || a.includes("+") ? JSON.stringify(a) : a)).join(" ")}`;
      for (const cmd of job.before ?? []) {
        console.log(shown(cmd));
        const code = await main(cmd.map(sub));
        if (code !== 0 && code !== 1) throw new Error(`sead ${cmd.join(" ")} exited with ${code}`);
      }
      console.log(shown(job.args));
      const code = await main([...job.args.map(sub), "--quiet"]);
      if (code !== 0) {
        console.error(`  failed (exit ${code})`);
        failed++;
      } else {
        console.log(`  ${job.what}`);
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failed > 0) process.exitCode = 1;
}

run().catch((e) => {
  console.error(e);
  process.exit(1);
});
