"""``privrec worker|replay|windows close|consent``: the privacy stream."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from agents.cli._output import print_json, rfc3339, user_id
from agents.processes.clients import key_partition
from pipeline.errors import ConfigError, PrivrecError, ServiceUnavailable
from pipeline.kafka.topics import Topic
from pipeline.services.connect import kafka_admin, kafka_consumer, kafka_producer, resolve
from pipeline.settings import Settings

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "worker", help="run a Faust worker of the privacy stream (consent, redaction, windows)"
    )
    p.add_argument("--loglevel", default="warning", choices=["debug", "info", "warning", "error"])
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("replay", help="replay a ratings file (or the synthetic source) as playback events")
    p.add_argument("path", nargs="?", help="dataset folder or file (not needed for --format synthetic)")
    p.add_argument("--format", default="movielens", choices=["movielens", "csv", "synthetic"])
    p.add_argument(
        "--consent",
        default="0.8,0.1,0.1",
        help="all | none | FRACTION with personalisation | P,A,N shares (default 0.8,0.1,0.1)",
    )
    p.add_argument(
        "--rate", type=float, default=None, help="events per second (default: as fast as possible)"
    )
    p.add_argument("--close-windows", action="store_true", help="close all windows after the replay")
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--events", type=int, default=50_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--no-wait-consent", action="store_true", help="do not wait for workers to apply consent")
    p.add_argument(
        "--keep-times",
        action="store_true",
        help="send the source's own times (default: start after every partition's watermark, "
        "so no event is late)",
    )
    p.add_argument(
        "--start-ms", type=int, default=None, help="first event at this epoch ms (resuming: as printed)"
    )
    p.add_argument(
        "--skip-messages", type=int, default=0, help="skip the first N messages (resuming: as printed)"
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_replay)

    windows = sub.add_parser("windows", help="window control").add_subparsers(
        dest="windows_cmd", required=True
    )
    p = windows.add_parser("close", help="close every open window after all events produced so far")
    p.add_argument("--json", action="store_true", help='{"marker": ..., "topic": ..., "partitions": N}')
    p.set_defaults(handler=cmd_windows_close)

    p = sub.add_parser("consent", help="show or change a user's consent")
    p.add_argument("user", type=user_id)
    p.add_argument("--grant", nargs="+", default=[], metavar="PURPOSE")
    p.add_argument("--revoke", nargs="+", default=[], metavar="PURPOSE")
    p.add_argument(
        "--show", action="store_true", help="print the consent record (after --grant/--revoke: the new one)"
    )
    p.add_argument(
        "--json", action="store_true", help="JSON only: the record (after --grant/--revoke: the new one)"
    )
    p.add_argument("--wait", action="store_true", help="return once the workers apply the update")
    p.add_argument("--timeout", type=float, default=60.0)
    p.set_defaults(handler=cmd_consent)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from agents.processes.worker import run_worker

    return run_worker(settings, loglevel=args.loglevel)


def load_ratings(args: argparse.Namespace) -> tuple[list[Any], dict[str, str]]:
    from pipeline.sources import read_ratings, read_titles, synthetic_ratings, synthetic_titles

    if args.format == "synthetic":
        ratings = synthetic_ratings(
            users=args.users, items=args.items, events_target=args.events, seed=args.seed
        )
        return ratings, synthetic_titles(args.items, args.seed)
    if not args.path:
        raise ConfigError("dataset", f"--format {args.format} needs a PATH")
    return read_ratings(Path(args.path), args.format), read_titles(Path(args.path), args.format)


def consent_waiter(settings: Settings, endpoints: Any, timeout_s: float) -> Any:
    from pipeline.kafka.offsets import wait_committed

    def wait(ends: dict[int, int]) -> bool:
        admin = kafka_admin(endpoints)
        try:
            return wait_committed(admin, settings.app_id, settings.topic(Topic.CONSENT), ends, timeout_s)
        finally:
            admin.close()

    return wait


def cmd_replay(settings: Settings, args: argparse.Namespace) -> int:
    from agents.processes.replay import plan_replay, read_state, run_replay
    from pipeline.errors import ReplayInterrupted

    if args.skip_messages < 0:
        raise ConfigError("--skip-messages", "must be 0 or more")
    consent = {"all": "1,0,0", "none": "0,0,1"}.get(args.consent, args.consent)
    ratings, titles = load_ratings(args)
    endpoints = resolve(settings)
    plan = plan_replay(
        settings, ratings, read_state(settings, endpoints), keep_times=args.keep_times, start_ms=args.start_ms
    )
    try:
        report = run_replay(
            settings,
            endpoints,
            plan,
            consent_spec=consent,
            seed=args.seed,
            titles=titles,
            rate=args.rate,
            wait_consent=None if args.no_wait_consent else consent_waiter(settings, endpoints, 60.0),
            close=args.close_windows,
            skip_messages=args.skip_messages,
            progress=not args.json,  # a bar on stderr, only when stdout and stderr are terminals
        )
    except ReplayInterrupted as stop:
        _print_interrupted(stop.report, plan.start_ms, args)
        return 130
    if report.consent_applied is False:
        print(
            "warning: no worker applied the consent records within 60 s; events may be dropped "
            "for lack of consent (is `privrec worker` running?)",
            file=sys.stderr,
        )
    if plan.behind_watermark:
        print(
            f"warning: {plan.behind_watermark:,} of {len(plan.ratings):,} ratings are older than what the "
            "stream has already closed (--keep-times): their events will be dropped as late",
            file=sys.stderr,
        )
    out = {
        "users": report.users,
        "consent": report.consent,
        "consent_refused": report.consent_refused,
        "events": report.events,
        "messages": report.messages,
        "skipped_messages": report.skipped_messages,
        "start": rfc3339(plan.start_ms),
        "start_ms": plan.start_ms,
        "shifted_s": plan.shift_s,
        "behind_watermark": plan.behind_watermark,
        "seconds": round(report.seconds, 2),
        "events_per_s": round(report.events / report.seconds) if report.seconds else None,
        "windows_closed": args.close_windows,
    }
    if args.json:
        print_json(out)
        return 0
    print(
        f"replayed {out['events']:,} events in {out['messages']:,} messages for {out['users']:,} users "
        f"in {out['seconds']} s; consent: {out['consent']}"
    )
    if plan.shift_s:
        print(f"started after the stream's watermark: times begin at {out['start']} (+{plan.shift_s:,} s)")
    if report.consent_refused:
        refused = ", ".join(f"{n:,} {why}" for why, n in sorted(report.consent_refused.items()))
        print(f"consent not replayed (a newer choice or an erasure stands): {refused}")
    return 0


def _print_interrupted(report: Any, start_ms: int | None, args: argparse.Namespace) -> None:
    """SIGINT: what was sent, and the command that sends the rest (same times, later messages)."""
    import shlex

    done = report.skipped_messages + report.messages
    again = _without(sys.argv[1:], ("--start-ms", "--skip-messages"))
    if start_ms is not None:
        again += ["--start-ms", str(start_ms)]
    again += ["--skip-messages", str(done)]
    print(
        f"privrec: replay interrupted: sent {report.events:,} events in {report.messages:,} messages "
        f"for up to {report.users:,} users (consent records: {report.consent_records:,})",
        file=sys.stderr,
    )
    print(f"resume with: privrec {shlex.join(again)}", file=sys.stderr)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in options:
            skip = True
            continue
        if any(arg.startswith(o + "=") for o in options):
            continue
        out.append(arg)
    return out


def cmd_windows_close(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.replay import close_windows

    producer = kafka_producer(resolve(settings))
    try:
        marker = close_windows(producer, settings.topic(Topic.RAW), settings.partitions)
    finally:
        producer.close()
    if args.json:
        print_json({"marker": marker, "topic": settings.topic(Topic.RAW), "partitions": settings.partitions})
        return 0
    print(f"close marker {marker} sent to {settings.partitions} partitions of {settings.topic(Topic.RAW)}")
    return 0


def cmd_consent(settings: Settings, args: argparse.Namespace) -> int:
    from pipeline.privacy.consent import Purposes, apply_update
    from pipeline.privacy.identity import canonical_user_id
    from pipeline.wire import decode_consent

    # One form for the lookup, the record and its key: the one the stream checks.
    args.user = canonical_user_id(args.user, casefold=settings.pseudonym.casefold_user_ids)
    endpoints = resolve(settings)
    topic = settings.topic(Topic.CONSENT)
    current = _latest_consent(endpoints, topic, args.user, settings.partitions)
    record = decode_consent(current) if current is not None else None
    if not (args.grant or args.revoke):  # --show alone (or nothing): the current record
        if record is None:
            print_json({"user_id": args.user, "consent": None, "note": "no record: denied by default"})
        else:
            print_json(json.loads(current))
        return 0
    existing = None
    if record is not None:
        existing = Purposes.from_wire(record.purposes)
    try:
        updated = apply_update(existing, args.grant, args.revoke)
    except ValueError as exc:
        raise ConfigError("--grant/--revoke", str(exc)) from None
    from pipeline.sources import consent_record

    value = json.dumps(
        consent_record(args.user, updated.as_dict(), updated_at_ms=int(time.time() * 1000), source="cli")
    ).encode()
    producer = kafka_producer(endpoints)
    try:
        meta = producer.send(topic, key=args.user.encode(), value=value).get(timeout=30)
    finally:
        producer.close()
    as_json = args.show or args.json
    if not as_json:
        print(f"consent updated: {updated.as_dict()}")
    if args.wait:
        ok = consent_waiter(settings, endpoints, args.timeout)({meta.partition: meta.offset + 1})
        if not ok:
            raise ServiceUnavailable(f"workers did not apply the update within {args.timeout:g} s")
        if not as_json:
            print("applied by the workers")
    if as_json:  # with a change: the resulting record, as JSON only
        print_json(json.loads(value))
    return 0


def _latest_consent(endpoints: Any, topic: str, user: str, partitions: int) -> bytes | None:
    """Scan the user's partition of the consent topic for their latest record."""
    from kafka import TopicPartition

    key = user.encode()
    partition = key_partition(key, partitions)
    consumer = kafka_consumer(endpoints, "consent")
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        latest: bytes | None = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            for records in batch.values():
                for r in records:
                    if r.key == key:
                        latest = r.value
            if not batch and consumer.position(tp) >= end:
                break  # some brokers under-report the end of a batch: stop on an empty poll
        return latest
    except PrivrecError:
        raise
    finally:
        consumer.close()
