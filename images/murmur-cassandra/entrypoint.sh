#!/bin/bash
# Entrypoint of murmur-cassandra: render cassandra.yaml and the rack file from the
# environment into /tmp, then the JVM (under tini; SIGTERM drains and stops the node).
#
#   POD_IP                 listen and broadcast address (default: `hostname -i`)
#   CASSANDRA_SEEDS        comma list of seed host names/addresses (default: this node)
#   CASSANDRA_CLUSTER_NAME (murmur), CASSANDRA_DC (dc1), CASSANDRA_RACK (rack1)
#   CASSANDRA_NUM_TOKENS (16), CASSANDRA_HEAP (512M), CASSANDRA_YOUNG (128M)
#   CASSANDRA_RING_DELAY_MS  gossip settling time; the local platform's 1000 ms suits one
#                            node, a multi-node cluster wants e.g. 30000
#   CASSANDRA_JVM_OPTS     extra JVM options (last: they win)
set -euo pipefail

CASSANDRA_HOME=/opt/cassandra
CONF=/tmp/cassandra
mkdir -p "$CONF" /var/lib/cassandra

listen="${POD_IP:-$(hostname -i | awk '{ print $1 }')}"
seeds="${CASSANDRA_SEEDS:-$listen}"
sed -e "s|@CLUSTER_NAME@|${CASSANDRA_CLUSTER_NAME:-murmur}|" \
    -e "s|@NUM_TOKENS@|${CASSANDRA_NUM_TOKENS:-16}|" \
    -e "s|@TOKEN_RF@|${CASSANDRA_TOKEN_RF:-3}|" \
    -e "s|@LISTEN_ADDRESS@|$listen|g" \
    -e "s|@SEEDS@|$seeds|" \
    /etc/murmur/cassandra.yaml.tmpl >"$CONF/cassandra.yaml"
printf 'dc=%s\nrack=%s\nprefer_local=true\n' "${CASSANDRA_DC:-dc1}" "${CASSANDRA_RACK:-rack1}" \
  >"$CONF/cassandra-rackdc.properties"

# The local platform's JVM options for Cassandra 5 on Java 17: one per line, '#' comments,
# and split into words as a shell does (`--add-exports a=b` is two arguments).
set -f
# shellcheck disable=SC2207
jvm_options=($(grep -v -E '^\s*(#|$)' /etc/murmur/cassandra-jvm17.options))
set +f
jamm="$(ls "$CASSANDRA_HOME"/lib/jamm-*.jar | tail -1)"

echo "murmur-cassandra: listen $listen, seeds $seeds, dc ${CASSANDRA_DC:-dc1}/${CASSANDRA_RACK:-rack1}"
cd /tmp
exec java -Xms"${CASSANDRA_HEAP:-512M}" -Xmx"${CASSANDRA_HEAP:-512M}" -Xmn"${CASSANDRA_YOUNG:-128M}" \
  "${jvm_options[@]}" -javaagent:"$jamm" \
  -Dcassandra.config=file://"$CONF"/cassandra.yaml \
  -Dcassandra-rackdc.properties=file://"$CONF"/cassandra-rackdc.properties \
  -Dlogback.configurationFile=/etc/murmur/cassandra-logback.xml \
  -Dcassandra.storagedir=/var/lib/cassandra -Dcassandra.logdir="$CONF" \
  -Dcassandra.jmx.local.port=7199 -Djna.tmpdir=/tmp -Djava.io.tmpdir=/tmp \
  ${CASSANDRA_RING_DELAY_MS:+-Dcassandra.ring_delay_ms=$CASSANDRA_RING_DELAY_MS} \
  ${CASSANDRA_JVM_OPTS:-} \
  -cp "$CASSANDRA_HOME/lib/*" org.apache.cassandra.service.CassandraDaemon "$@"
