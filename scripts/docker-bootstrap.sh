#!/usr/bin/env bash
# Make a Docker engine answer on this machine, or say exactly what to do.
#   - a no-op when `docker info` already works;
#   - on Debian/Ubuntu as root: installs docker.io and debootstrap, starts dockerd
#     in the background and waits until it answers;
#   - anywhere else: prints what to install and exits 1.
# Used by `make setup`, `make test`, `make demo` and .ci/run.
set -euo pipefail

log() { printf 'docker-bootstrap: %s\n' "$*" >&2; }

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Docker engine answers (docker info failed)."
  log "Install Docker Engine (https://docs.docker.com/engine/install/) and start it,"
  log "or make your user a member of the 'docker' group; then run 'evoagent doctor'."
  log "Without Docker, evoagent can run with '--sandbox local' (a subprocess, NOT isolation)."
  exit 1
fi

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd in the background (log: /var/log/evoagent-dockerd.log)"
  # setsid: the engine must outlive the shell (and the CI step) that started it.
  setsid nohup dockerd >/var/log/evoagent-dockerd.log 2>&1 < /dev/null &
fi

for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then
    log "Docker engine is up"
    exit 0
  fi
  sleep 1
done
log "dockerd did not answer within 60 s; last lines of /var/log/evoagent-dockerd.log:"
tail -n 20 /var/log/evoagent-dockerd.log >&2 || true
exit 1
