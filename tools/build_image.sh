#!/usr/bin/env bash
# Build the Tourline image, and with --smoke run it: /healthz must turn 200 and a SIGTERM
# (docker/podman stop) must end it with exit code 0.
#
#   tools/build_image.sh [--smoke] [--builder docker|podman] [--tag tourline:latest]
#
# With a Docker engine that reaches Docker Hub this is a plain `docker build`. Where there
# is none (Tourline's development machines reach only PyPI, npm and Debian's archive),
# it uses podman from Debian and a base image made from Debian's archive: a debootstrapped
# bookworm rootfs with python3 and python3-venv, imported as localhost/tourline-base.
# Nothing here is committed: the rootfs and images live in WORK_DIR and podman's storage.
#
# Environment: WORK_DIR (default /var/tmp/tourline-image), BASE_IMAGE (skip the rootfs and
# build FROM this image), PIP_CERT (a CA bundle pip must trust, for a TLS-inspecting proxy;
# mounted into the build), SMOKE_PORT (default 18431), SMOKE_TIMEOUT_S (default 300).
set -euo pipefail

cd "$(dirname "$0")/.."
TAG=tourline:latest
SMOKE=0
BUILDER=""
WORK_DIR=${WORK_DIR:-/var/tmp/tourline-image}
SMOKE_PORT=${SMOKE_PORT:-18431}
SMOKE_TIMEOUT_S=${SMOKE_TIMEOUT_S:-300}

while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --builder) BUILDER=$2; shift ;;
    --tag) TAG=$2; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -z "$BUILDER" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then BUILDER=docker; else BUILDER=podman; fi
fi

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# podman here: runc (crun refuses this kernel's hybrid cgroup layout), rlimits lowered
# explicitly (the sandbox refuses to raise them to podman's defaults).
ENGINE=(docker)
RUN_FLAGS=()
if [ "$BUILDER" = podman ]; then
  if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap
  fi
  ENGINE=(podman --runtime runc)
  RUN_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)
fi

BUILD_FLAGS=()
if [ -z "${BASE_IMAGE:-}" ] && [ "$BUILDER" = podman ]; then
  BASE_IMAGE=localhost/tourline-base:bookworm
  if ! podman image exists "$BASE_IMAGE"; then
    command -v debootstrap >/dev/null || as_root apt-get install -y -qq debootstrap
    rootfs="$WORK_DIR/rootfs"
    if [ ! -x "$rootfs/usr/bin/python3" ]; then
      echo "debootstrap: a Debian bookworm rootfs with python3 in $rootfs (about 2 min)"
      as_root rm -rf "$rootfs"
      as_root mkdir -p "$WORK_DIR"
      as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$rootfs" http://deb.debian.org/debian >"$WORK_DIR/debootstrap.log"
      as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    fi
    as_root tar -C "$rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
  fi
fi
[ -n "${BASE_IMAGE:-}" ] && BUILD_FLAGS+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
if [ "$BUILDER" = podman ]; then
  BUILD_FLAGS+=(--network host --format docker "${RUN_FLAGS[@]}")  # docker format keeps HEALTHCHECK
  if [ -n "${PIP_CERT:-}" ]; then
    BUILD_FLAGS+=(-v "$PIP_CERT:/etc/ssl/pip-ca.crt:ro" --build-arg PIP_CERT=/etc/ssl/pip-ca.crt)
  fi
fi

started=$(date +%s)
"${ENGINE[@]}" build "${BUILD_FLAGS[@]}" -t "$TAG" .
echo "built $TAG in $(($(date +%s) - started)) s; size: $("${ENGINE[@]}" image inspect "$TAG" --format '{{.Size}}' | awk '{printf "%.2f GB", $1/1e9}')"

[ "$SMOKE" = 1 ] || exit 0

name="tourline-smoke-$$"
cleanup() { "${ENGINE[@]}" rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
"${ENGINE[@]}" run -d --name "$name" "${RUN_FLAGS[@]}" -p "127.0.0.1:$SMOKE_PORT:8000" \
  -e TOURLINE_DRAIN_S=5 "$TAG" >/dev/null
echo "smoke: waiting for /healthz on 127.0.0.1:$SMOKE_PORT (models load first)"
deadline=$(($(date +%s) + SMOKE_TIMEOUT_S))
until [ "$(curl -s -o /dev/null -w '%{http_code}' -m 5 "http://127.0.0.1:$SMOKE_PORT/healthz")" = 200 ]; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    "${ENGINE[@]}" logs "$name" | tail -30
    echo "smoke: FAILED, /healthz not 200 within $SMOKE_TIMEOUT_S s" >&2
    exit 1
  fi
  sleep 2
done
echo "smoke: healthy after $(($(date +%s) + SMOKE_TIMEOUT_S - deadline)) s; /readyz: $(curl -s -m 5 "http://127.0.0.1:$SMOKE_PORT/readyz")"
echo "smoke: runs as $("${ENGINE[@]}" exec "$name" id -un), PID 1 is $("${ENGINE[@]}" exec "$name" cat /proc/1/cmdline | tr '\0' ' ')"
echo "smoke: PID 1 $("${ENGINE[@]}" exec "$name" grep VmRSS /proc/1/status | tr -s ' \t' ' ')"
if [ "$BUILDER" = podman ]; then  # the image's own HEALTHCHECK command, run once
  "${ENGINE[@]}" healthcheck run "$name" && echo "smoke: the image's HEALTHCHECK passes"
fi
"${ENGINE[@]}" stop -t 30 "$name" >/dev/null
code=$("${ENGINE[@]}" inspect "$name" --format '{{.State.ExitCode}}')
"${ENGINE[@]}" logs "$name" 2>&1 | grep -E "stopping|Finished server process" || true
if [ "$code" != 0 ]; then
  echo "smoke: FAILED, exit code $code after SIGTERM" >&2
  exit 1
fi
echo "smoke: SIGTERM drained and exited 0"
