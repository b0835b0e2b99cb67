"""One source for the Airflow configuration: airflow/config.env, read by the local Airflow, every Airflow service
of docker-compose.yaml and the Makefile, and set nowhere else."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import yaml

from sparkify.local_airflow import airflow_env, shared_config
from sparkify.settings import from_env
from tests.conftest import REPO

CONFIG = REPO / "airflow" / "config.env"


def test_every_airflow_option_of_the_file_is_one_airflow_reads(tmp_path):
    """A misspelled option would be ignored without a word: Airflow is asked for each under its name."""
    values = shared_config(REPO)
    options = {key: value for key, value in values.items() if key.startswith("AIRFLOW__")}
    assert len(options) >= 6
    code = (
        "import json, sys; from airflow.configuration import conf\n"
        "keys = json.loads(sys.argv[1])\n"
        "print(json.dumps({k: conf.get(*k.split('__')[1:3]) for k in keys}))"
    )
    env = {**os.environ, **values, "AIRFLOW_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code, json.dumps(sorted(options))],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    read = json.loads(result.stdout.strip().splitlines()[-1])
    assert {key: read[key] for key in options} == options


def test_the_local_airflow_takes_the_file_and_a_variable_set_wins(tmp_path):
    values = shared_config(REPO)
    base = {key: value for key, value in os.environ.items() if key not in values}
    env = airflow_env(from_env({}), tmp_path / "home", 8080, base)
    assert {key: env[key] for key in values} == values
    key = "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"
    env = airflow_env(from_env({}), tmp_path / "home", 8080, {**base, key: "0.5"})
    assert env[key] == "0.5"


def test_every_airflow_service_of_the_stack_reads_the_file_and_none_sets_its_keys():
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    keys = set(shared_config(REPO))
    airflow_services = {
        name: service for name, service in compose["services"].items() if name.startswith("airflow-")
    }
    assert len(airflow_services) == 6
    for name, service in airflow_services.items():
        assert service["env_file"] == "./airflow/config.env", name
        assert not keys & set(service.get("environment", {})), name


def test_no_other_file_sets_a_key_of_the_file():
    keys = set(shared_config(REPO))
    places = [
        REPO / "docker-compose.yaml",
        REPO / "docker" / "Dockerfile",
        REPO / "Makefile",
        *(REPO / "src" / "sparkify").rglob("*.py"),
    ]
    found = [
        f"{path.relative_to(REPO)}: {key}"
        for path in places
        for key in keys
        if re.search(rf"\b{key}\b\s*[:=]|\"{key}\"\s*:", path.read_text())
    ]
    assert found == []
    makefile = (REPO / "Makefile").read_text()
    assert "include airflow/config.env" in makefile


def test_make_exports_the_file_to_every_command():
    result = subprocess.run(
        ["make", "-s", "-f", "-", "show"],
        input="include Makefile\nshow:\n\t@env\n",
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    exported = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    values = shared_config(REPO)
    assert {key: exported.get(key) for key in values} == values
