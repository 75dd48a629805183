/** The page's virtual module of the WASI build's browser loader, resolved by scripts/web.ts (a stub that throws when the build is missing). */
declare module "sead-web:wasi" {
  const mod: typeof import("../../index.js");
  export default mod;
}
