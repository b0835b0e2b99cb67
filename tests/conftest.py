"""Shared fixtures: generated lakes and settings that point at temporary warehouses, never at the repo's .local."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sparkify.datagen import GeneratedLake, generate
from sparkify.settings import Settings, from_env

REPO = Path(__file__).resolve().parents[1]


def read_events(lake: Path) -> list[dict[str, object]]:
    """Every event of the lake, with the day of its file, read straight from the JSON files."""
    events = []
    for path in sorted((lake / "log_data").glob("*/*/*-events.json")):
        day = path.name.removesuffix("-events.json")
        with path.open(encoding="utf-8") as fh:
            events.extend({**json.loads(line), "_day": day} for line in fh if line.strip())
    return events


def read_songs(lake: Path) -> list[dict[str, object]]:
    return [
        json.loads(path.read_text(encoding="utf-8")) for path in sorted(lake.glob("song_data/*/*/*/*.json"))
    ]


def normalized(text: object) -> str:
    return " ".join(str(text).split()).lower()


def expected_matches(lake: Path, strategy: str, tolerance: float = 1.0) -> dict[tuple[int, int], str]:
    """The song each play should get, computed here independently of the SQL."""
    songs = read_songs(lake)
    matches = {}
    for play in (e for e in read_events(lake) if e["page"] == "NextSong"):
        if strategy == "exact":
            candidates = [
                s
                for s in songs
                if (s["title"], str(s["artist_name"]), s["duration"])
                == (play["song"], play["artist"], play["length"])
            ]
        else:
            candidates = [
                s
                for s in songs
                if normalized(s["title"]) == normalized(play["song"])
                and normalized(s["artist_name"]) == normalized(play["artist"])
                and abs(s["duration"] - play["length"]) <= tolerance
            ]
        if candidates:
            best = min(
                candidates,
                key=lambda s: (
                    abs(s["duration"] - play["length"]),
                    (s["title"], str(s["artist_name"])) != (play["song"], play["artist"]),
                    s["song_id"],
                ),
            )
            matches[(play["sessionId"], play["itemInSession"])] = best["song_id"]
    return matches


@pytest.fixture(scope="session")
def month_lake(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLake:
    """A full November at scale 1, the demo's data set."""
    return generate(tmp_path_factory.mktemp("month") / "lake", scale=1, seed=42)


@pytest.fixture(scope="session")
def small_lake(tmp_path_factory: pytest.TempPathFactory) -> GeneratedLake:
    """Three days at scale 1: enough for staging and DAG runs."""
    return generate(tmp_path_factory.mktemp("small") / "lake", scale=1, seed=7, days=3)


@pytest.fixture
def make_settings(tmp_path: Path) -> Iterator[object]:
    def _make(lake: Path, **extra: str) -> Settings:
        return from_env(
            {
                "SPARKIFY_HOME": str(REPO),
                "SPARKIFY_LAKE": str(lake),
                "SPARKIFY_DUCKDB_PATH": str(tmp_path / "warehouse.duckdb"),
                **extra,
            }
        )

    yield _make
