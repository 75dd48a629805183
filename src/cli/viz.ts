/** `sead viz`: the spacetime diagram of one run, or a learned trajectory beside the exact one. */
import { z } from "zod";
import { learnedTrajectory } from "../eval/trace.js";
import { ElementaryTask } from "../tasks/index.js";
import { type HiddenView, runFigure, trajectoryFigure } from "../viz/figures.js";
import { framesFromTrace, gridAnimation, gridStepsSvg } from "../viz/grid2d.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeFigure } from "../viz/render.js";
import { spacetimeSvg } from "../viz/spacetime.js";
import {
  backendFrom,
  checkedModel,
  COMMON_HELP,
  flag,
  fmt,
  intFlag,
  interruptible,
  numberFlag,
  oneModel,
  OUT_OPTION,
  Output,
  parse,
  printHelp,
  requiredOut,
  showInput,
  taskTitle,
  UsageError,
  valueOptions,
} from "./common.js";
import { INPUT_HELP, INPUT_OPTIONS, inputFrom, SETTLE_OPTIONS, settleFlags, settleRule, tracedAnswer } from "./one-input.js";
import { progress } from "./progress.js";

export const VIZ_HELP = `usage: sead viz <model> --input X -o out.png [--show both|hidden|output] [--channel K]
       sead viz <rule model> --random W --generations G -o out.png
       sead viz <2D model> --random N -o out.png (or out.gif)

Draws the spacetime diagram of one run: cells across, steps down (step 0 = the start, h = 0).
The left panel colours the hidden state (by default the three channels that vary most, as red,
green and blue; --channel K shows one channel on a blue-white-red scale), the right panel the
output of every cell at every step, cells that differ from the exact answer in red. The inputs
are drawn above and the exact answer below. Parity runs show the light cone.
A 2D model (multiplication, or a 2D task of your own) is drawn as its grid at a few steps, with
the hidden state below; readout cells are outlined, wrong ones red. -o out.gif animates every step.
For an elementary automaton, --generations G draws the learned trajectory (the model's output
fed back as the next row) beside the exact one, differing cells marked, with the steps each
generation took to settle.

${INPUT_HELP}

options:
  -o, --out FILE   the image: .png (rendered) or .svg; for 2D runs also .gif (animated)
  --show WHAT      both (default), hidden or output
  --channel K      colour one hidden channel (blue -1, white 0, red +1)
  --channels R,G,B the hidden channels shown as red, green, blue
  --generations G  (elementary) draw G generations of the learned trajectory
  --max-steps N    stop a run after N steps (default 2 L + 66); --patience N, --tol X as in sead run
  --scale S        pixels per unit of the PNG (default 2, for print; 1 for small files)

${COMMON_HELP}

limits: at most 1,024 cells across and 2,000 steps or generations down.
exit codes: 0 drawn, 1 the run failed, 2 bad usage or input, 130/143 interrupted.

examples:
  sead viz addition-base2 --input 1011011101+110111 -o addition.png
  sead viz parity --random 48 --seed 2 -o parity.png --show output
  sead viz rule110 --random 128 --generations 120 -o rule110.png`;

const MAX_CELLS = 1024;
const MAX_ROWS = 2000;

export async function cmdViz(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...INPUT_OPTIONS,
    ...SETTLE_OPTIONS,
    ...OUT_OPTION,
    ...valueOptions("show", "channel", "channels", "generations", "scale"),
  });
  if (values["help"]) return printHelp(VIZ_HELP);
  const out = new Output(values);
  const modelName = oneModel(positionals);
  const outPath = requiredOut(values, [".png", ".svg", ".gif"], "needs -o FILE.png (or .svg): where to draw the diagram");
  const show = flag(values, "show", z.enum(["both", "hidden", "output"], { message: "--show must be both, hidden or output" })) ?? "both";
  const channel = intFlag(values, "channel", 0, 4095);
  const channels = flag(
    values,
    "channels",
    z
      .string()
      .regex(/^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*$/, { message: "--channels must be three channel numbers, e.g. 0,1,2" })
      .transform((s) => s.split(",").map((x) => Number(x.trim())) as [number, number, number]),
  );
  if (channel !== undefined && channels !== undefined) throw new UsageError("give --channel K or --channels R,G,B, not both");
  const generations = intFlag(values, "generations", 1, MAX_ROWS);
  const settle = settleFlags(values, MAX_ROWS);
  const scale = numberFlag(values, "scale", { positive: true, max: 8 }) ?? 2;

  const { ckpt, task, info } = checkedModel(modelName);
  const model = ckpt.model;
  const cH = model.spec.cH;
  for (const c of channels ?? (channel !== undefined ? [channel] : [])) {
    if (c >= cH) throw new UsageError(`hidden channel ${c} does not exist: ${modelName} has channels 0 to ${cH - 1}`);
  }
  if (generations !== undefined && !(task instanceof ElementaryTask)) {
    throw new UsageError(`--generations draws trajectories of an elementary automaton; ${modelName} was trained for ${task.name}`);
  }
  const { input, enc, shown } = inputFrom(task, values);
  if (enc.width > MAX_CELLS) throw new UsageError(`the input is ${fmt(enc.width)} cells wide; sead viz draws at most ${fmt(MAX_CELLS)}`);
  if (enc.height > MAX_CELLS) throw new UsageError(`the input is ${fmt(enc.height)} cells tall; sead viz draws at most ${fmt(MAX_CELLS)}`);
  if (outPath.toLowerCase().endsWith(".gif") && model.spec.dims !== 2) throw new UsageError("-o FILE.gif animates 2D runs; draw a 1D run as .png or .svg");
  const backend = backendFrom(values);

  if (generations !== undefined && task instanceof ElementaryTask) {
    const row = input as Uint8Array;
    const bar = progress(out, "viz", generations, "generations", "", 0);
    let t;
    try {
      t = await interruptible((signal) =>
        learnedTrajectory(backend, model, task, row, generations, { signal, ...(settle.maxSteps ? { maxSteps: settle.maxSteps } : {}), onGeneration: (g) => bar.update(g) }),
      );
    } finally {
      bar.stop();
    }
    const title = `${taskTitle(info)}: learned trajectory beside the exact one`;
    const subtitle = `model ${modelName}; ${row.length} cells${task.boundary === "periodic" ? " (periodic row)" : ""}, ${generations} generations, start ${showInput(task, row, 40)}`;
    writeFigure(outPath, spacetimeSvg(trajectoryFigure(task.rule, t, title, subtitle)), scale);
    out.doc({ out: outPath, model: modelName, task: info, cells: row.length, generations, wrongCells: t.wrongCells, firstWrongGeneration: t.firstWrongGeneration, steps: t.steps });
    out.line(`${generations} generations, ${fmt(t.wrongCells)} cells differ from the exact automaton${t.firstWrongGeneration !== null ? ` (first at generation ${t.firstWrongGeneration})` : ""}`);
    out.line(`drawn to ${outPath}`);
    return 0;
  }

  const conv = settleRule(enc, settle);
  conv.maxSteps = Math.min(conv.maxSteps, MAX_ROWS);
  const { trace, correct } = await tracedAnswer(backend, model, task, input, enc, { ...conv, recordOutputs: true, recordHidden: show !== "output" });
  const hidden: HiddenView | undefined = channel !== undefined ? { kind: "channel", channel } : channels ? { kind: "rgb", channels } : undefined;
  const title = `${taskTitle(info)}: ${trace.converged ? `settling in ${trace.steps} steps` : `${trace.steps} steps, not settled`}`;
  const subtitle = `model ${modelName}; input ${shown}; answer ${correct ? "exact" : "WRONG"}`;
  if (model.spec.dims === 2) {
    // A 2D run: the grid itself at a few steps (readout cells outlined, wrong ones red), or
    // every step as an animated GIF.
    const run = { height: enc.height, width: enc.width, frames: framesFromTrace(trace), cH, target: enc.target, cOut: enc.cOut };
    if (outPath.toLowerCase().endsWith(".gif")) writeFileAtomic(outPath, gridAnimation(run));
    else writeFigure(outPath, gridStepsSvg({ ...run, title, subtitle, hidden: show === "output" ? false : (channels ?? undefined) }), scale);
  } else {
    writeFigure(outPath, spacetimeSvg(runFigure(info, enc, trace, { show, hidden, title, subtitle, cone: info.name === "parity" })), scale);
  }
  out.doc({ out: outPath, model: modelName, task: info, cells: enc.height * enc.width, steps: trace.steps, settled: trace.converged, correct });
  out.line(`${trace.converged ? "settled after" : "did not settle within"} ${trace.steps} steps; answer ${correct ? "exact" : "WRONG"}`);
  out.line(`drawn to ${outPath}`);
  return 0;
}
