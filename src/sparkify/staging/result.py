"""What a staging load reports: the table, rows landed, records refused, files read and where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageResult:
    table: str
    rows: int
    files: int
    source: str
    # Records read (log lines, or song files) and, of those, quarantined.
    records: int = 0
    quarantined: int = 0
    # True when the source had not changed since the last load, which was kept as it was.
    unchanged: bool = False
