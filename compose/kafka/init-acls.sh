#!/usr/bin/env bash
# One-shot init job: create privrec's SCRAM principals and the ACLs of each role.
#
# Run by the `kafka-init` service as the super user `admin` after the broker is healthy; safe to
# run again (both `kafka-configs --alter` and `kafka-acls --add` are idempotent). Passwords come
# from docker secrets (files under $SECRETS_DIR, made by the operator: see compose/README.md),
# never from this file. The broker's authorizer denies whatever no line below allows.
#
# Roles (README: "Kafka principals and ACLs"):
#   gateway   the HTTP edge: the only writer of playback.raw from clients, of consent (the consent
#             route), and with the operator of erasure; reads what the viewer's rights routes show
#   worker    the Faust stream (group $APP_ID): reads raw/consent/erasure, writes what it derives
#   trainer   the ALS trainer (group $APP_ID-trainer): reads its history, writes its outcomes
#   operator  people and jobs running the privrec CLI: topics create, erase, export, status, lag
#   analytics downstream consumers of the pseudonymised stream (playback.redacted) only
set -euo pipefail

KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka:9092}
SECRETS_DIR=${SECRETS_DIR:-/run/secrets}
P=${PRIVREC_TOPIC_PREFIX:-privrec.}   # settings.topic_prefix
A=${PRIVREC_APP_ID:-${P}stream}      # settings.app_id (default <topic_prefix>stream): the worker's group, Faust's topics
ROLES=(gateway worker trainer operator analytics)

# Every secret is read and checked here, in this shell, before anything is changed on the broker.
declare -A PASSWORD
for role in admin "${ROLES[@]}"; do
  value=$(tr -d '\r\n' < "$SECRETS_DIR/kafka_${role}_password")
  if [[ ! $value =~ ^[A-Za-z0-9]{24,}$ ]]; then
    echo "kafka_${role}_password: expected at least 24 letters or digits (openssl rand -hex 32)" >&2
    exit 2
  fi
  PASSWORD[$role]=$value
done
unset value

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
admin_config="$workdir/admin.properties"
(
  umask 077
  cat > "$admin_config" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${PASSWORD[admin]}";
PROPS
)

for role in "${ROLES[@]}"; do
  "$KAFKA_BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$admin_config" \
    --alter --entity-type users --entity-name "$role" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=${PASSWORD[$role]}]"
done

# allow ROLE OPERATIONS RESOURCE NAME [literal|prefixed]
#   OPERATIONS: comma separated (Read,Describe); RESOURCE: topic | group | cluster
allow() {
  local role=$1 ops=$2 resource=$3 name=$4 pattern=${5:-literal}
  local args=(--bootstrap-server "$BOOTSTRAP" --command-config "$admin_config" --add
    --allow-principal "User:$role")
  local op
  IFS=, read -ra list <<< "$ops"
  for op in "${list[@]}"; do args+=(--operation "$op"); done
  case $resource in
    cluster) args+=(--cluster) ;;
    topic | group) args+=("--$resource" "$name" --resource-pattern-type "$pattern") ;;
    *) echo "unknown resource $resource" >&2; exit 2 ;;
  esac
  "$KAFKA_BIN/kafka-acls.sh" "${args[@]}" > /dev/null
}

# Everyone: see topic metadata and end offsets, and the pipeline groups' committed offsets (lag).
for role in "${ROLES[@]}"; do
  allow "$role" Describe topic "$P" prefixed
  allow "$role" Describe group "$A" prefixed
done

# gateway: POST /v1/events, PUT /v1/me/consent, POST /v1/me/erasure; idempotent producer.
for t in playback.raw consent erasure; do allow gateway Write topic "$P$t"; done
allow gateway IdempotentWrite cluster kafka-cluster
# ... and reads what the rights routes show: consent, export (the trainer's view), erasure progress.
for t in consent interactions erasure erasure.stages receipts; do allow gateway Read topic "$P$t"; done

# worker: the privacy stream.
for t in playback.raw consent erasure; do allow worker Read topic "$P$t"; done
for t in playback.redacted playback.dlq playback.quarantine interactions erasure.stages; do
  allow worker Write topic "$P$t"
done
# Two writes the stream needs on input topics (Kafka ACLs cannot narrow them by key or content):
# idle-close control markers on playback.raw (in order with the partition's events), and the
# tombstone that deletes an erased viewer's consent record after the erasure is applied.
allow worker Write topic "${P}playback.raw"
allow worker Write topic "${P}consent"
allow worker Read group "$A"
# Faust's internal topics (table changelogs, the assignor's leader topic): created and used by it.
allow worker Create,Read,Write,Describe,DescribeConfigs topic "$A-" prefixed

# trainer: its history in, its outcomes out.
for t in consent interactions erasure erasure.stages receipts; do allow trainer Read topic "$P$t"; done
for t in trainer.dlq erasure.stages receipts; do allow trainer Write topic "$P$t"; done
# DP trending (run by the trainer): distinct viewers from the redacted stream, releases in the ledger.
for t in playback.redacted dp.ledger; do allow trainer Read topic "$P$t"; done
allow trainer Write topic "${P}dp.ledger"
# The ethics audit after each full retrain: dead letters in, the audit out.
for t in playback.dlq trainer.dlq; do allow trainer Read topic "$P$t"; done
allow trainer Write topic "${P}audits"
allow trainer Read group "$A-trainer"

# operator: topics create, erase (--wait), export, status/lag, dead-letter inspection.
allow operator Create,DescribeConfigs topic "$P" prefixed
allow operator Write topic "${P}erasure"
allow operator Write topic "${P}dp.ledger"  # privrec trending --release
for t in consent interactions erasure erasure.stages receipts playback.dlq trainer.dlq dp.ledger playback.redacted audits; do
  allow operator Read topic "$P$t"
done

# analytics: the pseudonymised stream, with consumer groups of its own (analytics-*).
allow analytics Read topic "${P}playback.redacted"
allow analytics Read group analytics- prefixed

echo "kafka-init: ${#ROLES[@]} principals and their ACLs are in place"
