#!/bin/sh
# Build-time step of murmur-cassandra: turn the local platform's cassandra.yaml template
# (one local node, tuned for a small machine) into the image's template, whose @NAME@
# placeholders the entrypoint fills from the environment. The tuning (memory, threads,
# timeouts, features) stays the local platform's; what a cluster of pods needs changes:
# addresses, seeds, tokens, snitch, bootstrap and hints.
set -eu
in="$1" out="$2"
sed -e "s|^cluster_name: .*|cluster_name: '@CLUSTER_NAME@'|" \
    -e 's|^num_tokens: .*|num_tokens: @NUM_TOKENS@\nallocate_tokens_for_local_replication_factor: @TOKEN_RF@|' \
    -e '/^initial_token:/d' \
    -e '/^# One token: a single node owns the whole ring/d' \
    -e 's|^listen_address: .*|listen_address: @LISTEN_ADDRESS@|' \
    -e 's|^rpc_address: .*|rpc_address: 0.0.0.0\nbroadcast_rpc_address: @LISTEN_ADDRESS@|' \
    -e 's|\${CASSANDRA_STORAGE_PORT}|7000|g' -e 's|\${CASSANDRA_PORT}|9042|g' \
    -e 's|^endpoint_snitch: .*|endpoint_snitch: GossipingPropertyFileSnitch|' \
    -e 's|- seeds: .*|- seeds: "@SEEDS@"|' \
    -e 's|\${DATA_DIR}|/var/lib/cassandra|g' \
    -e 's|^auto_bootstrap: .*|auto_bootstrap: true|' \
    -e 's|^hinted_handoff_enabled: .*|hinted_handoff_enabled: true|' \
    -e 's|^# --- Single node: no bootstrap, no hints worth keeping, no snapshots.*|# --- A node joining a running cluster streams its ranges; hints cover short outages|' \
    -e 's|^# Rendered from local/conf/cassandra.yaml.tmpl.*|# Rendered by murmur-cassandra from local/conf/cassandra.yaml.tmpl. Apache Cassandra 5.0,|' \
    -e 's|^# tuned for a fast start and a small footprint on a dev box.*|# one pod per node; addresses, seeds and tokens from the environment.|' \
    -e 's|^# --- Auth: off (loopback only).*|# --- Auth: off (reachable only as the NetworkPolicy allows) ---------------------------|' \
    "$in" >"$out"
# Every placeholder of the local template must have been handled.
if grep -n '\${' "$out"; then echo "unhandled placeholder in $in" >&2; exit 1; fi
for key in listen_address broadcast_rpc_address endpoint_snitch num_tokens auto_bootstrap; do
  grep -q "^$key:" "$out" || { echo "$key missing from $out" >&2; exit 1; }
done
