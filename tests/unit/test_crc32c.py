"""kafka-python checksums every record batch; without the ``crc32c`` C extension it does so in pure
Python, which profiling showed as ~60% of the gateway's CPU under ``privrec bench gateway``."""

from __future__ import annotations


def test_kafka_python_uses_the_c_crc32c():
    import kafka.record.util as util

    assert util.crc32c_c is not None
    assert util.calc_crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
