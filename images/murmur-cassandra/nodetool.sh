#!/bin/sh
# nodetool for this node (JMX on the loopback port 7199), e.g. `nodetool status`. It needs
# the module exports and opens of the server's JVM options, and sun.nio.ch exported.
set -f
# shellcheck disable=SC2046
exec java -Xmx128m -XX:+UseSerialGC -Dlogback.configurationFile=/etc/murmur/cassandra-logback.xml \
  $(grep -E '^--add-(exports|opens) ' /etc/murmur/cassandra-jvm17.options) \
  --add-exports java.base/sun.nio.ch=ALL-UNNAMED \
  -cp '/opt/cassandra/lib/*' org.apache.cassandra.tools.NodeTool -p 7199 "$@"
