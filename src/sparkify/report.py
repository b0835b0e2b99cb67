"""The daily listening report: what a day's plays were, as a table in the warehouse and a PNG chart in the lake.

Built by the ``sparkify_listening_report`` DAG when the daily DAG's summary has updated the marts (Airflow
assets), for each day the asset events name. It reads the marts only.
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, date, datetime

from sparkify.lake import Lake
from sparkify.settings import Settings
from sparkify.summary import MART_SCHEMA, replace_rows, sql_literal
from sparkify.warehouses import warehouse_for

log = logging.getLogger(__name__)

REPORT_TABLE = f"{MART_SCHEMA}.rpt_daily_listening"
TOP_SONGS = 10
SECTIONS = ("top_songs", "plays_by_hour", "plays_by_level")


def report_key(day: date) -> str:
    """Where a day's chart lands in the lake."""
    return f"reports/daily_listening/{day:%Y}/{day:%m}/{day:%Y-%m-%d}.png"


def report_rows(settings: Settings, day: date) -> dict[str, list[tuple[str, int]]]:
    """The day's sections: the top songs (title, by artist), plays per hour (UTC) and plays per level."""
    plays = f"{MART_SCHEMA}.fct_songplays"
    where = f"plays.log_date = {sql_literal(day)}"
    queries = {
        "top_songs": (
            f"select songs.title || ' - ' || artists.artist_name as label, count(*) as plays from {plays} as plays "
            f"inner join {MART_SCHEMA}.dim_songs as songs on plays.song_id = songs.song_id "
            f"inner join {MART_SCHEMA}.dim_artists as artists on plays.artist_id = artists.artist_id "
            f"where {where} group by songs.title, artists.artist_name order by plays desc, label limit {TOP_SONGS}"
        ),
        "plays_by_hour": (
            f"select cast(extract(hour from plays.start_time) as integer) as hour, count(*) as plays "
            f"from {plays} as plays where {where} group by 1 order by 1"
        ),
        "plays_by_level": (
            f"select plays.level, count(*) as plays from {plays} as plays where {where} group by 1 order by 1"
        ),
    }
    sections = {}
    with warehouse_for(settings).cursor() as cur:
        for section, sql in queries.items():
            cur.execute(sql)
            sections[section] = [(str(label), int(count)) for label, count in cur.fetchall()]
    by_hour = dict(sections["plays_by_hour"])
    sections["plays_by_hour"] = [(str(hour), by_hour.get(str(hour), 0)) for hour in range(24)]
    return sections


def record_report(settings: Settings, day: date, sections: dict[str, list[tuple[str, int]]]) -> int:
    """Replace the day's rows of the report table; how many rows it now has."""
    generated_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    rows = [
        (day, section, position, label, plays, generated_at)
        for section in SECTIONS
        for position, (label, plays) in enumerate(sections[section], start=1)
    ]
    text = warehouse_for(settings).text_type
    create = (
        f"create table if not exists {REPORT_TABLE} (report_date date, section {text}, position integer, "
        f"label {text}, plays bigint, generated_at timestamp)"
    )
    replace_rows(settings, REPORT_TABLE, [create], f"report_date = {sql_literal(day)}", rows)
    return len(rows)


def chart(day: date, sections: dict[str, list[tuple[str, int]]]) -> bytes:
    """The day's three sections as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 7), layout="constrained")
    top, hours, levels = figure.subplot_mosaic(
        [["top", "top"], ["hours", "levels"]], width_ratios=[3, 1]
    ).values()
    songs = list(reversed(sections["top_songs"]))
    top.barh([label for label, _ in songs], [plays for _, plays in songs], color="#4c78a8")
    top.set_title(f"Top {TOP_SONGS} songs, {day}")
    hours.bar([int(hour) for hour, _ in sections["plays_by_hour"]], [p for _, p in sections["plays_by_hour"]])
    hours.set_title("Plays per hour (UTC)")
    hours.set_xticks(range(0, 24, 3))
    levels.bar([label for label, _ in sections["plays_by_level"]], [p for _, p in sections["plays_by_level"]])
    levels.set_title("Plays by level")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def build_report(settings: Settings, day: date) -> dict[str, object]:
    """The day's report: its rows in the warehouse, its chart in the lake."""
    sections = report_rows(settings, day)
    rows = record_report(settings, day, sections)
    where = Lake(settings.lake, settings.aws_conn_id).write(report_key(day), chart(day, sections))
    plays = sum(plays for _, plays in sections["plays_by_level"])
    log.info("report of %s: %d plays, %d rows in %s, chart at %s", day, plays, rows, REPORT_TABLE, where)
    return {"day": day.isoformat(), "plays": plays, "rows": rows, "chart": where}
