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
import string
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sparkify.datagen import words

MONTH_START = date(2018, 11, 1)
DAYS_IN_MONTH = 30
MAX_DAYS = 10 * 366
SONGS_PER_SCALE = 400
USERS_PER_SCALE = 100
EVENTS_PER_DAY_PER_SCALE = 267
EXACT_MATCH_RATE = 0.006
NEAR_MATCH_RATE = 0.03
NEXT_SONG_SHARE = 0.85
LOGGED_OUT_SHARE = 0.03
LEVEL_SWITCHER_SHARE = 0.2
# A share of the active users leaves every 30 days, and as many new users register.
MONTHLY_CHURN = 0.04
# Events on Monday .. Sunday, relative to the average day.
WEEKDAY_FACTORS = (1.0, 1.0, 1.0, 1.05, 1.1, 0.95, 0.9)
NUMERIC_ARTIST_NAME = 112

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


@dataclass
class GeneratedLake:
    """What was written, for the command line's report."""

    root: Path
    song_files: int
    events: int
    days: list[date] = field(default_factory=list)


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
