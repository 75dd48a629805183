#!/usr/bin/env bash
# Installs what sead's GPU backend needs on a Debian bookworm machine without a GPU: the
# Vulkan loader (libvulkan1) and Mesa's software Vulkan driver, lavapipe (the "llvmpipe"
# adapter), from bookworm-backports (Mesa 25; bookworm's own Mesa 22.3 is too old for
# WebGPU implementations). Run as root. Idempotent: does nothing when lavapipe's ICD file is
# already there, and adds the backports source only when it is missing.
#
#   sudo scripts/install-gpu-deps.sh            # CI (.ci/run) and development machines
#   SEAD_GPU_DEPS_FORCE=1 scripts/install-gpu-deps.sh   # reinstall even if present
set -euo pipefail

ICD_GLOB="/usr/share/vulkan/icd.d/lvp_icd*.json"

have_icd() { compgen -G "$ICD_GLOB" >/dev/null; }
# Not `ldconfig -p | grep -q`: grep quits at the first match, and on a machine with many
# libraries ldconfig then dies of SIGPIPE, which pipefail turns into "not installed".
have_loader() { grep -q 'libvulkan\.so\.1' <<<"$(ldconfig -p 2>/dev/null)"; }
have_lavapipe() { have_icd && have_loader; }

if [[ "${SEAD_GPU_DEPS_FORCE:-0}" != "1" ]] && have_lavapipe; then
  echo "install-gpu-deps: lavapipe is already installed ($(ls $ICD_GLOB | tr '\n' ' ')); nothing to do"
  exit 0
fi

if [[ "$(id -u)" != "0" ]]; then
  echo "install-gpu-deps: must run as root (it calls apt-get); try: sudo $0" >&2
  exit 1
fi

if ! grep -qs '^VERSION_CODENAME=bookworm' /etc/os-release; then
  echo "install-gpu-deps: this script is written for Debian bookworm; on another system install" >&2
  echo "  a Vulkan driver (for a machine without a GPU: Mesa's lavapipe, package mesa-vulkan-drivers," >&2
  echo "  Mesa 24 or newer) and the Vulkan loader (libvulkan1)." >&2
  exit 1
fi

# The backports source: only added when no apt source already names bookworm-backports.
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "install-gpu-deps: adding bookworm-backports to /etc/apt/sources.list.d/bookworm-backports.list"
  echo "deb http://deb.debian.org/debian bookworm-backports main" \
    > /etc/apt/sources.list.d/bookworm-backports.list
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -t bookworm-backports mesa-vulkan-drivers
apt-get install -y -q --no-install-recommends libvulkan1 vulkan-tools

if ! have_icd; then
  echo "install-gpu-deps: installed, but no lavapipe ICD matches $ICD_GLOB" >&2
  exit 1
fi
if ! have_loader; then
  echo "install-gpu-deps: installed, but ldconfig does not list the Vulkan loader libvulkan.so.1" >&2
  exit 1
fi
echo "install-gpu-deps: done: $(ls $ICD_GLOB | tr '\n' ' ')"
if command -v vulkaninfo >/dev/null; then
  vulkaninfo --summary 2>/dev/null | grep -E 'deviceName|driverInfo|apiVersion' || true
fi
