"""Embedded Kafka-protocol broker (Tansu) and Redis, run as child processes.

``privrec up`` starts them on free loopback ports and records them in
``<state_dir>/services.json`` so that every later command finds them;
``privrec down`` stops exactly the processes recorded there.
:mod:`.outage` stops and restarts one of them on its port, keeping its data.
"""

from pipeline.embedded.binaries import find_redis_server, find_tansu
from pipeline.embedded.services import EMBEDDED_CLUSTER_ID, EmbeddedServices, ServiceRecord

__all__ = ["EMBEDDED_CLUSTER_ID", "EmbeddedServices", "ServiceRecord", "find_redis_server", "find_tansu"]
