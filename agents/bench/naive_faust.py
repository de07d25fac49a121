"""Baseline: the naive Faust way — one JSON event per message, a windowed table update per event.

Run as ``python -m agents.bench.naive_faust`` with ``NAIVE_BROKER``, ``NAIVE_TOPIC``,
``NAIVE_APP`` and ``NAIVE_OUT`` (a file where progress is written) in the environment.
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import faust

from agents.app import EMBEDDED_TIMEOUTS

app = faust.App(
    os.environ["NAIVE_APP"],
    broker=os.environ["NAIVE_BROKER"],
    store="memory://",
    web_enabled=False,
    topic_partitions=int(os.environ.get("NAIVE_PARTITIONS", "8")),
    consumer_auto_offset_reset="earliest",
    datadir=os.environ["NAIVE_OUT"] + ".data",
    **EMBEDDED_TIMEOUTS,
)
source = app.topic(os.environ["NAIVE_TOPIC"], value_serializer="json")
watch = app.Table("naive-watch", default=int).tumbling(timedelta(hours=1), expires=timedelta(hours=2))
progress = {"n": 0, "first_at": None, "last_at": None}


@app.agent(source)
async def count(stream: faust.StreamT) -> None:
    async for event in stream:
        if progress["first_at"] is None:
            progress["first_at"] = time.time()
        key = f"{event['user_id']}|{event['content_id']}"
        watch[key] += event["watched_ms"]
        progress["n"] += 1
        progress["last_at"] = time.time()


@app.timer(interval=0.5)
async def report() -> None:
    tmp = os.environ["NAIVE_OUT"] + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(progress, fh)
    os.replace(tmp, os.environ["NAIVE_OUT"])


if __name__ == "__main__":
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()
