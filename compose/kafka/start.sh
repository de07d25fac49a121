#!/usr/bin/env bash
# Start a single-node Apache Kafka (KRaft, broker+controller) that admits only SASL/SCRAM clients.
#
# Why a script instead of the image's KAFKA_* variables: the listener JAAS lines carry the admin
# password, which must come from a docker secret (never from this repository or `docker inspect`),
# and the admin's SCRAM credential must exist before the broker can authenticate to itself, so it
# is written into the metadata log when the storage is formatted (`kafka-storage format --add-scram`).
#
# Listeners:
#   CLIENT     SASL_PLAINTEXT :9092, SCRAM-SHA-512 only: every privrec process, one principal per role
#   CONTROLLER SASL_PLAINTEXT localhost:9093, PLAIN with the admin's static credential (KRaft quorum)
# The StandardAuthorizer denies everything no ACL allows; only User:admin is a super user
# (compose/kafka/init-acls.sh creates the other principals and their ACLs).
set -euo pipefail

KAFKA_HOME=${KAFKA_HOME:-/opt/kafka}
SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
DATA_DIR=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
ADVERTISED_HOST=${KAFKA_ADVERTISED_HOST:-kafka}
CONFIG=${KAFKA_CONFIG_OUT:-/tmp/privrec-kafka/server.properties}

admin_password=$(tr -d '\r\n' < "$SECRETS_DIR/kafka_admin_password")
if [[ ! $admin_password =~ ^[A-Za-z0-9]{24,}$ ]]; then
  echo "kafka_admin_password: expected at least 24 letters or digits (openssl rand -hex 32)" >&2
  exit 2
fi

mkdir -p "$(dirname "$CONFIG")"
umask 077
cat > "$CONFIG" <<PROPS
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@localhost:9093
listeners=CLIENT://:9092,CONTROLLER://localhost:9093
advertised.listeners=CLIENT://${ADVERTISED_HOST}:9092
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=CLIENT
controller.listener.names=CONTROLLER
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
sasl.mechanism.controller.protocol=PLAIN
listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${admin_password}" user_admin="${admin_password}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
log.dirs=${DATA_DIR}
num.partitions=8
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS

# For the healthcheck and kafka-*.sh run inside this container (same 0600 directory).
cat > "$(dirname "$CONFIG")/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${admin_password}";
PROPS

if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
  cluster_id=${KAFKA_CLUSTER_ID:-$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)}
  "$KAFKA_HOME/bin/kafka-storage.sh" format --config "$CONFIG" --cluster-id "$cluster_id" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${admin_password}]" --ignore-formatted
fi
unset admin_password
exec "$KAFKA_HOME/bin/kafka-server-start.sh" "$CONFIG"
