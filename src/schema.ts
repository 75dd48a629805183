/** zod helpers: parse external input and report every problem with its path. */
import type { z } from "zod";
import { InvalidInputError } from "./errors.js";

/** Formats zod issues as "where.path: message; ...". */
export function formatIssues(error: z.ZodError, where: string): string {
  return error.issues
    .map((i) => {
      const path = [where, ...i.path.map(String)].filter((s) => s !== "").join(".");
      return `${path}: ${i.message}`;
    })
    .join("; ");
}

/** Parses `value` with `schema`, or throws InvalidInputError naming each bad field. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new InvalidInputError(formatIssues(r.error, where));
  return r.data;
}
