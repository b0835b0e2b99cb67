"""The songs and users of a generated lake: song files (a few of them near or exact twins of what users play),
and users who register, switch level, churn and come back over the days generated."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sparkify.datagen import words

MONTH_START = date(2018, 11, 1)
DAYS_IN_MONTH = 30
SONGS_PER_SCALE = 400


USERS_PER_SCALE = 100


EXACT_MATCH_RATE = 0.006


NEAR_MATCH_RATE = 0.03


LEVEL_SWITCHER_SHARE = 0.2


# A share of the active users leaves every 30 days, and as many new users register.
MONTHLY_CHURN = 0.04


NUMERIC_ARTIST_NAME = 112


@dataclass(frozen=True)
class Song:
    song_id: str
    track_id: str
    title: str
    artist_id: str
    artist_name: str | int
    duration: float
    year: int
    artist_location: str
    artist_latitude: float | None
    artist_longitude: float | None

    def as_json(self) -> dict[str, object]:
        return {
            "num_songs": 1,
            "artist_id": self.artist_id,
            "artist_latitude": self.artist_latitude,
            "artist_longitude": self.artist_longitude,
            "artist_location": self.artist_location,
            "artist_name": self.artist_name,
            "song_id": self.song_id,
            "title": self.title,
            "duration": self.duration,
            "year": self.year,
        }


@dataclass
class User:
    user_id: str
    first_name: str
    last_name: str
    gender: str
    location: str
    registration: float
    user_agent: str
    initial_level: str
    switches_at: list[int]
    last_level: str | None = None
    # Active from ``joined_at`` (epoch ms) until ``churned_at`` (None: still active).
    joined_at: int = 0
    churned_at: int | None = None

    def active_on(self, day_start: int) -> bool:
        return self.joined_at < day_start + 86_400_000 and (
            self.churned_at is None or self.churned_at > day_start
        )

    def level_at(self, ts: int) -> str:
        flips = sum(1 for switch in self.switches_at if switch <= ts)
        if flips % 2 == 0:
            return self.initial_level
        return "paid" if self.initial_level == "free" else "free"


def _ident(rng: random.Random, prefix: str) -> str:
    return prefix + "".join(rng.choices(string.ascii_uppercase + string.digits, k=16))


def _title(rng: random.Random) -> str:
    return " ".join(rng.sample(words.TITLE_WORDS, rng.randint(1, 4)))


def _artist_name(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(words.SOLO_ARTISTS)
    return f"{rng.choice(words.ARTIST_FIRST)} {rng.choice(words.ARTIST_SECOND)}"


def _epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def make_songs(rng: random.Random, scale: int) -> list[Song]:
    """Song files with the real data's quirks: non-ASCII, null coordinates, year 0, a numeric artist name."""
    artists: list[tuple[str, str | int, str, float | None, float | None]] = []
    for i in range(max(2, SONGS_PER_SCALE * scale * 3 // 4)):
        has_coordinates = rng.random() < 0.4
        name: str | int = NUMERIC_ARTIST_NAME if i == 0 else _artist_name(rng)
        artists.append(
            (
                _ident(rng, "AR"),
                name,
                rng.choice(words.ARTIST_LOCATIONS),
                round(rng.uniform(-45, 65), 5) if has_coordinates else None,
                round(rng.uniform(-125, 150), 5) if has_coordinates else None,
            )
        )
    songs: list[Song] = []
    for i in range(SONGS_PER_SCALE * scale):
        artist_id, artist_name, location, latitude, longitude = artists[0] if i < 3 else rng.choice(artists)
        title = _title(rng)
        duration = round(rng.uniform(60, 600), 5)
        if songs and rng.random() < 0.02:
            # Same title by another artist: matching must use the artist too.
            title = rng.choice(songs).title
        track_id = "TR" + "".join(rng.choices(string.ascii_uppercase, k=3)) + _ident(rng, "")[:13]
        songs.append(
            Song(
                song_id=_ident(rng, "SO"),
                track_id=track_id,
                title=title,
                artist_id=artist_id,
                artist_name=artist_name,
                duration=duration,
                year=0 if rng.random() < 0.4 else rng.randint(1960, 2010),
                artist_location=location,
                artist_latitude=latitude,
                artist_longitude=longitude,
            )
        )
        if rng.random() < 0.005:
            # The Million Song Dataset holds the same recording under two song ids.
            twin_track = "TR" + "".join(rng.choices(string.ascii_uppercase, k=3)) + _ident(rng, "")[:13]
            songs.append(Song(**{**songs[-1].__dict__, "song_id": _ident(rng, "SO"), "track_id": twin_track}))
    return songs


def _switches(rng: random.Random, start_ms: int, span_ms: int) -> list[int]:
    """When a user switches level: in each 30-day window, a ``LEVEL_SWITCHER_SHARE`` chance of 1 to 3 switches."""
    month_ms = DAYS_IN_MONTH * 86_400_000
    switches: list[int] = []
    for window in range(start_ms, start_ms + span_ms, month_ms):
        length = min(month_ms, start_ms + span_ms - window)
        if rng.random() < LEVEL_SWITCHER_SHARE * length / month_ms:
            switches += sorted(window + rng.randrange(length) for _ in range(rng.choice((1, 1, 2, 3))))
    return switches


def _new_user(rng: random.Random, user_id: int, registered: datetime, start_ms: int, span_ms: int) -> User:
    return User(
        user_id=str(user_id),
        first_name=rng.choice(words.FIRST_NAMES),
        last_name=rng.choice(words.LAST_NAMES),
        gender=rng.choice("MF"),
        location=rng.choice(words.LOCATIONS),
        registration=float(_epoch_ms(registered)),
        user_agent='"' + rng.choice(words.USER_AGENTS) + '"',
        initial_level="paid" if rng.random() < 0.3 else "free",
        switches_at=_switches(rng, start_ms, span_ms),
        joined_at=start_ms,
    )


def make_users(
    rng: random.Random, scale: int, start: date = MONTH_START, days: int = DAYS_IN_MONTH
) -> list[User]:
    """The users active on the first day, registered up to 400 days before it. They churn later (see
    ``lifecycle``)."""
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    start_ms, span_ms = _epoch_ms(first), days * 86_400_000
    return [
        _new_user(rng, i + 1, first - timedelta(days=rng.uniform(1, 400)), start_ms, span_ms)
        for i in range(USERS_PER_SCALE * scale)
    ]


def lifecycle(rng: random.Random, users: list[User], day: date, end: date) -> None:
    """One day of churn and arrivals: each active user leaves with the daily share of ``MONTHLY_CHURN``, and
    about as many new users start (their ids follow the last one)."""
    day_start = _epoch_ms(datetime(day.year, day.month, day.day, tzinfo=UTC))
    daily = MONTHLY_CHURN / DAYS_IN_MONTH
    active = 0
    for user in users:
        if user.active_on(day_start):
            active += 1
            if rng.random() < daily:
                user.churned_at = day_start + rng.randrange(86_400_000)
    arrivals = sum(rng.random() < daily for _ in range(active))
    remaining_ms = ((end - day).days + 1) * 86_400_000
    for _ in range(arrivals):
        # Registered within the day before: active from this day on, never before their registration.
        registered = datetime.fromtimestamp((day_start - 1 - rng.randrange(86_400_000)) / 1000, tz=UTC)
        users.append(_new_user(rng, len(users) + 1, registered, day_start, remaining_ms))
