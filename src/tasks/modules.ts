/**
 * Loading a user's task modules (the CLI's --tasks and a config's "taskModules"): a module
 * exports one or more task definitions, as its default export (a definition or an array of
 * them) or as named exports; each is registered. ES modules and CommonJS both load; a
 * TypeScript module needs a TypeScript loader in Node (e.g. node --import=tsx).
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { InvalidInputError } from "../errors.js";
import { registerTask, type TaskDefinition } from "./registry.js";

function looksLikeDefinition(v: unknown): v is TaskDefinition {
  return typeof v === "object" && v !== null && typeof (v as { name?: unknown }).name === "string" && typeof (v as { create?: unknown }).create === "function";
}

/** The definitions a loaded module exports, by its default export or named ones. */
function definitionsIn(mod: Record<string, unknown>): TaskDefinition[] {
  const found = new Set<TaskDefinition>();
  const add = (v: unknown) => {
    if (Array.isArray(v)) v.filter(looksLikeDefinition).forEach((d) => found.add(d));
    else if (looksLikeDefinition(v)) found.add(v);
  };
  for (const v of Object.values(mod)) add(v);
  // CommonJS seen through import(): module.exports is the default export.
  const dflt = mod["default"];
  if (typeof dflt === "object" && dflt !== null && !Array.isArray(dflt) && !looksLikeDefinition(dflt)) {
    for (const v of Object.values(dflt as Record<string, unknown>)) add(v);
  }
  return [...found];
}

/**
 * Imports each module (paths relative to `base`, default the working folder) and registers
 * the task definitions it exports. Returns the names registered. A module that is missing,
 * fails to load or exports no definition is an InvalidInputError naming it.
 */
export async function loadTaskModules(paths: readonly string[], base = process.cwd()): Promise<string[]> {
  const names: string[] = [];
  for (const p of paths) {
    const full = resolve(base, p);
    if (!existsSync(full)) throw new InvalidInputError(`task module ${p} does not exist (looked for ${full})`);
    let mod: Record<string, unknown>;
    try {
      mod = (await import(pathToFileURL(full).href)) as Record<string, unknown>;
    } catch (e) {
      throw new InvalidInputError(`task module ${p} failed to load: ${(e as Error)?.message ?? String(e)}`, { cause: e });
    }
    const defs = definitionsIn(mod);
    if (defs.length === 0) {
      throw new InvalidInputError(`task module ${p} exports no task definition (an object with name, summary, options and create; see examples/)`);
    }
    for (const d of defs) {
      registerTask(d);
      names.push(d.name);
    }
  }
  return names;
}
