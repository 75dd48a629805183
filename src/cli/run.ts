/** `sead run`: one example, step by step, with the convergence statistics of every step. */
import { backendFrom, checkedModel, COMMON_HELP, fmt, intFlag, oneModel, Output, parse, printHelp, showOutput, taskTitle } from "./common.js";
import { INPUT_HELP, INPUT_OPTIONS, inputFrom, SETTLE_OPTIONS, settleFlags, settleRule, tracedAnswer } from "./one-input.js";

export const RUN_HELP = `usage: sead run <model> --input X [--max-steps N] [--every K]
       sead run <model> --random L [--seed S]

Runs one example step by step and prints, for every step, the cells whose output changed, the
largest change of the hidden state (max |h' - h|) and the cells still wrong against the exact
answer; then the answer, checked. The run stops when the outputs have not changed for
--patience steps and max |h' - h| < --tol (the same rule as sead eval and sead add).

${INPUT_HELP}

options:
  --max-steps N    stop after N steps if it has not settled (default 2 L + 66)
  --patience N     steps with no output change that count as settled (default 4)
  --tol X          max |h' - h| below which the state counts as still (default 0.001)
  --every K        print every K-th step (default 1; the last step is always printed)

${COMMON_HELP}

exit codes: 0 the answer is exact, 1 it is not, 2 bad usage or input, 130/143 interrupted.

examples:
  sead run addition-base2 --input 1011+110
  sead run parity --random 32 --seed 3 --every 4
  sead run addition-base10 --input 99999999+1 --json`;

export async function cmdRun(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { ...INPUT_OPTIONS, ...SETTLE_OPTIONS, every: { type: "string" } });
  if (values["help"]) return printHelp(RUN_HELP);
  const out = new Output(values);
  const modelName = oneModel(positionals);
  const settle = settleFlags(values);
  const every = intFlag(values, "every", 1, 1e9) ?? 1;
  const { ckpt, task, info } = checkedModel(modelName);
  const { input, enc, shown } = inputFrom(task, values);
  const backend = backendFrom(values);
  const conv = settleRule(enc, settle);

  out.line(`${modelName} (${taskTitle(info)}) on ${enc.height > 1 ? `${fmt(enc.height)} x ${fmt(enc.width)}` : fmt(enc.width)} cells, ${backend.info().device}`);
  out.line(`input:  ${shown}`);
  out.line(`settles when the outputs are unchanged for ${conv.patience} steps and max |h' - h| < ${conv.tol}; at most ${fmt(conv.maxSteps)} steps`);
  out.line("");
  out.line("   step   changed cells   max |h' - h|   wrong cells");
  const row = (s: { step: number; changed: number; maxDelta: number; wrong: number }) =>
    `${fmt(s.step).padStart(7)}   ${fmt(s.changed).padStart(13)}   ${s.maxDelta.toExponential(2).padStart(12)}   ${fmt(s.wrong).padStart(11)}`;
  let lastPrinted = 0;
  const { trace, answer, expected, correct } = await tracedAnswer(backend, ckpt.model, task, input, enc, {
    ...conv,
    onStep: (s) => {
      if (s.step % every === 0 || s.step === 1) {
        out.line(row(s));
        lastPrinted = s.step;
      }
    },
  });
  const last = trace.stats.at(-1);
  if (last && lastPrinted !== last.step) out.line(row(last));
  out.line("");
  out.line(
    trace.converged
      ? `settled after ${fmt(trace.steps)} steps`
      : `did not settle within ${fmt(trace.steps)} steps (raise --max-steps to let it run longer)`,
  );
  out.line(`answer: ${showOutput(task, answer)}`);
  out.line(correct ? `exact:  yes, equal to the exact answer` : `exact:  NO, the exact answer is ${showOutput(task, expected)}`);
  const firstExact = firstExactStep(trace);
  if (correct && firstExact !== undefined) out.line(`every output was already exact from step ${fmt(firstExact)} on`);
  out.doc({
    model: modelName,
    task: info,
    input: shown,
    cells: enc.height * enc.width,
    steps: trace.steps,
    settled: trace.converged,
    answer: showOutput(task, answer, 2000),
    expected: showOutput(task, expected, 2000),
    correct,
    exactFromStep: firstExact ?? null,
    patience: conv.patience,
    tol: conv.tol,
    maxSteps: conv.maxSteps,
    trace: trace.stats,
    backend: backend.info().device,
  });
  return correct ? 0 : 1;
}

/** The first step from which no output is wrong, up to the end of the run. */
function firstExactStep(trace: { stats: { step: number; wrong: number }[]; wrongAtStart: number }): number | undefined {
  let first: number | undefined;
  for (let i = trace.stats.length - 1; i >= 0; i--) {
    if (trace.stats[i]!.wrong > 0) return first;
    first = trace.stats[i]!.step;
  }
  return trace.wrongAtStart === 0 ? 0 : first;
}
