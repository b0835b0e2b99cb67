"""Where the raw files are: a day's log file and the song files, in a local directory laid out like the bucket."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

# The day's event log, as an Airflow template: the one definition every warehouse's staging task renders.
LOG_KEY_TEMPLATE = "log_data/{{ logical_date.strftime('%Y/%m') }}/{{ ds }}-events.json"


class LakeError(FileNotFoundError):
    """A file the pipeline needs is not in the lake."""


@dataclass(frozen=True)
class Lake:
    root: str

    @staticmethod
    def log_key(day: date) -> str:
        """The bucket-relative key of a day's event log, ``log_data/2018/11/2018-11-01-events.json``."""
        return f"log_data/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"

    @staticmethod
    def song_pattern() -> str:
        return "song_data/*/*/*/*.json"

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def _local(self, key: str) -> Path:
        if not self.is_local:
            raise NotImplementedError(f"lake {self.root!r}: only local directories are supported")
        return Path(self.root) / key

    def log_file(self, day: date, key: str | None = None) -> Path:
        """The day's log file (``key`` defaults to the day's key); an error naming the path when it is missing."""
        path = self._local(key or self.log_key(day))
        if not path.is_file():
            raise LakeError(f"no event log for {day:%Y-%m-%d}: expected {path}")
        return path

    def song_files(self) -> list[Path]:
        """Every song file, sorted; an error naming the folder when there is none."""
        base = self._local("song_data")
        files = sorted(base.glob("*/*/*/*.json"))
        if not files:
            raise LakeError(f"no song files under {base} (expected song_data/<A-Z>/<A-Z>/<A-Z>/TR*.json)")
        return files
