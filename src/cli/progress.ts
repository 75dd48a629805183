/**
 * Progress bars (cli-progress) on stderr with rate and ETA, drawn only when the output is a
 * terminal; otherwise a plain line now and then, so logs of long runs still show progress.
 */
import { MultiBar, Presets } from "cli-progress";
import type { Output } from "./common.js";

export interface Progress {
  /** Sets the count done and the extra fields shown (e.g. { loss: "0.0312" }). */
  update(done: number, fields?: Record<string, string>): void;
  /** Prints a line above the bar (or plainly, with no bar). */
  log(line: string): void;
  stop(): void;
}

/**
 * A bar counting `total` units. `label` names the work, `unit` the units ("steps"); `extra`
 * is a cli-progress format fragment for the fields given to update, e.g. "loss {loss}".
 * With no terminal, prints `every` fraction of the work as a line (0 = never). `showCounts`
 * false leaves the raw counts and rate out of the bar (when the units are only for the ETA).
 */
export function progress(out: Output, label: string, total: number, unit: string, extra = "", every = 0.1, showCounts = true): Progress {
  const started = Date.now();
  let startValue: number | undefined;
  if (out.interactive) {
    // A MultiBar (of one bar) because it can print lines above the bar and keep drawing it.
    const multi = new MultiBar(
      {
        format: `${label} {bar} {percentage}%${showCounts ? ` | {value}/{total} ${unit} | {rate} ${unit}/s` : ""} | ETA {eta_formatted}${extra ? ` | ${extra}` : ""}`,
        hideCursor: true,
        barsize: 28,
        etaBuffer: 50,
        fps: 8,
        clearOnComplete: true,
        stopOnComplete: false,
        // Signals are ours to handle: the command saves what it should, then stops the bar.
        gracefulExit: false,
      },
      Presets.shades_classic,
    );
    const bar = multi.create(total, 0, { rate: "-" });
    let stopped = false;
    return {
      update(done, fields = {}) {
        if (stopped) return;
        if (startValue === undefined) startValue = done;
        const secs = (Date.now() - started) / 1000;
        const rate = secs > 0 ? (done - startValue) / secs : 0;
        bar.update(done, { ...fields, rate: rate >= 100 ? rate.toFixed(0) : rate.toFixed(1) });
      },
      log(line) {
        if (stopped) return out.line(line);
        multi.log(line + "\n");
        multi.update();
      },
      stop() {
        if (stopped) return;
        stopped = true;
        multi.stop();
      },
    };
  }
  // No terminal: a plain line each `every` of the work, and only once 5 s have passed since
  // the last, so short runs print nothing and logs of long ones stay short.
  let next = every > 0 ? every : Infinity;
  let lastLine = started;
  return {
    update(done, fields = {}) {
      if (startValue === undefined) startValue = done;
      if (done / total + 1e-12 < next) return;
      while (done / total + 1e-12 >= next) next += every;
      if (Date.now() - lastLine < 5000) return;
      lastLine = Date.now();
      const secs = (Date.now() - started) / 1000;
      const rate = secs > 0 ? (done - startValue) / secs : 0;
      const eta = rate > 0 ? (total - done) / rate : NaN;
      const tail = Object.entries(fields)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      out.line(
        `${label}: ${done}/${total} ${unit} (${Math.round((100 * done) / total)}%), ${rate.toFixed(rate >= 100 ? 0 : 1)} ${unit}/s` +
          (Number.isFinite(eta) && done < total ? `, ETA ${Math.round(eta)} s` : "") +
          (tail ? `, ${tail}` : ""),
      );
    },
    log(line) {
      out.line(line);
    },
    stop() {},
  };
}
