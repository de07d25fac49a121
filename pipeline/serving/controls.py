"""Viewer controls, stored under the viewer's pseudonym and applied at read time.

``personalization``:

* ``full`` (the default): recommendations from the whole viewing profile;
* ``limited``: recommendations computed from the viewer's *recent* history only
  (the trainer publishes them as ``UserRecs.limited``: the same model, with the
  user's vector recomputed from the last ``serving.limited_recent_days`` days);
* ``off``: no personalisation at all; the viewer gets the non-personalised
  popular list, exactly like a viewer without consent.

``hidden``: titles the viewer never wants recommended. They are filtered out
of every list (personalised and popular) when a response is built, so hiding
takes effect immediately, without waiting for the next model.

Storage: one Redis hash per viewer, ``<ns>:controls:<pseudonym>``, with the
field ``personalization`` and one field ``hide:<content_id>`` per hidden title
(a set with atomic add/remove). Controls carry no TTL. A viewer whose controls
are back to the defaults has no hash at all.

With key rotation, controls found under an older key's pseudonym are moved to
the newest pseudonym by the next :func:`set_controls`, in one atomic script.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, get_args

import msgspec

from pipeline.serving.layout import Layout, check_pseudonym

__all__ = ["Controls", "Personalization", "get_controls", "parse_controls", "set_controls"]

Personalization = Literal["full", "limited", "off"]
MODES: frozenset[str] = frozenset(get_args(Personalization))
FIELD_MODE = b"personalization"
HIDE_PREFIX = b"hide:"


class Controls(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What a viewer chose. The defaults mean "no controls stored"."""

    personalization: Personalization = "full"
    hidden: frozenset[str] = frozenset()


DEFAULT = Controls()


def parse_controls(flat: Sequence[bytes] | None) -> Controls:
    """Controls from an ``HGETALL`` reply as a flat ``[field, value, ...]`` list.

    An unknown personalisation value (a hand-edited hash) reads as ``off``:
    when unsure, do not personalise.
    """
    if not flat:
        return DEFAULT
    mode: str = "full"
    hidden: set[str] = set()
    for i in range(0, len(flat) - 1, 2):
        field = flat[i]
        if field == FIELD_MODE:
            value = flat[i + 1]
            mode = value.decode() if isinstance(value, bytes) else str(value)
        elif field.startswith(HIDE_PREFIX):
            hidden.add(field[len(HIDE_PREFIX) :].decode("utf-8", "surrogateescape"))
    if mode not in MODES:
        mode = "off"
    return Controls(personalization=mode, hidden=frozenset(hidden))  # type: ignore[arg-type]


# KEYS[1]: the newest pseudonym's hash; KEYS[2..]: older pseudonyms' hashes.
# ARGV[1]: new mode or ""; ARGV[2]: number of titles to hide; then hide ids, then unhide ids.
_SET_SCRIPT = """
local target = KEYS[1]
if redis.call('EXISTS', target) == 0 then
  for i = 2, #KEYS do
    local old = redis.call('HGETALL', KEYS[i])
    if #old > 0 then
      for j = 1, #old, 2 do redis.call('HSET', target, old[j], old[j + 1]) end
      break
    end
  end
end
for i = 2, #KEYS do redis.call('DEL', KEYS[i]) end
if ARGV[1] ~= '' then redis.call('HSET', target, 'personalization', ARGV[1]) end
local nh = tonumber(ARGV[2])
for i = 3, 2 + nh do redis.call('HSET', target, 'hide:' .. ARGV[i], '1') end
for i = 3 + nh, #ARGV do redis.call('HDEL', target, 'hide:' .. ARGV[i]) end
local mode = redis.call('HGET', target, 'personalization')
if redis.call('HLEN', target) == (mode and 1 or 0) and (not mode or mode == 'full') then
  redis.call('DEL', target)
  return {}
end
return redis.call('HGETALL', target)
"""


def set_controls(
    redis: Any,
    layout: Layout,
    pseudonyms: Sequence[str],
    *,
    personalization: Personalization | None = None,
    hide: Iterable[str] = (),
    unhide: Iterable[str] = (),
) -> Controls:
    """Change a viewer's controls atomically and return the result.

    Args:
        redis: a redis-py client (bytes replies).
        layout: the key layout.
        pseudonyms: the viewer's pseudonyms, newest first
            (``Pseudonymizer.candidates(user_id)``); controls are written under
            the first and moved there from the others.
        personalization: the new mode, or None to keep it.
        hide: titles to hide. unhide: titles to show again (applied after ``hide``).

    Raises:
        ValueError: an unknown mode, an empty title id, or a pseudonym that is not one.
    """
    if not pseudonyms:
        raise ValueError("at least one pseudonym is needed")
    if personalization is not None and personalization not in MODES:
        raise ValueError(f"personalization must be one of {sorted(MODES)}")
    to_hide, to_show = list(hide), list(unhide)
    if any(not isinstance(c, str) or not c for c in to_hide + to_show):
        raise ValueError("content ids must be non-empty strings")
    keys = [layout.controls(check_pseudonym(p)) for p in pseudonyms]
    reply = redis.eval(_SET_SCRIPT, len(keys), *keys, personalization or "", len(to_hide), *to_hide, *to_show)
    return parse_controls(reply)


def get_controls(redis: Any, layout: Layout, pseudonyms: Sequence[str]) -> Controls:
    """The viewer's controls: the first pseudonym (newest first) that has any wins."""
    pipe = redis.pipeline(transaction=False)
    for p in pseudonyms:
        pipe.hgetall(layout.controls(check_pseudonym(p)))
    for reply in pipe.execute():
        if reply:
            return parse_controls([x for kv in reply.items() for x in kv])
    return DEFAULT
