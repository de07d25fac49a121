"""Every ``kafka.KafkaConsumer`` privrec makes, with one set of defaults.

privrec's consumers read (a whole topic, a key's partition, log ends) and
commit nothing unless a caller asks: no auto-commit, no group unless
``group_id`` is given. The security options (SSL, SASL) come from
:meth:`pipeline.settings.KafkaSettings.client_options`, as for the producer.
Code that holds :class:`~pipeline.services.connect.Endpoints` calls
:func:`pipeline.services.connect.kafka_consumer`; this lower layer serves the
readers that are handed a bootstrap address and options.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pipeline.errors import ServiceUnavailable

__all__ = ["BULK_FETCH_BYTES", "client_id", "new_consumer"]

#: ``max_partition_fetch_bytes`` for readers of whole topics: fewer fetch round trips
#: than kafka-python's 1 MiB default when a partition holds much.
BULK_FETCH_BYTES = 8 * 1024 * 1024


def client_id(role: str, *, unique: bool = False) -> str:
    """``privrec-<role>``, with a short random suffix when several may run at once."""
    return f"privrec-{role}-{uuid.uuid4().hex[:6]}" if unique else f"privrec-{role}"


def new_consumer(
    bootstrap: str, client_options: Mapping[str, Any], role: str, *, unique: bool = False, **overrides: Any
) -> Any:
    """A ``kafka.KafkaConsumer`` with privrec's defaults; ``overrides`` win over them.

    Args:
        bootstrap: the brokers.
        client_options: the security options of the deployment.
        role: names the client (``client.id`` is ``privrec-<role>``), as broker logs show it.
        unique: add a random suffix to the client id.

    Raises:
        ServiceUnavailable: no broker answered.
    """
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "client_id": client_id(role, unique=unique),
        "enable_auto_commit": False,
        **client_options,
        **overrides,
    }
    try:
        return KafkaConsumer(**options)
    except (KafkaError, OSError):
        raise ServiceUnavailable(
            f"kafka.bootstrap_servers (PRIVREC_KAFKA__BOOTSTRAP_SERVERS): no broker answered at {bootstrap}"
        ) from None
