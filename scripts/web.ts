/**
 * The browser page (docs/web.md): `buildWeb` bundles web/src/main.ts and the sead layers it
 * uses (tasks, model, run-to-fixed-point, the CPU backend over the WebAssembly build, the
 * WebGPU host) with esbuild for the browser, and copies the page, the shipped models, the
 * WASI module and its worker into one folder; `serveWeb` serves a folder on 127.0.0.1 with the
 * cross-origin isolation headers the WASI loader's SharedArrayBuffer needs.
 *   npm run web               build into dist/web/ and serve on PORT (default 8080)
 *   npm run web -- --build    build only
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join, normalize, resolve, sep } from "node:path";
import { build, type Plugin } from "esbuild";

export const ROOT = resolve(__dirname, "..");

/** The napi-rs WASI build's files at the package root (npm run build:wasi). */
const WASI_LOADER = join(ROOT, "sead.wasi-browser.js");
const WASI_WORKER = join(ROOT, "wasi-worker-browser.mjs");
const WASI_WASM = "sead.wasm32-wasi.wasm";

export interface BuildReport {
  outDir: string;
  /** Whether the WASI build was found and bundled (the wasm backend works). */
  wasm: boolean;
  models: string[];
}

/**
 * Resolves the page's virtual module "sead-web:wasi" to the napi-rs browser loader of the WASI
 * build, or to a stub that throws a clear error when the build is missing; and replaces src/backend/native-node.ts, the Node loader
 * of the native module, with a browser stub (the page hands the module over itself).
 */
function seadPlugin(have: { wasm: boolean }): Plugin {
  return {
    name: "sead-web",
    setup(b) {
      b.onResolve({ filter: /^sead-web:wasi$/ }, () => (have.wasm ? { path: WASI_LOADER } : { path: "wasi", namespace: "sead-missing" }));
      b.onLoad({ filter: /.*/, namespace: "sead-missing" }, () => ({
        contents: `throw new Error("this page was built without the WebAssembly build of sead (run npm run build:wasi, then npm run web)");`,
        loader: "js",
      }));
      b.onResolve({ filter: /[/\\]native-node\.js$/ }, (args) =>
        args.importer.includes(`${sep}src${sep}backend${sep}`) ? { path: join(ROOT, "web", "src", "native-browser.ts") } : undefined,
      );
    },
  };
}

/** Builds the page into `outDir` (emptied first). */
export async function buildWeb(outDir: string, options: { minify?: boolean } = {}): Promise<BuildReport> {
  const have = { wasm: existsSync(WASI_LOADER) && existsSync(WASI_WORKER) && existsSync(join(ROOT, WASI_WASM)) };
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(join(outDir, "models"), { recursive: true });
  const common = {
    bundle: true,
    platform: "browser" as const,
    format: "esm" as const,
    target: "es2022",
    sourcemap: true,
    minify: options.minify ?? true,
    logLevel: "warning" as const,
    loader: { ".wgsl": "text" as const },
    // The browser build of the runtime (no Node APIs).
    conditions: ["browser", "import"],
  };
  await build({
    ...common,
    entryPoints: { main: join(ROOT, "web", "src", "main.ts"), engine: join(ROOT, "web", "src", "engine.ts") },
    outdir: outDir,
    // main.js is the UI, engine.js the Web Worker that computes (main.ts starts it with
    // new URL("./engine.js", import.meta.url)). The WASI loader is a chunk of its own, loaded
    // only for the wasm backend; every chunk sits next to main.js, so the loader's new URL("./sead.wasm32-wasi.wasm", import.meta.url) and
    // new URL("./wasi-worker-browser.mjs", import.meta.url) find the files copied below.
    splitting: true,
    chunkNames: "[name]-[hash]",
    plugins: [seadPlugin(have)],
  });
  if (have.wasm) {
    // The worker imports @napi-rs/wasm-runtime by name: bundled as its own entry.
    await build({ ...common, entryPoints: [WASI_WORKER], outfile: join(outDir, "wasi-worker-browser.mjs") });
    copyFileSync(join(ROOT, WASI_WASM), join(outDir, WASI_WASM));
  }
  for (const f of ["index.html", "style.css"]) copyFileSync(join(ROOT, "web", f), join(outDir, f));
  const models = readdirSync(join(ROOT, "models"))
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -".json".length))
    .sort();
  for (const m of models) copyFileSync(join(ROOT, "models", `${m}.json`), join(outDir, "models", `${m}.json`));
  writeFileSync(join(outDir, "models", "index.json"), JSON.stringify(models) + "\n");
  return { outDir, ...have, models };
}

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".svg": "image/svg+xml",
};

export interface WebServer {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/**
 * Serves `dir` on 127.0.0.1:`port` (0: a free port). Every response carries
 * Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp, which
 * make the page cross-origin isolated: the WASI loader's shared WebAssembly memory
 * (SharedArrayBuffer) exists only there.
 */
export function serveWeb(dir: string, port = 0): Promise<WebServer> {
  const root = resolve(dir);
  const server = createServer((req, res) => {
    const headers = {
      "Cross-Origin-Opener-Policy": "same-origin",
      "Cross-Origin-Embedder-Policy": "require-corp",
      "Cross-Origin-Resource-Policy": "same-origin",
      "Cache-Control": "no-cache",
    };
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      res.writeHead(400, headers).end("bad request\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...headers, Allow: "GET, HEAD" }).end();
      return;
    }
    let file = normalize(join(root, path));
    if (file !== root && !file.startsWith(root + sep)) {
      res.writeHead(403, headers).end("forbidden\n");
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...headers, "Content-Type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    const body = readFileSync(file);
    res.writeHead(200, { ...headers, "Content-Type": MIME[extname(file)] ?? "application/octet-stream", "Content-Length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  return new Promise((resolveServer, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const p = (server.address() as AddressInfo).port;
      resolveServer({
        server,
        port: p,
        url: `http://127.0.0.1:${p}/`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

async function main(): Promise<void> {
  const outDir = join(ROOT, "dist", "web");
  const t0 = performance.now();
  const r = await buildWeb(outDir);
  console.log(
    `built ${outDir} in ${Math.round(performance.now() - t0)} ms: models ${r.models.join(", ")}; ` +
      `wasm backend ${r.wasm ? "included" : "MISSING (run npm run build:wasi)"}`,
  );
  if (process.argv.includes("--build")) return;
  const portText = process.env["PORT"] ?? "8080";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, got ${JSON.stringify(portText)}`);
  const s = await serveWeb(outDir, port);
  console.log(`serving ${outDir} at ${s.url} (Ctrl-C stops)`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    console.error(`sead web: ${(e as Error).message}`);
    process.exit(1);
  });
}
