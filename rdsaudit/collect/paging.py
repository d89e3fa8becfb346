"""Paginated listings: one page at a time, with the proof that a listing ends."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
import botocore.utils

from rdsaudit.collect.failures import RunawayListing
from rdsaudit.collect.readonly import refuse_mutation


def page_of(call: Callable[..., Mapping[str, Any]], service: str, operation: str,
            bound: PageBound, **params: Any) -> tuple[Mapping[str, Any], str | None]:
    """One page through `call(**params)`, with the marker `bound` holds; the only paging
    loop step in rdsaudit (RDS, KMS and Organizations listings all go through it)."""
    refuse_mutation(operation)
    tokens = _paging(service, operation)
    if bound.marker is not None:
        params[tokens.input] = bound.marker
    answer = call(**params)
    following = answer.get(tokens.output)
    if tokens.more is not None and not answer.get(tokens.more):
        following = None
    if not isinstance(following, str) or not following:
        following = None
    return answer, bound.advance(following)


# The most pages any listing may take. Every quota that bounds what a listing returns is
# adjustable, so the cap sits far above what AWS grants: RDS pages hold up to 100 items
# (MaxRecords 20..100, aws-facts §2), so 2,000 pages are 200,000 instances, clusters or
# snapshots in one region (default quotas: 40 instances, 40 clusters, 100 manual snapshots
# per region; automated snapshots are one a day for at most 35 days per instance); KMS
# ListAliases pages hold up to 100 aliases (aws-facts §5): 200,000 aliases, twice the
# 100,000 customer managed keys a region holds by default; Organizations ListAccounts pages
# hold up to 20 accounts: 40,000 accounts. No quota justifies more than 2,000 pages.
MAX_PAGES = 2_000


class PageBound:
    """Where one paginated listing is, and the proof that it ends.

    Every marker the listing was given is remembered: a repeat is a cycle of any length
    (the same marker again, or two alternating), and more than `cap` pages (markers that
    keep increasing) is a broken or hostile endpoint. Either ends the listing (the page in
    hand is still read) and sets `runaway`, which the caller records as an error naming the
    operation and region.
    """

    def __init__(self, operation: str, region: str, cap: int = MAX_PAGES) -> None:
        self.operation = operation
        self.region = region
        self.cap = cap
        self.marker: str | None = None
        self.pages = 0
        self.runaway: RunawayListing | None = None
        self._seen: set[str] = set()

    def advance(self, following: str | None) -> str | None:
        """Count a page; the marker to follow, or None when the listing ends here."""
        self.pages += 1
        if following is not None and following in self._seen:
            self.runaway = RunawayListing(
                f"{self.operation} in {self.region}: the next-page marker repeats after "
                f"{self.pages} page(s); listing stopped")
        elif following is not None and self.pages >= self.cap:
            self.runaway = RunawayListing(
                f"{self.operation} in {self.region}: more than {self.cap} pages; listing "
                "stopped")
        if self.runaway is not None:
            following = None
        elif following is not None:
            self._seen.add(following)
        self.marker = following
        return following


@dataclass(frozen=True)
class _Tokens:
    input: str
    output: str
    more: str | None  # the flag that says more pages follow, where the API has one


@functools.cache
def _paging(service: str, operation: str) -> _Tokens:
    """The pagination tokens of an operation, from botocore's paginator model."""
    config = _paginator_model(service).get_paginator(operation)
    more = config.get("more_results")
    return _Tokens(str(config["input_token"]), str(config["output_token"]),
                   str(more) if more else None)


@functools.cache
def _paginator_model(service: str) -> Any:
    # One botocore session for all: its loader caches what it reads from botocore's data
    # (a session per look-up re-scans the data directories, ~50 ms each).
    return _botocore_session().get_paginator_model(service)


@functools.cache
def operation_names(service: str) -> frozenset[str]:
    return frozenset(_botocore_session().get_service_model(service).operation_names)


@functools.cache
def _botocore_session() -> botocore.session.Session:
    return botocore.session.get_session()
