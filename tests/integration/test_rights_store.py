"""The rights store on the real broker and Redis: consent read back as written, erasure ownership."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient

from agents.gateway.rights_store import RightsStore
from pipeline.kafka.topics import create_topics
from pipeline.privacy.consent import Purposes
from pipeline.services.connect import resolve
from tests.integration.harness import produce

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(make_settings, kafka_bootstrap):
    s = make_settings(partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    create_topics(admin, s)
    admin.close()
    return s


def test_consent_is_read_back_from_the_viewers_partition_and_a_tombstone_clears_it(settings):
    store = RightsStore(settings, resolve(settings))
    try:
        assert store.consent("Alice") == (None, None)
        at = store.set_consent(" ALICE ", Purposes(True, True, False))
        store.set_consent("bob", Purposes(False, False, True))
        assert store.consent("alice") == (Purposes(True, True, False), at)
        assert store.consent("bob")[0] == Purposes(False, False, True)
        produce(settings, settings.topic("consent"), [(b"alice", None)])  # what an erasure writes
        assert store.consent("alice") == (None, None)
    finally:
        store.close()


def test_an_erasure_request_is_visible_to_its_viewer_only(settings):
    writer = RightsStore(settings, resolve(settings))
    reader = RightsStore(settings, resolve(settings))  # another gateway process: nothing cached
    try:
        rid, _ = writer.erase("Alice")
        assert writer.erasure_status("alice", rid) == ({}, None)
        assert reader.erasure_status("alice", rid) == ({}, None)  # found on the erasure topic
        assert reader.erasure_status("bob", rid) is None  # someone else's: like an unknown id
        assert writer.erasure_status("bob", rid) is None
        assert reader.erasure_status("alice", "f" * 32) is None
    finally:
        writer.close()
        reader.close()
