#!/usr/bin/env bash
# System packages the CI run needs beyond Python: Debian's Chromium for the browser tests (tests/e2e, marker
# `browser`; Playwright drives /usr/bin/chromium and never downloads a browser of its own) and fonts for legible
# screenshots; PostgreSQL and Redis for the production-shaped deployment (marker `e2e_celery`: the tests make
# and start their own throwaway servers on 127.0.0.1, so the packages' own services are never started).
# Idempotent and quiet: installs only what is missing, prints one line, shows apt's log on failure.
# Usage (root, or a user with sudo): bash scripts/ci-system-deps.sh
set -euo pipefail

PACKAGES=(chromium fonts-liberation ca-certificates postgresql redis-server)

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ci-system-deps: no apt-get (not Debian/Ubuntu); install by hand: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for package in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)" != "installed" ]; then
    missing+=("$package")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "ci-system-deps: already installed: ${PACKAGES[*]}"
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
  else
    echo "ci-system-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

log=$(mktemp -t ci-system-deps.XXXXXX.log)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Where no policy-rc.d forbids it, installing postgresql or redis-server starts their system services; the tests
# run their own servers, so keep those from starting (101: "action forbidden") for the duration of the install.
policy=/usr/sbin/policy-rc.d
made_policy=
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
  "${SUDO[@]}" chmod 755 "$policy"
  made_policy=1
fi
trap 'rm -f "$log"; if [ -n "$made_policy" ]; then "${SUDO[@]}" rm -f "$policy"; fi' EXIT
if ! { "${SUDO[@]}" apt-get update -qq \
      && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  echo "ci-system-deps: installing ${missing[*]} failed:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
echo "ci-system-deps: installed ${missing[*]} ($(chromium --version 2>/dev/null | head -n 1 || echo 'chromium: no version'))"
