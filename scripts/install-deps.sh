#!/usr/bin/env bash
# Installs the system packages Hypertrain builds against, only those that are missing.
# Safe to repeat; needs root (or sudo) the first time on a fresh machine.
set -euo pipefail

packages=(libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libopenblas-dev liblapacke-dev zlib1g-dev libsqlite3-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
