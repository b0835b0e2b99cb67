"""Generate a lake with the exact layout and field types of Sparkify's real ``song_data`` and ``log_data``.

At scale 1 the output has the real data set's proportions: about 8,000 events in November 2018 (85 % NextSong),
about 100 users of whom some switch level during the month, and a few hundred song files of which only a small
fraction are ever played with exactly the same (title, artist name, duration). Everything scales linearly and is
deterministic for a seed.

Any range of days can be written (November 2018 by default). Over months the same users come back, some churn,
new ones register about as often, switches of level keep their monthly rate, and weekends are quieter.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sparkify.datagen.catalog import (
    DAYS_IN_MONTH,
    EXACT_MATCH_RATE,
    MONTH_START,
    NEAR_MATCH_RATE,
    Song,
    User,
    _artist_name,
    _epoch_ms,
    _title,
    lifecycle,
    make_songs,
    make_users,
)

MAX_DAYS = 10 * 366


EVENTS_PER_DAY_PER_SCALE = 267


NEXT_SONG_SHARE = 0.85


LOGGED_OUT_SHARE = 0.03


# Events on Monday .. Sunday, relative to the average day.
WEEKDAY_FACTORS = (1.0, 1.0, 1.0, 1.05, 1.1, 0.95, 0.9)


OTHER_LOGGED_IN_PAGES = (
    ("Home", "GET", 200),
    ("Thumbs Up", "PUT", 307),
    ("Add to Playlist", "PUT", 200),
    ("Roll Advert", "GET", 200),
    ("Add Friend", "PUT", 307),
    ("Thumbs Down", "PUT", 307),
    ("Settings", "GET", 200),
    ("Help", "GET", 200),
    ("About", "GET", 200),
    ("Error", "GET", 404),
    ("Save Settings", "PUT", 307),
    ("Logout", "PUT", 307),
)


LOGGED_OUT_PAGES = (("Home", "GET", 200), ("Login", "PUT", 307), ("About", "GET", 200), ("Help", "GET", 200))


@dataclass
class GeneratedLake:
    """What was written, for the command line's report."""

    root: Path
    song_files: int
    events: int
    days: list[date] = field(default_factory=list)


class _Player:
    """Chooses what a NextSong event plays: mostly songs outside song_data, a few exact or near matches."""

    def __init__(self, rng: random.Random, songs: list[Song]) -> None:
        self.rng = rng
        self.songs = songs
        self.outside = [
            (
                _title(rng) + " " + rng.choice(("(Live)", "(Remix)", "")),
                _artist_name(rng),
                rng.uniform(90, 500),
            )
            for _ in range(max(50, len(songs) * 3))
        ]

    def play(self) -> tuple[str, str, float]:
        draw = self.rng.random()
        if draw < EXACT_MATCH_RATE:
            song = self.rng.choice(self.songs)
            return song.title, str(song.artist_name), song.duration
        if draw < EXACT_MATCH_RATE + NEAR_MATCH_RATE:
            song = self.rng.choice(self.songs)
            title, artist, duration = song.title, str(song.artist_name), song.duration
            variant = self.rng.randrange(3)
            if variant == 0:
                title = title.upper()
            elif variant == 1:
                artist = f" {artist.lower()} "
            else:
                duration = round(duration + self.rng.choice((-1, 1)) * self.rng.uniform(0.01, 0.9), 5)
            return title, artist, duration
        title, artist, length = self.rng.choice(self.outside)
        return title.strip(), artist, round(length, 5)


def _event(
    *,
    user: User | None,
    level: str,
    page: str,
    method: str,
    status: int,
    session_id: int,
    item: int,
    ts: int,
    song: tuple[str, str, float] | None = None,
) -> dict[str, object]:
    logged_in = user is not None
    return {
        "artist": song[1] if song else None,
        "auth": "Logged In" if logged_in else "Logged Out",
        "firstName": user.first_name if user else None,
        "gender": user.gender if user else None,
        "itemInSession": item,
        "lastName": user.last_name if user else None,
        "length": song[2] if song else None,
        "level": level,
        "location": user.location if user else None,
        "method": method,
        "page": page,
        "registration": user.registration if user else None,
        "sessionId": session_id,
        "song": song[0] if song else None,
        "status": status,
        "ts": ts,
        "userAgent": user.user_agent if user else None,
        "userId": user.user_id if user else "",
    }


def make_day_events(
    rng: random.Random,
    day: date,
    users: list[User],
    player: _Player,
    scale: int,
    next_session_id: int,
) -> tuple[list[dict[str, object]], int]:
    """One day's events, sorted by ``ts``; ``(sessionId, itemInSession)`` unique across the days written."""
    day_start = _epoch_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
    day_end = day_start + 86_400_000 - 1
    budget = int(EVENTS_PER_DAY_PER_SCALE * scale * WEEKDAY_FACTORS[day.weekday()] * rng.uniform(0.8, 1.2))
    users = [user for user in users if user.active_on(day_start)]
    cum_weights = list(itertools.accumulate(1 + (int(u.user_id) * 7919) % 13 for u in users))
    events: list[dict[str, object]] = []
    while len(events) < budget:
        session_id = next_session_id
        next_session_id += 1
        ts = day_start + rng.randrange(86_000_000)
        if rng.random() < LOGGED_OUT_SHARE * 4:
            for item in range(rng.randint(1, 3)):
                page, method, status = rng.choice(LOGGED_OUT_PAGES)
                level = rng.choice(("free", "paid"))
                events.append(
                    _event(
                        user=None,
                        level=level,
                        page=page,
                        method=method,
                        status=status,
                        session_id=session_id,
                        item=item,
                        ts=ts,
                    )
                )
                ts += rng.randint(1_000, 60_000)
                if ts > day_end:
                    break
            continue
        user = rng.choices(users, cum_weights=cum_weights)[0]
        item = 0
        for _ in range(max(1, int(rng.expovariate(1 / 14)))):
            if ts > day_end:
                break
            level = user.level_at(ts)
            if user.last_level is not None and level != user.last_level:
                page = "Submit Upgrade" if level == "paid" else "Submit Downgrade"
                events.append(
                    _event(
                        user=user,
                        level=user.last_level,
                        page=page,
                        method="PUT",
                        status=307,
                        session_id=session_id,
                        item=item,
                        ts=ts,
                    )
                )
                item += 1
                ts += rng.randint(1_000, 20_000)
                if ts > day_end:
                    break
            user.last_level = level
            if rng.random() < NEXT_SONG_SHARE / (1 - LOGGED_OUT_SHARE) + 0.01:
                song = player.play()
                events.append(
                    _event(
                        user=user,
                        level=level,
                        page="NextSong",
                        method="PUT",
                        status=200,
                        session_id=session_id,
                        item=item,
                        ts=ts,
                        song=song,
                    )
                )
                ts += int(song[2] * 1000)
            else:
                page, method, status = rng.choice(OTHER_LOGGED_IN_PAGES)
                events.append(
                    _event(
                        user=user,
                        level=level,
                        page=page,
                        method=method,
                        status=status,
                        session_id=session_id,
                        item=item,
                        ts=ts,
                    )
                )
                ts += rng.randint(1_000, 60_000)
            item += 1
    events.sort(key=lambda e: (e["ts"], e["sessionId"], e["itemInSession"]))
    return events, next_session_id


def song_path(root: Path, song: Song) -> Path:
    """``song_data/A/B/C/TRABC….json``: the three letters after ``TR`` name the folders."""
    letters = song.track_id[2:5]
    return root / "song_data" / letters[0] / letters[1] / letters[2] / f"{song.track_id}.json"


def log_path(root: Path, day: date) -> Path:
    return root / "log_data" / f"{day:%Y}" / f"{day:%m}" / f"{day:%Y-%m-%d}-events.json"


def date_range(start: date, end: date | None = None, days: int | None = None) -> list[date]:
    """The days from ``start`` to ``end`` (both included), or ``days`` days from ``start``; 30 by default."""
    if end is not None and days is not None:
        raise ValueError("give the last day or a number of days, not both")
    if end is None:
        count = DAYS_IN_MONTH if days is None else days
        if not 1 <= count <= MAX_DAYS:
            raise ValueError(f"days must be between 1 and {MAX_DAYS}, got {count}")
        end = start + timedelta(days=count - 1)
    if not start <= end < start + timedelta(days=MAX_DAYS):
        raise ValueError(f"the last day must be from {start} to {MAX_DAYS} days later, got {end}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def generate(
    out: Path,
    scale: int = 1,
    seed: int = 42,
    days: int | None = None,
    *,
    start: date = MONTH_START,
    end: date | None = None,
    drops: dict[date, float] | None = None,
) -> GeneratedLake:
    """Write a lake under ``out`` (existing generated files are overwritten) and say what was written: the days
    from ``start`` to ``end``, or ``days`` days from ``start`` (30 by default). ``drops`` injects volume drops:
    a day's log keeps only the given share of its events, the first by time, as if logging stopped (the other
    days are unchanged)."""
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    drops = drops or {}
    if any(not 0 <= share < 1 for share in drops.values()):
        raise ValueError(f"a volume drop keeps a share in [0, 1) of a day's events, got {drops}")
    span = date_range(start, end, days)
    rng = random.Random(seed)
    songs = make_songs(rng, scale)
    users = make_users(rng, scale, span[0], len(span))
    player = _Player(rng, songs)

    for song in songs:
        path = song_path(out, song)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(song.as_json(), ensure_ascii=False), encoding="utf-8")

    total_events = 0
    session_id = 1
    for day in span:
        lifecycle(rng, users, day, span[-1])
        events, session_id = make_day_events(rng, day, users, player, scale, session_id)
        if day in drops:
            events = events[: int(len(events) * drops[day])]
        path = log_path(out, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(event, separators=(",", ":")) + "\n" for event in events)
        total_events += len(events)
    return GeneratedLake(root=out, song_files=len(songs), events=total_events, days=span)
