#!/bin/sh
# privrec image entrypoint: read the role's Kafka password from its docker secret, then run privrec.
# The secret is a file (never an image layer, never `docker inspect`); privrec reads the password
# from PRIVREC_KAFKA__SASL_PASSWORD, which lives only in this process's environment.
set -eu
if [ -n "${KAFKA_PASSWORD_FILE:-}" ]; then
  PRIVREC_KAFKA__SASL_PASSWORD=$(tr -d '\r\n' < "$KAFKA_PASSWORD_FILE")
  export PRIVREC_KAFKA__SASL_PASSWORD
fi
exec privrec "$@"
