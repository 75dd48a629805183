/** zod helpers: parse external input and report every problem with its path. */
import type { z } from "zod";
import { InvalidInputError } from "./errors.js";

/**
 * Formats zod issues as one line, "where.path: message; ...": array indices as [k], unknown
 * keys named ('unknown key "bogus"'). The one formatter for every zod error sead reports.
 */
export function formatIssues(error: z.ZodError, where = ""): string {
  return error.issues
    .map((i) => {
      const path = i.path.reduce<string>((p, k) => (typeof k === "number" ? `${p}[${k}]` : p ? `${p}.${String(k)}` : String(k)), where);
      let msg = i.message;
      if (i.code === "unrecognized_keys") msg = `unknown key${i.keys.length > 1 ? "s" : ""} ${i.keys.map((k) => JSON.stringify(k)).join(", ")}`;
      return path ? `${path}: ${msg}` : msg;
    })
    .join("; ");
}

/** Parses `value` with `schema`, or throws InvalidInputError naming each bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new InvalidInputError(formatIssues(r.error, where));
  return r.data;
}
