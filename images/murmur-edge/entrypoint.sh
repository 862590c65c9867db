#!/bin/sh
# Entrypoint of murmur-edge: render the local platform's nginx.conf template (the same
# file `make up` renders, so the edge is configured alike everywhere) from the environment
# into /tmp, then nginx as PID 1 (STOPSIGNAL SIGQUIT: graceful, in-flight requests finish).
#
#   MURMUR_GATEWAY_UPSTREAM      host:port[,host:port...] of the gateways (required)
#   MURMUR_RATE_LIMIT            requests/s per bearer token, or per address (default 200)
#   MURMUR_SIGNIN_RATE_LIMIT     sign-ups + sign-ins/s per address (default 10)
#   MURMUR_GATEWAY_FAIL_TIMEOUT  seconds a failed gateway is skipped (default 3)
#   MURMUR_EDGE_PORT / MURMUR_EDGE_STATUS_PORT  API and status listeners (8080 / 8081)
# Any other ${NAME} in the template is taken from MURMUR_NAME.
# `murmur-edge --check` renders with a placeholder upstream and runs `nginx -t`.
set -eu

NGINX_HOME=/tmp/nginx
TEMPLATE=/etc/murmur/nginx.conf.tmpl
CONF="$NGINX_HOME/nginx.conf"

check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; : "${MURMUR_GATEWAY_UPSTREAM:=127.0.0.1:8000}"; fi
if [ -z "${MURMUR_GATEWAY_UPSTREAM:-}" ]; then
  echo "murmur-edge: MURMUR_GATEWAY_UPSTREAM (host:port of the gateway Service) is required" >&2
  exit 1
fi

mkdir -p "$NGINX_HOME/tmp" "$NGINX_HOME/logs"
# The template logs to ${LOG_DIR}/${PROFILE}-nginx-access.log: here that is stdout.
ln -sf /dev/stdout "$NGINX_HOME/logs/edge-nginx-access.log"

upstreams="$(echo "$MURMUR_GATEWAY_UPSTREAM" | tr ',' '\n' | awk -v t="${MURMUR_GATEWAY_FAIL_TIMEOUT:-3}" \
  'NF { printf "%s        server %s max_fails=2 fail_timeout=%ss;", sep, $1, t; sep = "\n" }')"

# The values of the template's placeholders; string.Template's syntax: ${NAME}, and $$ is $.
export TPL_HOST=0.0.0.0 \
  TPL_HTTP_PORT="${MURMUR_EDGE_PORT:-8080}" \
  TPL_STATUS_PORT="${MURMUR_EDGE_STATUS_PORT:-8081}" \
  TPL_NGINX_HOME="$NGINX_HOME" \
  TPL_LOG_DIR="$NGINX_HOME/logs" TPL_RUN_DIR="$NGINX_HOME" TPL_HOME="$NGINX_HOME" \
  TPL_PROFILE=edge \
  TPL_REPO=/etc/murmur \
  TPL_RATE_LIMIT="${MURMUR_RATE_LIMIT:-200}" \
  TPL_SIGNIN_RATE_LIMIT="${MURMUR_SIGNIN_RATE_LIMIT:-10}" \
  TPL_GATEWAY_UPSTREAMS="$upstreams"

awk '
  function value(name,   v) {
    if (("TPL_" name) in ENVIRON) return ENVIRON["TPL_" name]
    if (("MURMUR_" name) in ENVIRON) return ENVIRON["MURMUR_" name]
    printf "murmur-edge: %s: no value for ${%s} (set MURMUR_%s)\n", FILENAME, name, name > "/dev/stderr"
    failed = 1; exit 1
  }
  {
    out = ""; line = $0
    while ((i = index(line, "$")) > 0) {
      out = out substr(line, 1, i - 1); rest = substr(line, i + 1)
      if (substr(rest, 1, 1) == "$") { out = out "$"; line = substr(rest, 2); continue }
      if (substr(rest, 1, 1) == "{" && (j = index(rest, "}")) > 0) {
        out = out value(substr(rest, 2, j - 2)); line = substr(rest, j + 1); continue
      }
      out = out "$"; line = rest
    }
    print out line
  }
  END { if (failed) exit 1 }' "$TEMPLATE" >"$CONF.tmp"
mv "$CONF.tmp" "$CONF"

if [ "$check" = 1 ]; then exec nginx -e stderr -p "$NGINX_HOME" -c "$CONF" -t; fi
exec nginx -e stderr -p "$NGINX_HOME" -c "$CONF" -g 'daemon off;' "$@"
