"""Fake but realistic viewers: devices, client fields and free text with PII.

A user's profile (country, Global Privacy Control flag, one to three devices
with their IP, user agent and app version) is drawn from a stream keyed by
``(seed, user_id)``, so a user looks the same in every session and in every
run with that seed. The free text deliberately carries e-mail addresses,
phone numbers and IP addresses now and then: the redaction stage needs real
PII to remove, and the tests check it is there before redaction.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from pipeline.sources._stable import keyed_random

__all__ = ["DEVICE_CLASSES", "Device", "UserProfile", "error_message", "search_query", "user_profile"]

DEVICE_CLASSES = ("tv", "mobile", "web", "console", "other")
_CLASS_WEIGHTS = (35, 30, 25, 6, 4)
GPC_SHARE = 0.15
"""Share of users whose browser or app sends the Global Privacy Control signal."""

_COUNTRIES = ("US", "GB", "DE", "FR", "BR", "IN", "CA", "ES", "IT", "NL", "SE", "PL", "JP", "AU", "MX", "IE")
_COUNTRY_WEIGHTS = (30, 10, 9, 7, 7, 6, 5, 4, 4, 3, 2, 3, 4, 3, 3, 1)
_USER_AGENTS = {
    "tv": (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.5) AppleWebKit/537.36 (KHTML, like Gecko) TV Safari/537.36",
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/87.0 Safari/537.36",
        "AppleTV11,1/17.2",
        "Mozilla/5.0 (Linux; Android 11; BRAVIA 4K VH2 Build/RTM5.230810.004) AppleWebKit/537.36",
    ),
    "mobile": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0"
        " Mobile Safari/537.36",
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0"
        " Mobile Safari/537.36",
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ),
    "web": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0"
        " Safari/537.36",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4"
        " Safari/605.1.15",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:124.0) Gecko/20100101 Firefox/124.0",
    ),
    "console": (
        "Mozilla/5.0 (PlayStation; PlayStation 5/8.20) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox Series X) AppleWebKit/537.36 Edge/20.02",
        "Mozilla/5.0 (Nintendo Switch; WifiWebAuthApplet) AppleWebKit/606.4 (KHTML, like Gecko) NF/6.0.1.15.4",
    ),
    "other": (
        "Roku/DVP-12.5 (12.5.0.4178-AE)",
        "okhttp/4.12.0",
        "Mozilla/5.0 (X11; CrOS x86_64 15633.69.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Safari/537.36",
    ),
}
_APP_VERSIONS = ("4.12.3", "4.12.4", "4.13.0", "4.13.1", "5.0.0-rc2", "3.9.12")
# First IPv4 octets of public, non-reserved unicast space.
_V4_FIRST = tuple(o for o in range(1, 224) if o not in (10, 100, 127, 169, 172, 192, 198, 203))
_V6_PREFIXES = ("2a01:4f8", "2600:1700", "2a02:c7f", "2804:14c", "2001:4860", "2c0f:fb50", "2409:8a28")
_FIRST = ("maria", "james", "li", "fatima", "john", "sofia", "ahmed", "emma", "lucas", "aiko", "olga", "raj")
_LAST = (
    "lopez",
    "smith",
    "wang",
    "khan",
    "mueller",
    "rossi",
    "silva",
    "dubois",
    "kowalski",
    "tanaka",
    "patel",
)
_MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "icloud.com", "proton.me")
_GENRE_QUERIES = (
    "sci fi thriller",
    "movies like heat",
    "romantic comedy 90s",
    "documentary space",
    "kids animation",
    "best horror 2023",
    "french drama",
    "action with car chases",
    "oscar winners",
    "anime series",
)


@dataclass(frozen=True, slots=True)
class Device:
    """One of a user's devices; ``client`` is copied into each event, never shared."""

    device_id: str
    client: dict[str, str]


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What stays fixed about a user across sessions."""

    gpc: bool
    devices: tuple[Device, ...]


def user_profile(seed: int, user_id: str) -> UserProfile:
    """The profile of ``user_id``: fixed by ``(seed, user_id)`` alone."""
    rng = keyed_random(seed, "user", user_id)
    country = rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0]
    home_v4 = _ipv4(rng)
    devices = []
    for _ in range(rng.choice((1, 1, 2, 2, 3))):
        device_class = rng.choices(DEVICE_CLASSES, _CLASS_WEIGHTS)[0]
        on_mobile_net = device_class == "mobile" and rng.random() < 0.5
        ip = _ipv6(rng) if rng.random() < 0.3 else (_ipv4(rng) if on_mobile_net else home_v4)
        client = {
            "ip": ip,
            "user_agent": rng.choice(_USER_AGENTS[device_class]),
            "app_version": rng.choice(_APP_VERSIONS),
            "device_class": device_class,
            "country": country,
        }
        devices.append(Device(str(uuid.UUID(int=rng.getrandbits(128), version=4)), client))
    return UserProfile(gpc=rng.random() < GPC_SHARE, devices=tuple(devices))


def search_query(rng: random.Random, title: str | None) -> str:
    """What the user typed before pressing play; about a quarter carry an e-mail or phone number."""
    if title:
        words = title.split(" (")[0].lower().split()
        text = " ".join(words[: rng.randint(1, max(1, len(words)))])
    else:
        text = rng.choice(_GENRE_QUERIES)
    roll = rng.random()
    if roll < 0.12:
        return f"{text} {_email(rng)}"
    if roll < 0.25:
        return f"{text} call me {_phone(rng)}"
    return text


def error_message(rng: random.Random) -> str:
    """A client error as apps really report them: some quote an e-mail or an IP address."""
    code = rng.choice(("403", "429", "500", "502", "504"))
    kind = rng.randrange(4)
    if kind == 0:
        return f"DRM license request failed ({code}) for account {_email(rng)}"
    if kind == 1:
        return f"CDN timeout fetching segment {rng.randrange(1, 900):04d} from {_ipv4(rng)}:443"
    if kind == 2:
        return f"decoder error 0x{rng.getrandbits(32):08X} at bitrate {rng.choice((1800, 3500, 8000))}kbps"
    return f"HTTP {code} from playback API"


def _ipv4(rng: random.Random) -> str:
    return f"{rng.choice(_V4_FIRST)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _ipv6(rng: random.Random) -> str:
    groups = [f"{rng.getrandbits(16):x}" for _ in range(6)]
    if rng.random() < 0.3:  # an address with a run of zero groups, written compressed
        return f"{rng.choice(_V6_PREFIXES)}:{groups[0]}::{groups[4]}:{groups[5]}"
    return f"{rng.choice(_V6_PREFIXES)}:{':'.join(groups)}"


def _email(rng: random.Random) -> str:
    sep = rng.choice((".", "_", ""))
    return f"{rng.choice(_FIRST)}{sep}{rng.choice(_LAST)}{rng.randrange(100)}@{rng.choice(_MAIL_DOMAINS)}"


def _phone(rng: random.Random) -> str:
    n = rng.randrange(10_000)
    return rng.choice(
        (
            f"+1 (415) 555-{n:04d}",
            f"+44 20 7946 {n:04d}",
            f"+49 30 {rng.randrange(1000, 9999)} {n:04d}",
            f"06 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {n // 100:02d} {n % 100:02d}",
        )
    )
