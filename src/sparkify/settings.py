"""Environment → one frozen settings object shared by the DAG, the staging loaders and the tooling."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparkify.staging.rules import Allowance

# The warehouses SPARKIFY_WAREHOUSE may name: each is the module sparkify/warehouses/<name>.py, and its reserved
# words are reserved_words/<name>.txt.
WAREHOUSES = ("duckdb", "postgres", "redshift")
DBT_EXECUTIONS = ("local", "watcher")
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# The first day of the sample data; the schedule's start unless SPARKIFY_START_DATE says otherwise.
SAMPLE_START = date(2018, 11, 1)


@cache
def reserved_words() -> dict[str, frozenset[str]]:
    """Each warehouse's reserved words (reserved_words/<warehouse>.txt, each naming its source)."""
    folder = Path(__file__).with_name("reserved_words")
    return {
        warehouse: frozenset(
            line.strip()
            for line in (folder / f"{warehouse}.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
        for warehouse in WAREHOUSES
    }


def validate_identifier(name: str, what: str) -> str:
    """Refuse configured schema/table names before they reach SQL unquoted: a plain lower-case identifier
    that no warehouse reserves (``raw`` is reserved on Redshift)."""
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"{what} must be a plain SQL identifier (lower-case letters, digits, underscore), got {name!r}"
        )
    reserving = [warehouse for warehouse, words in reserved_words().items() if name in words]
    if reserving:
        raise ValueError(f"{what} {name!r} is a reserved word on {', '.join(reserving)}: choose another name")
    return name


def _ratio(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number from 0 to 1 (a share of the records), got {text!r}")
    return value


def _count(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise ValueError(f"{what} must be a whole number of records, 0 or more, got {text!r}")
    return int(text)


def _positive(text: str, what: str) -> int:
    if not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise ValueError(f"{what} must be a whole number, 1 or more, got {text!r}")
    return int(text)


@dataclass(frozen=True)
class PostgresSettings:
    """The PostgreSQL warehouse, from the same SPARKIFY_PG_* variables that profiles.yml reads."""

    host: str
    port: int
    user: str
    database: str
    password: str = field(repr=False)
    # The login `make sql` uses: it can read the warehouse's schemas and nothing else (created on first use).
    reader: str = "sparkify_reader"
    reader_password: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    """Where things are and which warehouse is used; read once from the environment."""

    root: Path
    lake: str
    warehouse: str
    duckdb_path: Path
    postgres: PostgresSettings
    raw_schema: str
    aws_conn_id: str
    redshift_conn_id: str
    # The connection `make sql` uses on Redshift: its login can only read (created on first use).
    redshift_reader_conn_id: str
    redshift_region: str | None
    redshift_jsonpaths: str | None
    dbt_project_dir: Path
    dbt_profiles_dir: Path
    dbt_docs_dir: Path
    duckdb_pool: str
    retries: int
    retry_delay: timedelta
    max_active_runs: int
    # How many days of a multi-day run load at once, on a warehouse that takes several writers (PostgreSQL,
    # Redshift); DuckDB loads one at a time (its one writer).
    staging_parallelism: int = 4
    # At most this many staging task instances per run: a longer run stages consecutive days per instance.
    max_staging_tasks: int = 31
    # A load fails when more of its records (lines of a day, song files) are quarantined than the larger of
    # these two: a count, and a share of its records (``rules.Allowance``).
    max_bad_records: int = 10
    max_bad_ratio: float = 0.01
    # How Cosmos runs dbt: "watcher" (one dbt build per run, watched by one task per model and per test) or
    # "local" (each task runs its own dbt command). See docs/BENCHMARKS.md for the measured choice.
    dbt_execution: str = "watcher"
    # Whether the project's patches to Cosmos, Airflow and dbt apply (``sparkify.tuning``); off, stock behaviour.
    tuning: bool = True
    # The schedule's first and last day (None: no last day). A backfill may take any days the lake holds.
    start_date: date = SAMPLE_START
    end_date: date | None = None
    # A scheduled run waits this long for its days' event logs (checking every ``arrival_poke``, holding no
    # worker slot between checks), then fails; a backfill or a manual run does not wait (``sparkify.arrival``).
    arrival_timeout: timedelta = timedelta(hours=6)
    arrival_poke: timedelta = timedelta(minutes=5)
    # A scheduled run that has not succeeded this long after its day ended is late: one alert (``sparkify.deadline``).
    deadline: timedelta = timedelta(hours=3)

    @property
    def allowance(self) -> Allowance:
        from sparkify.staging.rules import Allowance

        return Allowance(self.max_bad_records, self.max_bad_ratio)

    @property
    def start_datetime(self) -> datetime:
        return datetime.combine(self.start_date, time(), UTC)

    @property
    def end_datetime(self) -> datetime | None:
        return datetime.combine(self.end_date, time(), UTC) if self.end_date else None

    @property
    def manifest_path(self) -> Path:
        return self.dbt_project_dir / "target" / "manifest.json"

    @property
    def dbt_target(self) -> str:
        return self.warehouse

    @property
    def max_retry_delay(self) -> timedelta:
        return max(self.retry_delay, timedelta(minutes=30))

    def retry_window(self, failed_try: int) -> tuple[timedelta, timedelta]:
        """When, after the end of ``failed_try``, Airflow starts the next try: exponential back-off from
        ``retry_delay``, doubled per try, spread over [b, 2b) per task so retries do not start together, capped."""
        backoff = max(1, math.ceil(self.retry_delay.total_seconds() * 2 ** (failed_try - 1)))
        return tuple(  # type: ignore[return-value]
            min(timedelta(seconds=seconds), self.max_retry_delay) for seconds in (backoff, 2 * backoff - 1)
        )

    def default_task_args(self) -> dict[str, object]:
        # Retries back off exponentially (delay x 2 per try, capped): a warehouse or lake that is down for a while
        # is waited for, not hammered.
        return {
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": self.max_retry_delay,
        }

    def dbt_env(self) -> dict[str, str]:
        """Environment that ``profiles.yml`` and the dbt sources read."""
        # No password here: these values are shown in the UI as the dbt tasks' rendered environment. dbt reads
        # SPARKIFY_PG_PASSWORD from the process environment it inherits.
        return {
            "SPARKIFY_WAREHOUSE": self.warehouse,
            "SPARKIFY_DUCKDB_PATH": str(self.duckdb_path),
            "SPARKIFY_RAW_SCHEMA": self.raw_schema,
            "SPARKIFY_PG_HOST": self.postgres.host,
            "SPARKIFY_PG_PORT": str(self.postgres.port),
            "SPARKIFY_PG_USER": self.postgres.user,
            "SPARKIFY_PG_DATABASE": self.postgres.database,
            # The load's allowance, which the daily volumes compare the quarantined lines with.
            "SPARKIFY_MAX_BAD_RECORDS": str(self.max_bad_records),
            "SPARKIFY_MAX_BAD_RATIO": str(self.max_bad_ratio),
        }


def from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    root = Path(env.get("SPARKIFY_HOME", str(_PACKAGE_ROOT))).resolve()
    warehouse = env.get("SPARKIFY_WAREHOUSE", "duckdb").strip().lower()
    if warehouse not in WAREHOUSES:
        raise ValueError(f"SPARKIFY_WAREHOUSE must be one of {', '.join(WAREHOUSES)}, got {warehouse!r}")
    lake = env.get("SPARKIFY_LAKE", "").strip() or str(root / ".local" / "lake")
    if "://" not in lake:
        lake = str(Path(lake).expanduser().resolve())
    elif not lake.startswith("s3://"):
        raise ValueError(f"SPARKIFY_LAKE must be a local directory or s3://bucket/prefix, got {lake!r}")
    else:
        from sparkify.lake import Lake

        Lake(lake)  # its prefix checked: no '..', no glob characters
    config = Settings(
        root=root,
        lake=lake,
        warehouse=warehouse,
        duckdb_path=Path(env.get("SPARKIFY_DUCKDB_PATH", str(root / ".local" / "sparkify.duckdb")))
        .expanduser()
        .resolve(),
        postgres=PostgresSettings(
            host=env.get("SPARKIFY_PG_HOST", "127.0.0.1"),
            port=int(env.get("SPARKIFY_PG_PORT", "5432")),
            user=env.get("SPARKIFY_PG_USER", "postgres"),
            database=validate_identifier(env.get("SPARKIFY_PG_DATABASE", "sparkify"), "SPARKIFY_PG_DATABASE"),
            password=env.get("SPARKIFY_PG_PASSWORD", ""),
            reader=validate_identifier(
                env.get("SPARKIFY_PG_READER", "sparkify_reader"), "SPARKIFY_PG_READER"
            ),
            reader_password=env.get("SPARKIFY_PG_READER_PASSWORD", ""),
        ),
        raw_schema=validate_identifier(env.get("SPARKIFY_RAW_SCHEMA", "landing"), "SPARKIFY_RAW_SCHEMA"),
        aws_conn_id=env.get("SPARKIFY_AWS_CONN_ID", "aws_default"),
        redshift_conn_id=env.get("SPARKIFY_REDSHIFT_CONN_ID", "redshift_default"),
        redshift_reader_conn_id=env.get("SPARKIFY_REDSHIFT_READER_CONN_ID", "redshift_reader"),
        redshift_region=env.get("SPARKIFY_REDSHIFT_REGION") or None,
        redshift_jsonpaths=env.get("SPARKIFY_REDSHIFT_JSONPATHS") or None,
        dbt_project_dir=root / "dbt_sparkify",
        dbt_profiles_dir=root,
        dbt_docs_dir=Path(env.get("SPARKIFY_DBT_DOCS_DIR", str(root / ".local" / "dbt_docs")))
        .expanduser()
        .resolve(),
        duckdb_pool=env.get("SPARKIFY_DUCKDB_POOL", "sparkify_duckdb"),
        retries=int(env.get("SPARKIFY_RETRIES", "2")),
        retry_delay=timedelta(seconds=float(env.get("SPARKIFY_RETRY_DELAY_SECONDS", "300"))),
        max_active_runs=int(env.get("SPARKIFY_MAX_ACTIVE_RUNS", "1")),
        staging_parallelism=_positive(
            env.get("SPARKIFY_STAGING_PARALLELISM", "4"), "SPARKIFY_STAGING_PARALLELISM"
        ),
        max_staging_tasks=_positive(
            env.get("SPARKIFY_MAX_STAGING_TASKS", "31"), "SPARKIFY_MAX_STAGING_TASKS"
        ),
        max_bad_records=_count(env.get("SPARKIFY_MAX_BAD_RECORDS", "10"), "SPARKIFY_MAX_BAD_RECORDS"),
        max_bad_ratio=_ratio(env.get("SPARKIFY_MAX_BAD_RATIO", "0.01"), "SPARKIFY_MAX_BAD_RATIO"),
        dbt_execution=_choice(
            env.get("SPARKIFY_DBT_EXECUTION", "watcher"), "SPARKIFY_DBT_EXECUTION", DBT_EXECUTIONS
        ),
        tuning=_choice(env.get("SPARKIFY_TUNING", "on"), "SPARKIFY_TUNING", ("on", "off")) == "on",
        start_date=_day(env.get("SPARKIFY_START_DATE", ""), "SPARKIFY_START_DATE") or SAMPLE_START,
        end_date=_day(env.get("SPARKIFY_END_DATE", ""), "SPARKIFY_END_DATE"),
        arrival_timeout=duration(env.get("SPARKIFY_ARRIVAL_TIMEOUT", "6h"), "SPARKIFY_ARRIVAL_TIMEOUT"),
        arrival_poke=duration(env.get("SPARKIFY_ARRIVAL_POKE", "5m"), "SPARKIFY_ARRIVAL_POKE"),
        deadline=duration(env.get("SPARKIFY_DEADLINE", "3h"), "SPARKIFY_DEADLINE"),
    )
    if config.end_date is not None and config.end_date < config.start_date:
        raise ValueError(
            f"SPARKIFY_END_DATE ({config.end_date}) is before SPARKIFY_START_DATE ({config.start_date})"
        )
    return config


_DURATION = re.compile(r"([0-9]+)\s*(s|m|min|h|d)?")
_UNITS = {None: 1, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def duration(value: str, name: str) -> timedelta:
    """A duration such as ``6h``, ``30m``, ``90s`` or ``2d`` (a bare number is seconds)."""
    match = _DURATION.fullmatch(value.strip().lower())
    if not match:
        raise ValueError(f"{name} must be a duration such as 6h, 30m or 90s, got {value!r}")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def spoken(span: timedelta) -> str:
    """A duration as a person reads it: ``6 h``, ``1 h 30 min``, ``90 s``."""
    seconds = int(span.total_seconds())
    if seconds < 60 or (seconds < 120 and seconds % 60):
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return " ".join(
        part for part in (f"{hours} h" if hours else "", f"{minutes} min" if minutes else "") if part
    )


def _day(value: str, name: str) -> date | None:
    """A YYYY-MM-DD day, or None when empty."""
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be a day as YYYY-MM-DD, or empty, got {value!r}") from None


def _choice(value: str, name: str, choices: tuple[str, ...]) -> str:
    value = value.strip().lower()
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@cache
def settings() -> Settings:
    """The process-wide settings (the environment does not change under a running process)."""
    return from_env()
