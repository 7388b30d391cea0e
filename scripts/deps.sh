#!/usr/bin/env bash
# Installs the Debian packages Herald builds, runs and tests with, when any is missing.
# Usage: scripts/deps.sh [build|run|test|bench|soak|fuzz]
set -euo pipefail
profile=${1:-test}
packages=(pkg-config librdkafka-dev libhiredis-dev libpq-dev libcurl4-openssl-dev redis-server)
case "$profile" in
  build) ;;
  run) packages+=(redis-tools postgresql python3 kcat) ;;
  # chromium-headless-shell: `herald templates serve`'s pages rendered and screenshotted (TemplatesServeTests).
  test) packages+=(redis-tools postgresql python3 python3-jsonschema python3-yaml python3-aiosmtpd openssl curl python3-prometheus-client prometheus chromium-headless-shell) ;;
  bench) packages+=(redis-tools postgresql kcat time python3 postfix stunnel4 openssl) ;;
  soak) packages+=(redis-tools postgresql python3 python3-aiosmtpd python3-confluent-kafka python3-redis python3-psycopg2) ;;
  # libFuzzer and AddressSanitizer ship with the Swift toolchain (clang's compiler-rt).
  fuzz) ;;
  *) echo "usage: $0 [build|run|test|bench|soak|fuzz]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
