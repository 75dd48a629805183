/** The page's virtual modules, resolved by scripts/web.ts (a stub that throws when the files are missing). */
declare module "sead-web:wasi" {
  const mod: typeof import("../../index.js");
  export default mod;
}
declare module "sead-web:webgpu" {
  import type { Backend } from "../../src/backend/types.js";
  export function createWebGpuBackend(options?: { maxSessionBytes?: number }): Promise<Backend>;
}
