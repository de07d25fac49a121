"""Serving: the Redis recommendation cache, viewer controls, readers and the HTTP endpoint.

The trainer calls :func:`publish` (and :func:`publish_user` for fold-in
refreshes); erasure calls :func:`delete_user`; services read through
:class:`Reader` / :class:`AsyncReader`; over HTTP only through the
authenticated gateway (``privrec gateway``, :mod:`agents.gateway`).
"""

from pipeline.serving.controls import Controls, Personalization, get_controls, set_controls
from pipeline.serving.layout import Layout, check_pseudonym, check_version
from pipeline.serving.publish import (
    PublishIncomplete,
    PublishResult,
    VersionExists,
    delete_user,
    live_meta,
    live_version,
    publish,
    publish_user,
    read_meta,
    remove_versions,
)
from pipeline.serving.reader import MAX_N, AsyncReader, Reader
from pipeline.serving.response import RecsResponse, Source, compose

__all__ = [
    "MAX_N",
    "AsyncReader",
    "Controls",
    "Layout",
    "Personalization",
    "PublishIncomplete",
    "PublishResult",
    "Reader",
    "RecsResponse",
    "Source",
    "VersionExists",
    "check_pseudonym",
    "check_version",
    "compose",
    "delete_user",
    "get_controls",
    "live_meta",
    "live_version",
    "publish",
    "publish_user",
    "read_meta",
    "remove_versions",
    "set_controls",
]
