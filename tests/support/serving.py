"""Published recommendation versions for serving tests: items named after the version and user."""

from __future__ import annotations

from typing import Any

from pipeline.privacy.pseudonym import Pseudonymizer, PseudonymKey
from pipeline.recs.types import PopularItem, Recommendation, UserRecs
from pipeline.serving import publish

__all__ = ["KEY_NEW", "KEY_OLD", "PZ", "TTL", "cli_env", "popular", "publish_version", "user_recs"]

KEY_OLD = PseudonymKey("k1", b"serving-old-secret-0123456789abcdef")
KEY_NEW = PseudonymKey("k2", b"serving-new-secret-0123456789abcdef")
PZ = Pseudonymizer([KEY_OLD])
TTL = 600


def user_recs(version: str, user: str, n: int = 20) -> UserRecs:
    """Items named after the version, so a response that mixes versions is visible."""
    return UserRecs(
        full=[
            Recommendation(content_id=f"{version}-{user}-f{i}", score=1 - i / 100, because=(f"w{i}",))
            for i in range(n)
        ],
        limited=[Recommendation(content_id=f"{version}-{user}-l{i}", score=0.5) for i in range(5)],
    )


def popular(version: str, n: int = 30) -> list[PopularItem]:
    return [PopularItem(content_id=f"{version}-p{i}", score=float(n - i)) for i in range(n)]


def publish_version(
    client: Any, layout: Any, version: str, users: Any, pz: Pseudonymizer = PZ, **kwargs: Any
) -> Any:
    recs = {pz.pseudonym(u): user_recs(version, u) for u in users}
    return publish(client, layout, version, recs, popular(version), {"version": version}, TTL, **kwargs)


def cli_env(redis_url: str, app_id: str, tmp_path: Any) -> dict[str, str]:
    """Environment for a ``privrec`` subprocess reading these versions (same key, Redis, app id)."""
    return {
        "PRIVREC_REDIS__URL": redis_url,
        "PRIVREC_PSEUDONYM__KEYS": f"k1:{KEY_OLD.secret.decode()}",
        "PRIVREC_APP_ID": app_id,
        "PRIVREC_STATE_DIR": str(tmp_path / "state"),
    }
