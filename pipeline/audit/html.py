"""The audit as one self-contained HTML page: tables, inline SVG charts, the attention list, an appendix.

Charts are drawn with matplotlib (Agg) and inlined as ``<svg>`` elements:
no script, no stylesheet or font from elsewhere, no URL to fetch, so the file
opens the same offline, in a mail client or an archive years later.
"""

from __future__ import annotations

import html
import io
import time
from typing import Any

__all__ = ["APPENDIX", "render_html"]

APPENDIX: tuple[tuple[str, str], ...] = (
    (
        "coverage@10",
        "|∪<sub>u</sub> top<sub>10</sub>(u)| / |I| — catalog coverage (Shani &amp; Gunawardana 2011), "
        "as in Microsoft Recommenders <code>catalog_coverage</code>.",
    ),
    (
        "Gini of exposure",
        "G = Σ<sub>j</sub> (2j − n − 1) x<sub>(j)</sub> / (n Σ x), x<sub>(j)</sub> the top-10 slots of "
        "title j, ascending, over the whole catalogue (0: equal exposure, 1: one title takes all). Elliot's "
        "<code>Gini</code> reports 1 − G with n − 1 (a diversity).",
    ),
    (
        "ARP",
        "(1/|U|) Σ<sub>u</sub> Σ<sub>i∈L(u)</sub> φ(i) / |L(u)|, φ(i) = viewers who watched i — Elliot "
        "<code>ARP</code> (Abdollahpouri et al. 2019).",
    ),
    (
        "popularity lift",
        "ARP of the top-10 lists / ARP of the same viewers' histories (1: no amplification).",
    ),
    (
        "novelty",
        "mean over top-10 slots of −log<sub>2</sub>(φ(i) / |U|) — self-information, as Microsoft "
        "Recommenders <code>novelty</code> (Castells et al. 2011).",
    ),
    (
        "personalisation@10",
        "1 − mean Jaccard(top<sub>10</sub>(u), top<sub>10</sub>(v)) over viewer pairs (sampled "
        "with a fixed seed above <code>audit.personalisation_pairs</code>); cf. Recommenders' diversity "
        "metrics.",
    ),
    (
        "NDCG@10",
        "binary relevance, discount 1/log<sub>2</sub>(rank + 1), ideal DCG over min(10, |relevant|); "
        "holdout: each viewer's newest 20% of titles, the model family and setting refitted on the rest. "
        "Baseline: the most "
        "popular unseen titles.",
    ),
    (
        "activity tiers",
        "analytics-consented viewers sorted by history length, cut into three equal parts by rank "
        "(light, medium, heavy).",
    ),
    (
        "popularity tiers",
        "titles by φ descending: head = the shortest prefix with ≥ 20% of interactions; tail = "
        "the titles past 80% of interactions and every unwatched title; mid = the rest "
        "(Abdollahpouri et al.). "
        "Tail share = APLT (Elliot).",
    ),
    ("erasure receipt time", "receipt completed_at − request requested_at; nearest-rank p50/p95 and max."),
    (
        "sources",
        "Microsoft Recommenders, <code>recommenders/evaluation/python_evaluation.py</code> (diversity, "
        "novelty, coverage); Anelli et al., Elliot (SIGIR 2021), bias metrics ARP, APLT, PopREO and "
        "diversity Gini.",
    ),
)


def _svg(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(width: float = 5.0, height: float = 2.8) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    matplotlib.rcParams["svg.fonttype"] = "none"
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _chart_popularity(report: dict[str, Any]) -> str | None:
    tiers = report.get("exposure_by_popularity_tier") or {}
    if not tiers:
        return None
    names = list(tiers)
    fig, ax = _figure()
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [tiers[t]["exposure_share"] for t in names], 0.4, label="exposure share")
    ax.bar([x + 0.2 for x in xs], [tiers[t]["catalogue_share"] for t in names], 0.4, label="catalogue share")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("share")
    ax.set_title("Exposure by title popularity tier")
    ax.legend()
    return _svg(fig)


def _chart_tiers(report: dict[str, Any]) -> str | None:
    by = report.get("ndcg_by_activity_tier") or {}
    if not any(v is not None for v in by.values()):
        return None
    fig, ax = _figure()
    ax.bar(list(by), [v or 0.0 for v in by.values()], color="tab:green")
    ax.set_ylabel("NDCG@10 (holdout)")
    ax.set_title("Quality by viewer activity tier")
    return _svg(fig)


def _chart_lorenz(report: dict[str, Any]) -> str | None:
    points = report.get("exposure_lorenz") or []
    if not points:
        return None
    fig, ax = _figure(4.0, 3.0)
    ax.plot([p[0] for p in points], [p[1] for p in points], label="exposure")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="equal")
    ax.set_xlabel("share of titles (least exposed first)")
    ax.set_ylabel("share of top-10 slots")
    ax.set_title(f"Lorenz curve (Gini {report.get('gini_exposure')})")
    ax.legend()
    return _svg(fig)


def _chart_consent(report: dict[str, Any]) -> str | None:
    days = report.get("consent_by_day") or {}
    if not days:
        return None
    fig, ax = _figure(6.0, 2.8)
    labels = list(days)
    for cls in ("personalization", "analytics_only", "none", "withdrawn"):
        ax.plot(labels, [days[d]["mix"].get(cls, 0) for d in labels], marker="o", label=cls)
    ax.set_ylabel("viewers")
    ax.set_title("Consent mix at the end of each day (UTC)")
    ax.tick_params(axis="x", labelrotation=45)
    ax.legend(fontsize="small")
    return _svg(fig)


def _chart_budget(report: dict[str, Any]) -> str | None:
    spent = report.get("epsilon_spent_by_day") or {}
    if not spent:
        return None
    fig, ax = _figure()
    ax.bar(list(spent), list(spent.values()), label="ε spent")
    budget = report.get("epsilon_budget_per_day")
    if budget is not None:
        ax.axhline(budget, color="red", linestyle="--", label="budget")
    ax.set_title("Privacy budget per day")
    ax.legend()
    return _svg(fig)


def _e(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[tuple[Any, ...]], head: tuple[str, ...]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = (
        "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
        or f"<tr><td colspan='{len(head)}'>none</td></tr>"
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _attention(report: dict[str, Any]) -> str:
    rows = []
    for a in report.get("attention", []):
        cls = "flag" if a["flagged"] else "ok"
        mark = "⚠ flagged" if a["flagged"] else ("n/a" if a["value"] is None else "ok")
        rows.append(
            f"<tr class='{cls}'><td>{html.escape(a['figure'])}</td><td>{_e(a['value'])}</td>"
            f"<td>{a['rule']} {_e(a['threshold'])}</td><td>{mark}</td><td>{html.escape(a['why'])}</td></tr>"
        )
    return (
        "<table id='attention'><thead><tr><th>figure</th><th>value</th><th>threshold</th><th>status</th>"
        "<th>why it matters</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


_STYLE = """
body{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}
tr.flag td{background:#fde2e2}tr.ok td{background:#eef7ee}.charts svg{max-width:48%;height:auto;margin:.5rem}
h2{border-bottom:2px solid #ddd}code{background:#f4f4f4}
"""


def render_html(report: dict[str, Any]) -> str:
    """The page for one ``audit.v1`` report (see the module docstring)."""
    model = report.get("model") or {}
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(report.get("generated_at", 0) / 1000))
    flagged = sum(1 for a in report.get("attention", []) if a["flagged"])
    headline = [
        ("coverage@10", report.get("coverage_at_10")),
        ("Gini of exposure", report.get("gini_exposure")),
        ("ARP (recommendations)", report.get("arp")),
        ("ARP (histories)", report.get("arp_history")),
        ("popularity lift", report.get("popularity_lift")),
        ("novelty (bits)", report.get("novelty")),
        ("personalisation@10", report.get("personalisation_at_10")),
        ("holdout NDCG@10", report.get("ndcg_at_10")),
        *((f"baseline NDCG@10: {k}", v) for k, v in (report.get("ndcg_baselines") or {}).items()),
        ("re-rank at serve time", report.get("rerank")),
    ]
    setting = model.get("setting") or {}
    tiers = report.get("activity_tiers") or {}
    pop = report.get("exposure_by_popularity_tier") or {}
    consent = report.get("consent_mix") or {}
    erasure = report.get("erasure_receipt_seconds") or {}
    charts = [
        c
        for c in (
            _chart_popularity(report),
            _chart_tiers(report),
            _chart_lorenz(report),
            _chart_consent(report),
            _chart_budget(report),
        )
        if c
    ]
    dlq_rows = [
        (t, r, n) for t, reasons in (report.get("dlq_by_reason") or {}).items() for r, n in reasons.items()
    ]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>privrec ethics audit {html.escape(str(model.get('version', '')))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>privrec ethics audit</h1>",
        f"<p>Generated {when}. Model {_e(model.get('version'))} ({_e(model.get('family'))}), "
        f"{_e(report.get('viewers'))} viewers, {_e(report.get('catalogue'))} titles. "
        f"<strong>{flagged} figure(s) need attention.</strong></p>",
        "<h2>Attention list</h2>",
        _attention(report),
        "<h2>Model</h2>",
        _table([(k, v) for k, v in setting.items()], ("setting", "value")),
        _table(headline, ("figure", "value")),
        "<h2>Fairness across groups</h2>",
        f"<p>Analytics-consented viewers only ({_e(report.get('fairness_viewers'))}).</p>",
        _table(
            [
                (t, v.get("users"), v.get("ndcg_at_10"), v.get("arp"), v.get("tail_share"))
                for t, v in tiers.items()
            ],
            ("activity tier", "viewers", "NDCG@10", "ARP", "tail share"),
        ),
        _table(
            [(t, v["exposure_share"], v["catalogue_share"], v["titles"]) for t, v in pop.items()],
            ("popularity tier", "exposure share", "catalogue share", "titles"),
        ),
        "<div class='charts'>" + "".join(charts) + "</div>",
        "<h2>Data and consent</h2>",
        _table(
            [(c, n) for c, n in (consent.get("classes") or {}).items()]
            + [(f"purpose granted: {p}", n) for p, n in (consent.get("purposes") or {}).items()],
            ("consent (latest record per viewer)", "viewers"),
        ),
        _table(list((report.get("drops_by_reason") or {}).items()), ("events dropped: reason", "events")),
        _table(dlq_rows, ("dead-letter topic", "reason", "records")),
        _table(
            [
                (t, v.get("retention_ms"), v.get("cleanup"))
                for t, v in (report.get("retention") or {}).items()
            ],
            ("topic", "retention.ms (-1: forever)", "cleanup"),
        ),
        _table([(k, v) for k, v in erasure.items()], ("erasure requests and receipt seconds", "value")),
        f"<p>Exports served: {_e(report.get('exports_served'))}.</p>",
        "<h2>Privacy budget</h2>",
        f"<p>DP ledger: {_e(report.get('dp_ledger'))}; "
        f"budget ε/day {_e(report.get('epsilon_budget_per_day'))}; "
        f"releases recorded: {len(report.get('dp_releases') or [])}.</p>",
        _table(list((report.get("epsilon_spent_by_day") or {}).items()), ("day", "ε spent")),
        "<h2>Appendix: definitions</h2><dl>",
        "".join(f"<dt><strong>{name}</strong></dt><dd>{text}</dd>" for name, text in APPENDIX),
        "</dl></body></html>",
    ]
    return "\n".join(parts)
