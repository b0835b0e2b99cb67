"""What a staging load reports: the table, rows landed, files read and where they came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageResult:
    table: str
    rows: int
    files: int
    source: str
