#!/bin/sh
# Entrypoint of the Murmur service images (run under dumb-init, which forwards signals):
# the root filesystem is read-only, so the folders a service writes are made here under
# /tmp (an emptyDir in a pod), then the command replaces this shell.
set -eu
mkdir -p "${MURMUR_HOME:-/tmp/murmur}"
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
  # One service process tree per container: metric files left by an earlier start of this
  # container (an emptyDir outlives a container restart) belong to dead processes.
  find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -name '*.db' -type f -delete
fi
exec "$@"
