"""``privrec status`` printed for people: one table or line per part, then what is missing.

The data comes from :func:`agents.status.health_summary`. The exit status follows the worst
finding (:func:`exit_status`): 0 healthy, 1 a service does not answer, 3 the services answer but
the pipeline is not processing (a consumer group STALL, STOP or REWIND, or no live worker while
the worker group has lag); 2 stays the code of usage and configuration errors, as for every
command.
"""

from __future__ import annotations

from typing import Any

from agents.cli._output import print_table, rfc3339

__all__ = ["EXIT_OK", "EXIT_SERVICE_DOWN", "EXIT_UNHEALTHY", "exit_status", "print_health"]

EXIT_OK = 0
EXIT_SERVICE_DOWN = 1
EXIT_UNHEALTHY = 3


def exit_status(out: dict[str, Any], worker_group: str) -> int:
    """The worst finding of :func:`agents.status.health_summary` as an exit status (module docstring)."""
    from pipeline.ops.lag import Status

    if not all(s["reachable"] for s in out["services"].values()):
        return EXIT_SERVICE_DOWN
    groups = (out.get("lag") or {}).get("groups") or []
    if any(Status[g["status"]].is_error for g in groups):
        return EXIT_UNHEALTHY
    workers = out.get("workers")
    lagging = any(g["group"] == worker_group and (g["total_lag"] or 0) > 0 for g in groups)
    if workers is not None and lagging and not any(w["live"] for w in workers):
        return EXIT_UNHEALTHY
    return EXIT_OK


def _when(ms: int | None) -> str:
    return rfc3339(ms) or "?"


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit} ago"
    return f"{seconds:.0f}s ago"


def _members(g: dict[str, Any]) -> str:
    """Members as counted: by the broker, or from heartbeats (the trainer's manual assignment)."""
    return f"{g['members']} (heartbeat)" if g.get("members_from") == "heartbeat" else str(g["members"])


def print_health(out: dict[str, Any]) -> None:
    """The human form: one table or line per part, then what is missing."""
    rows = [
        [name, s["mode"], s["address"] or "-", "yes" if s["reachable"] else "NO", s["pid"] or "-"]
        for name, s in out["services"].items()
    ]
    print_table(["SERVICE", "MODE", "ADDRESS", "REACHABLE", "PID"], rows)
    redis = out["services"]["redis"]
    if redis.get("version"):
        warning = redis.get("version_warning")
        print(f"redis version: {redis['version']}" + (f" (WARNING: {warning})" if warning else ""))
    print(f"pseudonym keys: {out['pseudonym_keys']}")
    procs = (out["workers"] or []) + (out["trainers"] or [])
    if procs:
        print()
        print_table(
            ["PROCESS", "ID", "STATS-AGE", "PARTITIONS", "METRICS"],
            [
                [
                    p["kind"] + ("" if p["live"] else " (exited)" if p.get("exited") else " (stale)"),
                    p["id"],
                    f"{p['age_s']:.1f}s",
                    ",".join(map(str, p["assigned"])) or "-",
                    (p["metrics"] or "-") if p["live"] else "-",
                ]
                for p in procs
            ],
        )
    lag = out["lag"]
    if lag is not None:
        n = lag["samples"]
        spread = f" {lag['interval_s']:g} s apart" if n > 1 else ""
        print(f"\nlag ({n} sample{'s' if n > 1 else ''}{spread}; COMMITTED: partitions with an offset):")
        print_table(
            ["GROUP", "STATUS", "LAG", "MAX-LAG-S", "COMMITTED", "STATE", "MEMBERS"],
            [
                [
                    g["group"],
                    g["status"],
                    g["total_lag"],
                    "-" if g["max_lag_seconds"] is None else f"{g['max_lag_seconds']:.1f}",
                    g["committed_partitions"],
                    g["state"] or "?",
                    "?" if g["members"] is None else _members(g),
                ]
                for g in lag["groups"]
            ],
        )
    print()
    m = out["model"]
    if out["workers"] is None:
        print("model: unknown (Redis not read)")
    elif m is None:
        print("model: none published")
    else:
        ndcg = "?" if m["ndcg_at_10"] is None else f"{m['ndcg_at_10']:.4f}"
        print(
            f"model: {m['version']} ({m.get('family') or 'als'}, holdout NDCG@10 {ndcg}), "
            f"trained {_ago(m['age_s'])}; "
            f"last published {_when(m['published_at_ms'])} ({_ago(m['published_age_s'])})"
        )
        t = m.get("tuning") or {}
        if t.get("validation_ndcg_at_10") is not None:
            setting = ", ".join(f"{k} {_short(v)}" for k, v in (t.get("setting") or {}).items())
            print(
                f"  self-tuned: {t.get('family', 'als')} ({setting}); validation NDCG@10 "
                f"{t['validation_ndcg_at_10']:.4f} after {t.get('trials')} trials in {t.get('seconds')} s"
            )
    r = out["last_receipt"]
    if not out["services"]["kafka"]["reachable"]:
        print("last erasure receipt: unknown (Kafka not read)")
    elif r is None:
        print("last erasure receipt: none")
    else:
        took = "" if r["duration_s"] is None else f", {r['duration_s']:g} s after its request"
        print(
            f"last erasure receipt: request {r['request_id'] or '?'} completed "
            f"{_when(r['completed_at_ms'])} ({_ago(r['age_s'])}){took}"
        )
    for note in out["missing"]:
        print(f"missing: {note}")


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
