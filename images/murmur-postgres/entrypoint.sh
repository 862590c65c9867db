#!/bin/bash
# Entrypoint of murmur-postgres: initdb on first start (superuser POSTGRES_USER, password
# POSTGRES_PASSWORD, scram-sha-256 from the pod network, database POSTGRES_DB), then the server as PID 1
# (STOPSIGNAL SIGINT: a fast shutdown, which does not wait for pooled clients to leave).
# Extra arguments go to postgres, e.g. `-c work_mem=8MB`.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
POSTGRES_USER="${POSTGRES_USER:-murmur}"
PGDATA="${PGDATA:-/var/lib/postgresql/data/pgdata}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "murmur-postgres: POSTGRES_PASSWORD is required to initialise $PGDATA" >&2
    exit 1
  fi
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA"
  pwfile="$(mktemp /tmp/pg-initdb-pw.XXXXXX)"
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  echo "murmur-postgres: initialising $PGDATA (superuser $POSTGRES_USER)"
  "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 --no-instructions >/dev/null
  rm -f "$pwfile"
  trap - EXIT
  # The application's database exists from the first start, so the users service is ready
  # as soon as Postgres answers (its migrations run later, as a hook of the chart).
  if [ -n "${POSTGRES_DB:-}" ] && [ "$POSTGRES_DB" != postgres ]; then
    printf 'CREATE DATABASE "%s";\n' "${POSTGRES_DB//\"/}" \
      | "$BIN/postgres" --single -D "$PGDATA" -c unix_socket_directories=/tmp postgres >/dev/null
  fi
  # initdb allows loopback only; clients come from the pod network.
  printf '%s\n' "# Added by murmur-postgres: clients on the pod network, with a password." \
    "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" \
    >>"$PGDATA/pg_hba.conf"
fi
# A volume whose group is set by fsGroup arrives group-writable; postgres insists on 0700.
chmod 700 "$PGDATA"

exec "$BIN/postgres" -D "$PGDATA" \
  -c listen_addresses='*' \
  -c unix_socket_directories=/tmp \
  -c shared_buffers="${POSTGRES_SHARED_BUFFERS:-64MB}" \
  -c max_connections="${POSTGRES_MAX_CONNECTIONS:-300}" \
  "$@"
