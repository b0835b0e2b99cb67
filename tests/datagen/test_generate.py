"""The generator writes the real data set's layout, field types and proportions, deterministically."""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sparkify.datagen import generate
from sparkify.datagen.__main__ import main
from tests.conftest import read_events, read_songs

EVENT_TYPES = {
    "artist": (str, type(None)),
    "auth": (str,),
    "firstName": (str, type(None)),
    "gender": (str, type(None)),
    "itemInSession": (int,),
    "lastName": (str, type(None)),
    "length": (float, type(None)),
    "level": (str,),
    "location": (str, type(None)),
    "method": (str,),
    "page": (str,),
    "registration": (float, type(None)),
    "sessionId": (int,),
    "song": (str, type(None)),
    "status": (int,),
    "ts": (int,),
    "userAgent": (str, type(None)),
    "userId": (str,),
}
SONG_TYPES = {
    "num_songs": (int,),
    "artist_id": (str,),
    "artist_latitude": (float, type(None)),
    "artist_longitude": (float, type(None)),
    "artist_location": (str,),
    "artist_name": (str, int),
    "song_id": (str,),
    "title": (str,),
    "duration": (float,),
    "year": (int,),
}


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_layout_matches_the_bucket(month_lake):
    root = month_lake.root
    logs = sorted(p.relative_to(root).as_posix() for p in (root / "log_data").rglob("*.json"))
    assert logs == [f"log_data/2018/11/2018-11-{day:02d}-events.json" for day in range(1, 31)]
    song_files = [p.relative_to(root).as_posix() for p in (root / "song_data").rglob("*.json")]
    assert len(song_files) == month_lake.song_files
    for key in song_files:
        match = re.fullmatch(r"song_data/([A-Z])/([A-Z])/([A-Z])/TR([A-Z0-9]{16})\.json", key)
        assert match, key
        assert "".join(match.groups()[:3]) == match.group(4)[:3], key


def test_every_field_has_the_real_type(month_lake):
    for event in read_events(month_lake.root):
        event.pop("_day")
        assert event.keys() == EVENT_TYPES.keys()
        for key, types in EVENT_TYPES.items():
            assert isinstance(event[key], types) and not isinstance(event[key], bool), (key, event)
    for song in read_songs(month_lake.root):
        assert song.keys() == SONG_TYPES.keys()
        for key, types in SONG_TYPES.items():
            assert isinstance(song[key], types), (key, song)


def test_song_files_are_one_compact_object(month_lake):
    path = next((month_lake.root / "song_data").rglob("*.json"))
    text = path.read_text(encoding="utf-8")
    assert "\n" not in text.strip()
    assert text.startswith('{"num_songs": 1')


def test_scale_one_has_the_real_proportions(month_lake):
    events = read_events(month_lake.root)
    assert 7_000 <= len(events) <= 9_000
    next_songs = [e for e in events if e["page"] == "NextSong"]
    assert 0.80 <= len(next_songs) / len(events) <= 0.90
    users = {e["userId"] for e in events if e["userId"]}
    assert 80 <= len(users) <= 110
    levels = defaultdict(set)
    for event in events:
        if event["userId"]:
            levels[event["userId"]].add(event["level"])
    switchers = [user for user, seen in levels.items() if seen == {"free", "paid"}]
    assert len(switchers) >= 5
    assert Counter(e["page"] for e in events).keys() >= {
        "NextSong",
        "Home",
        "Login",
        "Logout",
        "Settings",
        "Help",
    }


def test_logged_out_and_non_song_events_carry_nulls(month_lake):
    events = read_events(month_lake.root)
    logged_out = [e for e in events if e["auth"] == "Logged Out"]
    assert logged_out
    for event in logged_out:
        assert event["userId"] == ""
        for key in ("firstName", "lastName", "gender", "location", "registration", "userAgent"):
            assert event[key] is None, (key, event)
    for event in events:
        if event["page"] != "NextSong":
            assert event["artist"] is None and event["song"] is None and event["length"] is None
        if event["userAgent"] is not None:
            assert event["userAgent"].startswith('"') and event["userAgent"].endswith('"')
    keys = [(e["sessionId"], e["itemInSession"]) for e in events]
    assert len(keys) == len(set(keys))


def test_few_plays_match_a_song_exactly(month_lake):
    songs = {(s["title"], str(s["artist_name"]), s["duration"]) for s in read_songs(month_lake.root)}
    plays = [e for e in read_events(month_lake.root) if e["page"] == "NextSong"]
    exact = sum((p["song"], p["artist"], p["length"]) in songs for p in plays)
    assert 0 < exact / len(plays) < 0.01


def test_song_files_have_the_real_quirks(month_lake):
    songs = read_songs(month_lake.root)
    assert any(isinstance(s["artist_name"], int) for s in songs)
    assert any(s["year"] == 0 for s in songs)
    assert any(s["artist_latitude"] is None for s in songs)
    assert any(s["artist_location"] == "" for s in songs)
    assert any(not (s["title"] + str(s["artist_name"])).isascii() for s in songs)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = generate(tmp_path / "a", scale=1, seed=3, days=2)
    second = generate(tmp_path / "b", scale=1, seed=3, days=2)
    third = generate(tmp_path / "c", scale=1, seed=4, days=2)
    assert tree_digest(first.root) == tree_digest(second.root)
    assert tree_digest(first.root) != tree_digest(third.root)


def test_scale_multiplies_users_events_and_songs(tmp_path):
    one = generate(tmp_path / "one", scale=1, seed=5, days=5)
    three = generate(tmp_path / "three", scale=3, seed=5, days=5)
    assert 2.5 <= three.events / one.events <= 3.5
    assert 2.5 <= three.song_files / one.song_files <= 3.5
    users_one = {e["userId"] for e in read_events(one.root) if e["userId"]}
    users_three = {e["userId"] for e in read_events(three.root) if e["userId"]}
    assert 2.5 <= len(users_three) / len(users_one) <= 3.5


def test_command_line(tmp_path, capsys):
    assert main(["--scale", "1", "--seed", "1", "--days", "2", "--out", str(tmp_path / "lake")]) == 0
    assert "over 2 days" in capsys.readouterr().out
    assert (tmp_path / "lake/log_data/2018/11/2018-11-02-events.json").is_file()
    with pytest.raises(SystemExit):
        main(["--scale", "x", "--out", str(tmp_path)])


def test_invalid_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="scale"):
        generate(tmp_path, scale=0)
    with pytest.raises(ValueError, match="days"):
        generate(tmp_path, days=0)
    with pytest.raises(ValueError, match="last day"):
        generate(tmp_path, start=date(2018, 11, 2), end=date(2018, 11, 1))
    with pytest.raises(ValueError, match="not both"):
        generate(tmp_path, days=2, end=date(2018, 11, 2))


@pytest.fixture(scope="module")
def half_year(tmp_path_factory):
    """Half a year across a year's end, at scale 1."""
    lake = generate(
        tmp_path_factory.mktemp("half-year") / "lake",
        scale=1,
        seed=9,
        start=date(2018, 10, 1),
        end=date(2019, 3, 31),
    )
    events = read_events(lake.root)
    for event in events:
        event["_month"] = event["_day"][:7]
    return lake, events


def test_any_range_writes_one_file_per_day_across_months_and_years(half_year):
    lake, events = half_year
    assert len(lake.days) == 182
    logs = sorted(p.relative_to(lake.root).as_posix() for p in (lake.root / "log_data").rglob("*.json"))
    assert logs[0] == "log_data/2018/10/2018-10-01-events.json"
    assert (
        "log_data/2018/12/2018-12-31-events.json" in logs
        and "log_data/2019/01/2019-01-01-events.json" in logs
    )
    assert logs[-1] == "log_data/2019/03/2019-03-31-events.json" and len(logs) == 182
    keys = [(e["sessionId"], e["itemInSession"]) for e in events]
    assert len(keys) == len(set(keys))
    # Each event lies in its file's day.
    assert all(datetime.fromtimestamp(e["ts"] / 1000, tz=UTC).date().isoformat() == e["_day"] for e in events)


def test_users_come_back_over_months_churn_and_new_ones_register(half_year):
    _, events = half_year
    users_by_month: dict[str, set[str]] = defaultdict(set)
    first_seen: dict[str, str] = {}
    for event in sorted(events, key=lambda e: e["ts"]):
        if event["userId"]:
            users_by_month[event["_month"]].add(event["userId"])
            first_seen.setdefault(event["userId"], event["_day"])
    months = sorted(users_by_month)
    first, last = users_by_month[months[0]], users_by_month[months[-1]]
    # The same users over months, a share of them gone by the end, and an active population about stable.
    assert 0.6 <= len(first & last) / len(first) <= 0.9
    assert 0.8 <= len(last) / len(first) <= 1.25
    newcomers = [user for user, day in first_seen.items() if day >= "2018-11-01" and int(user) > 100]
    assert len(newcomers) >= 10
    # A newcomer is registered before its first event.
    registered = {e["userId"]: e["registration"] for e in events if e["userId"]}
    first_ts = {}
    for event in events:
        if event["userId"]:
            first_ts[event["userId"]] = min(first_ts.get(event["userId"], event["ts"]), event["ts"])
    assert all(registered[user] <= first_ts[user] for user in newcomers)


def test_level_switches_continue_every_month(half_year):
    _, events = half_year
    switches = Counter(e["_month"] for e in events if e["page"] in ("Submit Upgrade", "Submit Downgrade"))
    assert len(switches) == 6 and min(switches.values()) >= 5, switches


def test_weekends_are_quieter(half_year):
    _, events = half_year
    per_weekday: dict[int, Counter] = defaultdict(Counter)
    for event in events:
        day = date.fromisoformat(event["_day"])
        per_weekday[day.weekday()][day] += 1
    mean = {weekday: sum(days.values()) / len(days) for weekday, days in per_weekday.items()}
    assert max(mean[5], mean[6]) < min(mean[3], mean[4])


def test_the_command_line_takes_a_range(tmp_path, capsys):
    out = tmp_path / "lake"
    assert main(["--seed", "1", "--start", "2019-12-30", "--end", "2020-01-02", "--out", str(out)]) == 0
    assert "over 4 days (2019-12-30 .. 2020-01-02)" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "log_data").rglob("*.json")) == [
        "2019-12-30-events.json",
        "2019-12-31-events.json",
        "2020-01-01-events.json",
        "2020-01-02-events.json",
    ]
    with pytest.raises(SystemExit):
        main(["--start", "2019-01-02", "--end", "2019-01-01", "--out", str(out)])


def test_a_volume_drop_keeps_a_share_of_its_day_and_nothing_else_changes(tmp_path):
    days, drop = 4, date(2018, 11, 3)
    plain = generate(tmp_path / "plain", seed=5, days=days).root
    dropped = generate(tmp_path / "dropped", seed=5, days=days, drops={drop: 0.3}).root
    key = "log_data/2018/11/2018-11-{:02d}-events.json"
    for day in range(1, days + 1):
        before = (plain / key.format(day)).read_text().splitlines()
        after = (dropped / key.format(day)).read_text().splitlines()
        if day == drop.day:
            # The first 30 % by time, as if logging stopped.
            assert after == before[: int(len(before) * 0.3)] and after
        else:
            assert after == before
    assert main(["--out", str(tmp_path / "cli"), "--days", "4", "--drop", "2018-11-03:0.3"]) == 0
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "bad"), "--drop", "2018-11-03"])
    with pytest.raises(ValueError, match="share"):
        generate(tmp_path / "bad", days=2, drops={drop: 1.5})
