#!/usr/bin/env bash
# Packs sead the way it is published (napi-rs per-platform layout: the main package plus
# sead-linux-x64-gnu holding the prebuilt binary, named as an optional dependency), installs
# both tarballs into an empty project, and uses the package there with no Rust toolchain on
# PATH: the API from JavaScript and the `sead` command, then the API again forced onto the
# WebAssembly (WASI) fallback the main package carries for platforms without a prebuilt binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# napi's create-npm-dirs only writes inside the project: stage there (git-ignored).
work="$root/.pack-test"
rm -rf "$work"
mkdir -p "$work"
# The app goes outside the repo so nothing resolves through the repo's node_modules.
app_root=$(mktemp -d)
trap 'rm -rf "$work" "$app_root"' EXIT
test -f sead.linux-x64-gnu.node || { echo "pack-test: build first (npm run build)"; exit 1; }
test -f sead.wasm32-wasi.wasm && test -f sead.wasi.cjs || { echo "pack-test: build the WASI fallback first (npm run build:wasi)"; exit 1; }
version=$(node -p 'require("./package.json").version')

# The platform package, as `napi create-npm-dirs` + `napi artifacts` make it.
npx napi create-npm-dirs --npm-dir "$work/npm" >/dev/null
cp sead.linux-x64-gnu.node "$work/npm/linux-x64-gnu/"
(cd "$work/npm/linux-x64-gnu" && npm pack --silent --pack-destination "$work" >/dev/null)

# The main package, with the optional dependency `napi prepublish` adds at publish time.
mkdir "$work/main"
npm pack --silent --pack-destination "$work/main" >/dev/null
tar -xzf "$work/main/sead-$version.tgz" -C "$work/main"
node -e '
  const fs = require("fs"); const p = process.argv[1];
  const pkg = JSON.parse(fs.readFileSync(p, "utf8"));
  pkg.optionalDependencies = { "sead-linux-x64-gnu": pkg.version };
  fs.writeFileSync(p, JSON.stringify(pkg, null, 2));' "$work/main/package/package.json"
(cd "$work/main/package" && npm pack --silent --pack-destination "$work" >/dev/null)
ls -l "$work"/*.tgz
# The main package carries the WASI fallback: the module and napi's Node loader for it.
tar -tzf "$work/sead-$version.tgz" > "$work/contents.txt"
for f in sead.wasm32-wasi.wasm sead.wasi.cjs wasi-worker.mjs index.js; do
  grep -qx "package/$f" "$work/contents.txt" || { echo "pack-test: the package lacks $f"; exit 1; }
done

# Install into an empty project and use it with a PATH that has node but no cargo/rustc.
mkdir "$app_root/app"
cd "$app_root/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund "$work/sead-linux-x64-gnu-$version.tgz" "$work/sead-$version.tgz"
! env PATH=/usr/bin:/bin which cargo >/dev/null 2>&1 || { echo "pack-test: cargo is in /usr/bin, cannot prove the no-Rust install"; exit 1; }
env -i PATH=/usr/bin:/bin HOME="$app_root" node -e '
  const sead = require("sead");
  const { model } = sead.loadModel("addition-base2");
  const task = sead.additionTask({ base: 2 });
  sead.solve(sead.createBackend(), model, task, [{ a: "1011", b: "0111" }]).then((r) => {
    if (r.answers[0] !== "10010" || !r.correct[0]) throw new Error("wrong sum " + r.answers[0]);
    console.log("pack-test: require(\"sead\") works without Rust: 1011 + 0111 = " + r.answers[0]);
  });'
env -i PATH=/usr/bin:/bin HOME="$app_root" ./node_modules/.bin/sead add 12345678901234567890 98765432109876543210 --base 10
# The WASI fallback, forced (NAPI_RS_FORCE_WASI=error: load sead.wasi.cjs or fail, never the
# native binary), as a platform without a prebuilt binary gets it.
env -i PATH=/usr/bin:/bin HOME="$app_root" NAPI_RS_FORCE_WASI=error NODE_NO_WARNINGS=1 node -e '
  const sead = require("sead");
  const n = require("sead/index.js");
  if (n.__napiBindingTarget !== "wasm32-wasi") throw new Error("loaded " + n.__napiBindingTarget + ", not the WASI build");
  const { model } = sead.loadModel("addition-base2");
  const task = sead.additionTask({ base: 2 });
  const backend = sead.createBackend({ backend: "auto" });
  sead.solve(backend, model, task, [{ a: "1011", b: "0111" }]).then((r) => {
    if (r.answers[0] !== "10010" || !r.correct[0]) throw new Error("wrong sum " + r.answers[0]);
    console.log("pack-test: the WASI fallback works (" + backend.info().device + "): 1011 + 0111 = " + r.answers[0]);
  });'
echo "pack-test: ok"
