/**
 * No `any` in the tests: every test/**\/*.ts file is parsed with the TypeScript compiler and
 * each `any` keyword in a type (`: any`, `as any`, `<any>`, `any[]`, `Record<string, any>`, ...)
 * fails this test, naming file:line. Comments and strings are not code to the parser, so the
 * word "any" in prose or a test title is not flagged. This stands in for a lint rule (the
 * project has no ESLint), so a new `any` fails CI (`npm test` runs this file).
 */
import test from "ava";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const ROOT = join(__dirname, "..");
const TEST_DIR = join(ROOT, "test");

/** The .ts files under `dir`, recursively, sorted. */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== "node_modules") out.push(...tsFiles(path));
    } else if (/\.[cm]?ts$/.test(e.name) && !e.name.endsWith(".d.ts")) {
      out.push(path);
    }
  }
  return out.sort();
}

/** The 1-based lines of `source` where the type `any` is written. */
function anyLines(fileName: string, source: string): number[] {
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const lines: number[] = [];
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.AnyKeyword) lines.push(sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return lines;
}

test("the detector flags each form of the type any, and not the word in comments or strings", (t) => {
  const flagged = [
    "let a: any;",
    "const b = 1 as any;",
    "const c = <any>1;",
    "let d: any[] = [];",
    "let e: Record<string, any> = {};",
    "function f(x: number): any { return x; }",
  ];
  flagged.forEach((line, i) => t.deepEqual(anyLines("flagged.ts", line), [1], `${i}: ${line}`));
  const clean = [
    "// a comment: any Error will do, as any reader knows; <any> any[]",
    "/* as any */ const a = 1;",
    'const b = "train: any config as any";',
    "const c = `<any> ${1} any[]`;",
    "const d = /: any/;",
    "const any = 1; const e = any;",
    "let f: unknown;",
  ];
  clean.forEach((line) => t.deepEqual(anyLines("clean.ts", line), [], line));
});

test("no test file uses the type any", (t) => {
  const files = tsFiles(TEST_DIR);
  t.true(files.some((f) => f.endsWith("no-any.test.ts")), "the scan sees this file too");
  const found: string[] = [];
  for (const file of files) {
    for (const line of anyLines(file, readFileSync(file, "utf8"))) found.push(`${relative(ROOT, file)}:${line}`);
  }
  t.deepEqual(found, [], `the type any is used at:\n${found.join("\n")}\nwrite the real type (or unknown, narrowed) instead`);
});
