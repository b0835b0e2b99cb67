"""Skipping a song load that would change nothing.

Every run stages the song files, and at scale they are tens of thousands of files (40,000 take 6 s to read on
DuckDB). A load records its fingerprint in ``staging_loads``: the files' keys and versions, the code that
checks and casts them, and the allowance of bad files. The next load with the same fingerprint, while
``staging_songs`` still holds the rows it landed, keeps the table as it is. Deleting the ``staging_loads`` row
forces a reload.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sparkify.lake import SongListing
from sparkify.staging import rules, schema
from sparkify.staging.result import StageResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Load:
    """A ``staging_loads`` row."""

    fingerprint: str
    files_read: int
    rows_loaded: int
    records_quarantined: int
    loaded_at: datetime


def fingerprint(listing: SongListing, allowance: rules.Allowance, loader: str) -> str:
    """The song load's fingerprint: ``listing``'s, the staging code's (``loader``: the warehouse module's file,
    with the shared rules, screen and schema) and the allowance's."""
    from sparkify.staging import screen

    digest = hashlib.sha256(listing.fingerprint.encode())
    for code in (loader, rules.__file__, screen.__file__, schema.__file__):
        digest.update(Path(code).read_bytes())
    digest.update(repr(allowance).encode())
    return digest.hexdigest()


def kept(last: Load | None, current: str, rows_now: int, target: str, source: str) -> StageResult | None:
    """The result of a skipped load when ``last`` had the ``current`` fingerprint and ``target`` still holds its
    rows (``rows_now``); ``None`` when the files must be loaded."""
    if last is None or last.fingerprint != current:
        return None
    if rows_now != last.rows_loaded:
        log.info(
            "%s holds %s rows, the last load landed %s: loading again", target, rows_now, last.rows_loaded
        )
        return None
    log.info(
        "song files unchanged since the load of %s (%s files): %s kept, %s rows, %s files quarantined",
        last.loaded_at,
        last.files_read,
        target,
        last.rows_loaded,
        last.records_quarantined,
    )
    return StageResult(
        table=target,
        rows=last.rows_loaded,
        files=last.files_read,
        source=source,
        records=last.files_read,
        quarantined=last.records_quarantined,
        unchanged=True,
    )
