"""``privrec erase`` (Art. 17) and ``privrec export`` (Art. 15/20)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agents.cli._output import positive_seconds, print_json, rfc3339, user_id
from agents.cli.recs import n_items
from agents.processes.clients import receipt_watcher
from pipeline.errors import ConfigError, ServiceUnavailable
from pipeline.rights.proofs import ProofLedger
from pipeline.rights.requests import send_erasure
from pipeline.services.connect import kafka_producer, resolve
from pipeline.settings import Settings

__all__ = ["register"]


def register(sub: Any) -> None:
    p = sub.add_parser("erase", help="erase everything privrec holds about a viewer (GDPR Art. 17)")
    p.add_argument("user", type=user_id, help="the viewer's user id (raw; it never leaves the erasure topic)")
    p.add_argument("--wait", action="store_true", help="wait for the receipt and print it")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds --wait waits (default 60)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_erase)

    p = sub.add_parser(
        "export", help="everything privrec holds about a viewer, as one JSON document (GDPR Art. 15/20)"
    )
    p.add_argument(
        "user", type=user_id, help="the viewer's user id (raw; pseudonymised under every configured key)"
    )
    p.add_argument("--out", type=Path, help="write to this file (atomically, mode 0600) instead of stdout")
    p.add_argument(
        "--n", type=n_items, default=None, help="recommendations to include (1..500; default trainer.top_n)"
    )
    p.add_argument(
        "--timeout", type=positive_seconds, default=120.0, help="seconds to read the topics (default 120)"
    )
    p.set_defaults(handler=cmd_export)


def cmd_erase(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from pipeline.keys import pseudonymizer
    from pipeline.wire.rights import STAGES

    endpoints = resolve(settings)
    watcher = receipt_watcher(settings, endpoints) if args.wait else None
    producer = kafka_producer(endpoints)
    try:
        request_id, requested_at = send_erasure(producer, settings, args.user)
    finally:
        producer.close()
    pseudonym = pseudonymizer(settings).pseudonym(args.user)
    ProofLedger(settings.state_dir).erasure_request(request_id, pseudonym, requested_at)
    if watcher is None:
        out = {
            "request_id": request_id,
            "pseudonym": pseudonym,
            "requested_at": requested_at,
            "requested_at_rfc3339": rfc3339(requested_at, "milliseconds"),
        }
        print_json(out) if args.json else print(f"erasure requested: {request_id} ({pseudonym})")
        return 0
    try:
        if not watcher.wait([request_id], args.timeout):
            done = watcher.stages.get(request_id, {})
            missing = [s for s in STAGES if s not in done] or ["receipt"]
            raise ServiceUnavailable(
                f"no receipt for erasure {request_id} within {args.timeout:g} s; "
                f"confirmed: {', '.join(sorted(done)) or 'none'}; waiting for: {', '.join(missing)} "
                "(are `privrec worker` and `privrec train` running?)"
            )
        receipt = msgspec.to_builtins(watcher.receipts[request_id])
    finally:
        watcher.consumer.close()
    if args.json:
        print_json(receipt_json(receipt))
    else:
        print_receipt(receipt)
    return 0


def receipt_json(receipt: dict[str, Any]) -> dict[str, Any]:
    """The receipt as recorded (times in epoch milliseconds, as on the topic, in exports and over
    HTTP), each time also as RFC 3339 under the same name plus ``_rfc3339``."""

    def at(ms: int | None) -> str | None:
        return rfc3339(ms, "milliseconds")

    out = dict(receipt)
    for name in ("requested_at", "completed_at"):
        if name in receipt:
            out[f"{name}_rfc3339"] = at(receipt[name])
    out["stages_rfc3339"] = {stage: at(ms) for stage, ms in receipt.get("stages", {}).items()}
    out["remains"] = [
        item | ({"until_rfc3339": at(item["until"])} if item.get("until") else {})
        for item in receipt.get("remains", [])
    ]
    return out


def print_receipt(receipt: dict[str, Any]) -> None:
    def at(ms: int | None) -> str:
        return rfc3339(ms, "milliseconds") or "-"

    took = (receipt["completed_at"] - receipt["requested_at"]) / 1000
    print(f"erasure {receipt['request_id']} complete for {receipt['pseudonym']} in {took:.2f} s")
    for stage, ms in receipt["stages"].items():
        print(f"  {stage:<8} finished {at(ms)}")
    print("remains by design:")
    for item in receipt["remains"]:
        until = at(item["until"]) if item.get("until") else item.get("rule", "")
        print(f"  - {item['what']}\n      until: {until}")


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """``privrec export USER [--out FILE]``: the ``export.v1`` document (never logged)."""
    from agents.export import collect_export
    from pipeline.files import write_private
    from pipeline.rights.export import render

    if args.out is not None and not args.out.parent.is_dir():
        raise ConfigError("--out", f"directory does not exist: {args.out.parent}")
    try:
        document = collect_export(settings, resolve(settings), args.user, n=args.n, timeout_s=args.timeout)
    except TimeoutError:
        raise ServiceUnavailable(
            f"export: could not read everything held about the viewer within {args.timeout:g} s (--timeout)"
        ) from None
    text = render(document)
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        write_private(args.out, text)
    except OSError as exc:
        raise ConfigError("--out", f"cannot write {args.out}: {exc.strerror}") from None
    print(f"export written to {args.out} ({len(text.encode())} bytes, mode 0600)")
    return 0
