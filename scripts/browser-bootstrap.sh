#!/usr/bin/env bash
# Install the browser the UI tests drive: Debian's chromium and its chromium-driver.
#   - a no-op when both are there;
#   - on Debian/Ubuntu as root: apt-get installs them;
#   - anywhere else: prints what to install and exits 1.
# Used by `make setup` (and so by `make test` and .ci/run).
set -euo pipefail

log() { printf 'browser-bootstrap: %s\n' "$*" >&2; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  log "chromium and chromium-driver are missing: install them (Debian: apt-get install"
  log "chromium chromium-driver) to run the browser tests of 'evoagent ui'."
  exit 1
fi
log "installing chromium chromium-driver (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
command -v chromedriver >/dev/null 2>&1 || { log "chromedriver is still missing"; exit 1; }
