"""The environment of a local Airflow: its home, its secrets and its configuration, from the one file every
deployment shares (``airflow/config.env``) plus what is local (executor, ports, paths)."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from sparkify.dbt_docs import docs_projects_config
from sparkify.lake import Lake
from sparkify.settings import Settings

ADMIN_USER = "admin"
# The LocalExecutor with dbt warmed up before it forks task processes (src/sparkify/tuning/executor.py).
WARM_LOCAL_EXECUTOR = "sparkify.tuning.executor.WarmLocalExecutor"
# The Airflow configuration every deployment shares, relative to the project's root.
SHARED_CONFIG = Path("airflow") / "config.env"


def airflow_home(settings: Settings) -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", settings.root / ".local" / "airflow"))


def write_private(path: Path, text: str) -> None:
    """Write a file that only its owner can read: created with mode 0600 (the umask can only narrow it), so it is
    never readable by others, not even until a chmod; an existing file is replaced whole, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as fh:
        fh.write(text)
    temporary.replace(path)


def _secret(path: Path) -> str:
    """A random value generated once per AIRFLOW_HOME and kept there (never in the repository)."""
    if not path.exists():
        write_private(path, secrets.token_urlsafe(24))
    return path.read_text().strip()


def shared_config(root: Path) -> dict[str, str]:
    """``airflow/config.env``: KEY=VALUE lines, comments and blank lines aside."""
    path = root / SHARED_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: SPARKIFY_HOME ({root}) must be the project's checkout")
    values = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        if not separator or not key.strip():
            raise ValueError(f"{root / SHARED_CONFIG}:{number}: not KEY=VALUE: {line!r}")
        values[key.strip()] = value.strip()
    return values


def airflow_env(
    settings: Settings, home: Path, port: int, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment every Airflow process of this project runs with: the shared configuration
    (``airflow/config.env``) and the executor, unless ``base`` (the environment by default) sets them, and this
    home's own paths, ports and secrets."""
    env = dict(os.environ if base is None else base)
    passwords = home / "passwords.json"
    if not passwords.exists():
        write_private(passwords, json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
    defaults = {
        **shared_config(settings.root),
        "AIRFLOW__CORE__EXECUTOR": WARM_LOCAL_EXECUTOR,
        # Each local Airflow serves its task logs on its own port, so two of them can run side by side.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        **settings.dbt_env(),
    }
    # The schedule ends with a local lake's last day: unpausing the DAG (which every backfill does) then never
    # schedules a day the lake cannot hold, such as yesterday. A backfill still takes any day.
    last_day = Lake(settings.lake).last_local_day()
    if last_day and not settings.end_date:
        defaults["SPARKIFY_END_DATE"] = last_day.isoformat()
    env.update({key: value for key, value in defaults.items() if not env.get(key)})
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(settings.root / "airflow" / "dags"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home / ".jwt_secret"),
            "AIRFLOW__API__SECRET_KEY": _secret(home / ".api_secret_key"),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            # Cosmos keeps dbt's partial-parse cache here: one per Airflow home, so two homes never share it.
            "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
            "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": docs_projects_config(settings),
        }
    )
    return env


def admin_password(home: Path) -> str:
    return json.loads((home / "passwords.json").read_text())[ADMIN_USER]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
