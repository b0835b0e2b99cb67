"""The Sparkify health view: the last days of the pipeline at a glance, served in the Airflow UI by the project's
plugin (``sparkify.airflow_plugin``).

For each day: the Airflow run's state, the lines staged and quarantined, the songplays loaded and matched, the dbt
tests of the run (kept in ``<raw schema>.dbt_results`` by the project's on-run-end hooks) and the anomaly flags of
``analytics.fct_daily_anomalies``; a plot of daily events and songplays with their bands; and, for a day that
failed or was flagged, the failed tasks with links to their logs and the failing tests' rows. The warehouse is
read through ``Warehouse.read_only_query`` (the read-only login of ``make sql``), Airflow through its REST API
with the viewer's own token.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

from sparkify.settings import Settings
from sparkify.staging.schema import AUDIT
from sparkify.summary import MART_SCHEMA, RESULTS_TABLE, sql_literal
from sparkify.warehouses import QueryError, warehouse_for

DAG_ID = "sparkify_daily"
AUDIT_TABLE = AUDIT.name
# Where the plugin serves the view, and its page in the Airflow UI (/plugin/<route>, under Browse).
HEALTH_PREFIX = "/sparkify"
HEALTH_PATH = f"{HEALTH_PREFIX}/health"
HEALTH_ROUTE = "sparkify-health"
DAYS_SHOWN = 30
SAMPLE_ROWS = 5
METRICS = ("events", "songplays", "song_match_rate", "quarantine_ratio")
# A test that did not pass: its rows are shown. A node that did not succeed: the day is red.
PROBLEM_STATUSES = ("fail", "warn", "error")


@dataclass
class Day:
    day: date
    run: dict[str, Any] | None = None
    volumes: dict[str, Any] | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    tests: dict[str, int] = field(default_factory=dict)
    models_failed: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    failed_tasks: list[dict[str, Any]] = field(default_factory=list)
    # The day's run built fct_daily_volumes: its counts are that run's.
    volumes_built: bool = False
    # A scheduled run waiting for the day's event log: since when (the run's start), else None.
    waiting_since: str | None = None
    # A scheduled run's deadline (``sparkify.deadline``), and whether the day is past it without success.
    deadline: datetime | None = None
    late: bool = False

    @property
    def volumes_from_earlier_load(self) -> bool:
        """The counts shown come from an earlier run: the day's run has not (yet) built them, as when its staging
        failed on bad input and the previous load still stands."""
        run_state = (self.run or {}).get("state")
        return bool(self.volumes) and run_state not in (None, "success") and not self.volumes_built

    @property
    def flagged(self) -> list[str]:
        return [metric for metric in METRICS if self.metrics.get(metric, {}).get("is_anomaly")]

    @property
    def state(self) -> str:
        """ok, flagged, failed, waiting (for its file), running or missing: the colour of the day."""
        run_state = (self.run or {}).get("state")
        if run_state == "failed" or self.tests.get("fail") or self.tests.get("error") or self.models_failed:
            return "failed"
        if self.waiting_since:
            return "waiting"
        if run_state in ("queued", "running"):
            return "running"
        if self.flagged or self.tests.get("warn"):
            return "flagged"
        return "ok" if self.volumes else "missing"


def mark_arrival(settings: Settings, day: Day, now: datetime | None = None) -> None:
    """The day's wait for its file and its deadline, from its run (a scheduled run's only: others have none)."""
    from sparkify.arrival import waits
    from sparkify.deadline import deadline_of

    run = day.run or {}
    if not waits(run.get("run_type")) or not run.get("data_interval_end"):
        return
    day.waiting_since = run.get("waiting_since")
    day.deadline = deadline_of(settings, datetime.fromisoformat(run["data_interval_end"]))
    ended = run.get("end_date")
    if run.get("state") == "success" and ended:
        day.late = datetime.fromisoformat(ended) > day.deadline
    else:
        day.late = (now or datetime.now(UTC)) > day.deadline


def _rows(settings: Settings, sql: str) -> list[dict[str, Any]]:
    columns, rows = warehouse_for(settings).read_only_query(sql)
    return [dict(zip(columns, row, strict=True)) for row in rows]


def warehouse_days(settings: Settings, runs: dict[date, dict[str, Any]], days: int = DAYS_SHOWN) -> list[Day]:
    """The last ``days`` days that have a run or a row of the daily volumes, newest first, read from the warehouse.
    ``runs`` (the Airflow run of each day) picks which run's dbt results a day shows."""
    volumes = _rows(
        settings,
        f"select * from {MART_SCHEMA}.fct_daily_volumes order by log_date desc limit {int(days)}",
    )
    shown = sorted({row["log_date"] for row in volumes} | set(runs), reverse=True)[:days]
    if not shown:
        return []
    first = sql_literal(min(shown))
    by_day = {day: Day(day, run=runs.get(day)) for day in shown}
    for row in volumes:
        if row["log_date"] in by_day:
            by_day[row["log_date"]].volumes = row
    for row in _rows(settings, f"select * from {MART_SCHEMA}.fct_daily_anomalies where log_date >= {first}"):
        if row["log_date"] in by_day:
            by_day[row["log_date"]].metrics[row["metric"]] = row
    # The runs' dbt results: a run of several days is kept under its first day, which may be before the days shown.
    run_ids = sorted({run["dag_run_id"] for run in runs.values() if run.get("dag_run_id")})
    by_run_id = f" or run_id in ({', '.join(map(sql_literal, run_ids))})" if run_ids else ""
    results = _rows(
        settings,
        "select run_id, run_date, resource_type, node_name, status, failures, message, compiled_sql, recorded_at "
        f"from {settings.raw_schema}.{RESULTS_TABLE} where run_date >= {first}{by_run_id}",
    )
    # A day without a known Airflow run shows the run recorded last for it: in the audit table (a row per day
    # of a run), else by the first day its results are kept under.
    latest: dict[date, tuple[Any, str]] = {}
    recorded = [(row["run_date"], row["recorded_at"], row["run_id"]) for row in results]
    recorded += [(row["log_date"], row["recorded_at"], row["run_id"]) for row in audit_rows(settings, first)]
    for day, recorded_at, run_id in recorded:
        if day not in latest or (recorded_at, run_id) > latest[day]:
            latest[day] = (recorded_at, run_id)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for row in results:
        by_run.setdefault(row["run_id"], []).append(row)
    for day in by_day.values():
        # The day's Airflow run, else the run recorded last.
        wanted = (day.run or {}).get("dag_run_id") or latest.get(day.day, (None, None))[1]
        for row in by_run.get(wanted, []):
            if row["resource_type"] == "test":
                day.tests[row["status"]] = day.tests.get(row["status"], 0) + 1
                if row["status"] in PROBLEM_STATUSES:
                    day.problems.append(row)
            elif row["resource_type"] == "model" and row["status"] not in ("success", "skipped"):
                day.models_failed += 1
            elif row["resource_type"] == "model" and row["node_name"] == "fct_daily_volumes":
                day.volumes_built = row["status"] == "success"
    return list(by_day.values())


def run_days_only(runs: dict[date, dict[str, Any]], days: int = DAYS_SHOWN) -> list[Day]:
    """The days that have a run, newest first, without the warehouse's side: what the view shows while the
    warehouse cannot be read (not created yet, or a DuckDB file a run is writing)."""
    return [Day(day, run=runs[day]) for day in sorted(runs, reverse=True)[:days]]


def audit_rows(settings: Settings, first: str) -> list[dict[str, Any]]:
    """Which run recorded each day, from ``first`` (a SQL date literal) on: none before the first summary."""
    try:
        return _rows(
            settings,
            f"select distinct run_id, log_date, recorded_at from {settings.raw_schema}.{AUDIT_TABLE} "
            f"where log_date >= {first}",
        )
    except QueryError:
        return []


def failing_rows(
    settings: Settings, compiled_sql: str | None
) -> tuple[list[str], list[tuple[Any, ...]]] | str:
    """Up to SAMPLE_ROWS rows a test's query returns now, or why they cannot be shown."""
    if not compiled_sql:
        return "the test's query was not recorded"
    try:
        return warehouse_for(settings).read_only_query(
            f"select * from (\n{compiled_sql}\n) as failing limit {SAMPLE_ROWS}"
        )
    except QueryError as error:
        return f"its rows could not be read: {error}"


# -- HTML -------------------------------------------------------------------------------------------------------

COLOURS = {
    "ok": "#d4edda",
    "flagged": "#ffe8a1",
    "failed": "#f5c6cb",
    "waiting": "#e2d9f3",
    "running": "#cfe2ff",
    "missing": "#e9ecef",
}

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #212529; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { border: 1px solid #dee2e6; padding: 0.3rem 0.5rem; text-align: right; }
th { background: #f8f9fa; } td.day { text-align: left; font-weight: 600; }
td.ok { background: #d4edda; } td.flagged { background: #ffe8a1; } td.failed { background: #f5c6cb; }
td.running { background: #cfe2ff; } td.waiting { background: #e2d9f3; }
.late { color: #a71d2a; font-weight: 600; } td.missing { background: #e9ecef; color: #6c757d; }
.legend span { display: inline-block; padding: 0.1rem 0.5rem; margin-right: 0.4rem; border-radius: 3px; }
.note { color: #6c757d; font-size: 0.85rem; } pre { white-space: pre-wrap; font-size: 0.8rem; }
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if digits else f"{int(value):,}"


def _metric_cell(day: Day, metric: str) -> str:
    row = day.metrics.get(metric)
    if row is None:
        return '<td class="missing">&ndash;</td>'
    digits = 0 if metric in ("events", "songplays") else 3
    band = ""
    if row["lower_bound"] is not None or row["upper_bound"] is not None:
        band = f"band {_number(row['lower_bound'], digits)} to {_number(row['upper_bound'], digits)}"
    state = "flagged" if row["is_anomaly"] else "ok"
    flag = " ⚑" if row["is_anomaly"] else ""
    return (
        f'<td class="{state}" data-metric="{metric}" data-flagged="{str(bool(row["is_anomaly"])).lower()}" '
        f'title="{_e(band)}">{_number(row["metric_value"], digits)}{flag}</td>'
    )


def grid(days: list[Day], ui_url: str) -> str:
    head = (
        "<tr><th>day</th><th>run</th><th>lines staged</th><th>lines quarantined</th><th>songplays</th>"
        "<th>matched</th><th>dbt tests</th>" + "".join(f"<th>{metric} ⚑</th>" for metric in METRICS) + "</tr>"
    )
    body = []
    for day in days:
        run = day.run or {}
        run_cell = (
            f'<a target="_top" href="{_e(ui_url)}/dags/{DAG_ID}/runs/{_e(quote(run["dag_run_id"], safe=""))}">'
            f"{_e(run['state'])}</a>"
            if run
            else "no run"
        )
        volumes = day.volumes or {}
        notes = (
            '<br><span class="note earlier" data-earlier-load="true">counts of an earlier load</span>'
            if day.volumes_from_earlier_load
            else ""
        )
        if day.waiting_since:
            notes += f'<br><span class="note waiting">waiting for file since {_e(day.waiting_since)}</span>'
        if day.late and day.deadline:
            notes += f'<br><span class="late" data-late="true">late: deadline {day.deadline:%Y-%m-%d %H:%M} UTC</span>'
        tests = ", ".join(f"{count} {status}" for status, count in sorted(day.tests.items())) or "&ndash;"
        body.append(
            f'<tr data-day="{day.day}" data-state="{day.state}"><td class="day {day.state}">{day.day}</td>'
            f'<td class="{day.state}">{run_cell}{notes}</td>'
            f"<td>{_number(volumes.get('events_staged'))}</td><td>{_number(volumes.get('lines_quarantined'))}</td>"
            f"<td>{_number(volumes.get('songplays'))}</td><td>{_number(volumes.get('songplays_matched'))}</td>"
            f'<td class="{"failed" if day.tests.get("fail") or day.tests.get("error") else "ok" if day.tests else "missing"}">'
            f"{_e(tests)}</td>" + "".join(_metric_cell(day, metric) for metric in METRICS) + "</tr>"
        )
    return f'<table id="grid">{head}{"".join(body)}</table>'


def plot(days: list[Day], width: int = 900, height: int = 260) -> str:
    """Daily events and songplays (oldest left) with each one's anomaly band; a flagged day is a red dot."""
    days = [day for day in reversed(days) if day.metrics]
    if not days:
        return '<p class="note">No anomaly rows yet: the plot appears after the first run.</p>'
    values = [
        value
        for day in days
        for metric in ("events", "songplays")
        for value in (
            day.metrics.get(metric, {}).get(key) for key in ("metric_value", "lower_bound", "upper_bound")
        )
        if value is not None
    ]
    top = max(values or [1]) * 1.1 or 1
    pad = 40
    step = (width - 2 * pad) / max(len(days) - 1, 1)

    def x(i: int) -> float:
        return pad + i * step

    def y(value: float) -> float:
        return height - pad - (height - 2 * pad) * value / top

    parts = [f'<svg id="plot" width="{width}" height="{height}" role="img" aria-label="daily volumes">']
    for metric, colour in (("events", "#4c78a8"), ("songplays", "#f58518")):
        rows = [(i, day.metrics.get(metric)) for i, day in enumerate(days)]
        banded = [
            (i, r) for i, r in rows if r and r["lower_bound"] is not None and r["upper_bound"] is not None
        ]
        if banded:
            upper = " ".join(f"{x(i):.1f},{y(r['upper_bound']):.1f}" for i, r in banded)
            lower = " ".join(f"{x(i):.1f},{y(r['lower_bound']):.1f}" for i, r in reversed(banded))
            parts.append(
                f'<polygon class="band" points="{upper} {lower}" fill="{colour}" fill-opacity="0.15"/>'
            )
        line = " ".join(
            f"{x(i):.1f},{y(r['metric_value']):.1f}" for i, r in rows if r and r["metric_value"] is not None
        )
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for i, r in rows:
            if r and r["is_anomaly"] and r["metric_value"] is not None:
                parts.append(
                    f'<circle class="flag" cx="{x(i):.1f}" cy="{y(r["metric_value"]):.1f}" r="5" fill="#d62728">'
                    f"<title>{days[i].day}: {metric} {r['metric_value']:.0f} flagged</title></circle>"
                )
        parts.append(
            f'<text x="{width - pad}" y="{20 if metric == "events" else 36}" text-anchor="end" '
            f'fill="{colour}">{metric}</text>'
        )
    parts.append(
        f'<text x="{pad}" y="{height - 10}">{days[0].day}</text>'
        f'<text x="{width - pad}" y="{height - 10}" text-anchor="end">{days[-1].day}</text>'
        f'<text x="4" y="{pad}">{top / 1.1:,.0f}</text></svg>'
    )
    return "".join(parts)


def problems(settings: Settings, days: list[Day], ui_url: str) -> str:
    """For each failed or flagged day: its failed tasks (links to their logs) and its tests' rows."""
    sections = []
    for day in days:
        if day.state not in ("failed", "flagged"):
            continue
        items = []
        for task in day.failed_tasks:
            mapped = task.get("map_index")
            link = (
                f"{ui_url}/dags/{DAG_ID}/runs/{quote(task['dag_run_id'], safe='')}/tasks/{quote(task['task_id'])}"
                + (f"/mapped/{int(mapped)}" if mapped is not None and mapped >= 0 else "")
                + f"?try_number={int(task.get('try_number') or 1)}"
            )
            items.append(
                f'<li>task <a target="_top" class="log" href="{_e(link)}">{_e(task["task_id"])}</a> '
                f"{_e(task['state'])} (try {_e(task.get('try_number'))}, the link opens its log):"
                f'<pre class="error">{_e(task.get("error") or "(no error recorded)")}</pre></li>'
            )
        if day.volumes_from_earlier_load:
            items.append(
                "<li>the counts shown for this day are those of an earlier load: this run did not replace them</li>"
            )
        for problem in day.problems:
            sample = failing_rows(settings, problem["compiled_sql"])
            if isinstance(sample, str):
                table = f'<p class="note">{_e(sample)}</p>'
            else:
                columns, rows = sample
                table = (
                    '<table class="sample"><tr>'
                    + "".join(f"<th>{_e(c)}</th>" for c in columns)
                    + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in rows)
                    + "</table>"
                )
            items.append(
                f'<li>test <b class="test">{_e(problem["node_name"])}</b>: {_e(problem["status"])}, '
                f"{_e(problem['failures'])} row(s)<pre>{_e(problem['message'])}</pre>"
                f'<span class="note">rows it returns now (up to {SAMPLE_ROWS}):</span>{table}</li>'
            )
        if day.flagged:
            items.append(f"<li>anomaly flags: {_e(', '.join(day.flagged))}</li>")
        sections.append(f'<h3 id="day-{day.day}">{day.day}: {day.state}</h3><ul>{"".join(items)}</ul>')
    return "".join(sections) or '<p class="note">No failed or flagged day.</p>'


def page(settings: Settings, days: list[Day], ui_url: str, error: str | None = None) -> str:
    legend = "".join(f'<span style="background:{colour}">{state}</span>' for state, colour in COLOURS.items())
    body = (
        (f'<p class="note" id="unreadable">Warehouse not readable now: {_e(error)}</p>' if error else "")
        + f'<p class="legend">{legend}</p>{grid(days, ui_url)}'
        + f"<h2>Daily events and songplays, with their bands</h2>{plot(days)}"
        + f"<h2>Failed and flagged days</h2>{problems(settings, days, ui_url) if not error else ''}"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>Sparkify health</title>'
        f"<style>{STYLE}</style></head><body><h1>Sparkify health: the last {DAYS_SHOWN} days</h1>"
        f'<p class="note">Warehouse: {_e(warehouse_for(settings).describe())}. ⚑ marks a metric outside its '
        "band (analytics.fct_daily_anomalies): the day is flagged, not failed.</p>"
        f"{body}</body></html>"
    )
