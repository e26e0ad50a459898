#!/usr/bin/env bash
# Install the Debian packages that provide the given commands (or files), only where one is missing.
# Usage: scripts/ensure-packages.sh command:package [/path/to/file:package ...]
set -euo pipefail
missing=()
for pair in "$@"; do
  what="${pair%%:*}"
  if [[ "$what" == /* ]]; then
    [ -e "$what" ] || missing+=("${pair#*:}")
  else
    command -v "$what" >/dev/null 2>&1 || missing+=("${pair#*:}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing: ${missing[*]} (install them; no apt-get here)" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
