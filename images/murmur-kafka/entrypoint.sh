#!/bin/bash
# Entrypoint of murmur-kafka: Apache Kafka in KRaft combined mode (each node is broker and
# controller). The node id is the StatefulSet ordinal (the number ending $HOSTNAME); the
# controller quorum is nodes 0..KAFKA_REPLICAS-1, each reached as
# <statefulset>-<n>.$KAFKA_HEADLESS_SERVICE. Storage is formatted on first start.
#
#   KAFKA_CLUSTER_ID (required)      the cluster id every node formats with
#   KAFKA_REPLICAS (1)               nodes in the StatefulSet (= controller voters)
#   KAFKA_HEADLESS_SERVICE           FQDN of the headless Service (unset: one node, no DNS)
#   KAFKA_ADVERTISED_HOST            the name clients are told (default: the pod's DNS name)
#   KAFKA_DEFAULT_REPLICATION_FACTOR (min(3, replicas)), KAFKA_MIN_INSYNC_REPLICAS
#   (2 from 3 replicas, else 1), KAFKA_NUM_PARTITIONS (6), KAFKA_HEAP_OPTS (-Xms384m -Xmx384m)
# Settings and log levels are the local platform's (rendered into the image); extra
# arguments go to kafka.Kafka as `--override name=value`.
set -euo pipefail

KAFKA_HOME=/opt/kafka
DATA=/var/lib/kafka/data
CONF_DIR=/tmp/kafka
CONF="$CONF_DIR/server.properties"

if [ -z "${KAFKA_CLUSTER_ID:-}" ]; then
  echo "murmur-kafka: KAFKA_CLUSTER_ID is required (22 characters of URL-safe base64)" >&2
  exit 1
fi

host="${HOSTNAME:-$(hostname)}"
node_id="${KAFKA_NODE_ID:-${host##*-}}"
[[ "$node_id" =~ ^[0-9]+$ ]] || node_id=0
statefulset="${host%-*}"
replicas="${KAFKA_REPLICAS:-1}"

# How node n is reached by the other nodes and by clients.
peer() {
  if [ -n "${KAFKA_HEADLESS_SERVICE:-}" ]; then echo "$statefulset-$1.$KAFKA_HEADLESS_SERVICE"
  elif [ "$replicas" = 1 ]; then echo "localhost"
  else echo "murmur-kafka: KAFKA_HEADLESS_SERVICE is required with KAFKA_REPLICAS > 1" >&2; exit 1
  fi
}
voters=""
for ((n = 0; n < replicas; n++)); do voters+="${voters:+,}$n@$(peer "$n"):9093"; done
if [ -n "${KAFKA_ADVERTISED_HOST:-}" ]; then advertised="$KAFKA_ADVERTISED_HOST"
elif [ -n "${KAFKA_HEADLESS_SERVICE:-}" ]; then advertised="$(peer "$node_id")"
else advertised="$host"
fi
rf_default=$(( replicas < 3 ? replicas : 3 ))
rf="${KAFKA_DEFAULT_REPLICATION_FACTOR:-$rf_default}"
isr_default=$(( rf >= 3 ? 2 : 1 ))
isr="${KAFKA_MIN_INSYNC_REPLICAS:-$isr_default}"

mkdir -p "$CONF_DIR" "$DATA"
{
  cat /etc/murmur/kafka.properties
  # Later keys win when Java reads a properties file: these replace the local platform's
  # single-node values.
  cat <<PROPS

############################# Container (murmur-kafka entrypoint) #############################
node.id=$node_id
controller.quorum.voters=$voters
listeners=PLAINTEXT://:9092,CONTROLLER://:9093
advertised.listeners=PLAINTEXT://$advertised:9092
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DATA
num.partitions=${KAFKA_NUM_PARTITIONS:-6}
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf_default
transaction.state.log.replication.factor=$rf_default
transaction.state.log.min.isr=$(( rf_default >= 3 ? 2 : 1 ))
PROPS
} >"$CONF"

# The JVM's own working files (hs_err, perf data off) stay in /tmp.
cd /tmp
java_opts=(${KAFKA_HEAP_OPTS:--Xms384m -Xmx384m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
           -XX:+ExitOnOutOfMemoryError -XX:+PerfDisableSharedMem -Djava.awt.headless=true
           -Dlog4j.configuration=file:/etc/murmur/kafka-log4j.properties
           -Dkafka.logs.dir=/tmp/kafka ${KAFKA_JVM_OPTS:-})

if [ ! -s "$DATA/meta.properties" ]; then
  echo "murmur-kafka: formatting $DATA (node $node_id of $replicas, cluster $KAFKA_CLUSTER_ID)"
  java -Xmx256m -Dlog4j.configuration=file:/etc/murmur/kafka-log4j.properties \
    -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format \
    --cluster-id="$KAFKA_CLUSTER_ID" -c "$CONF" --ignore-formatted
fi
echo "murmur-kafka: node $node_id, voters $voters, advertised $advertised:9092"
overrides=()
for arg in "$@"; do overrides+=(--override "$arg"); done
exec java "${java_opts[@]}" -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$CONF" "${overrides[@]}"
