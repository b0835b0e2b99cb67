"""No credentials in the repository: every tracked file is scanned for the shapes secrets take."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}\b"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "password in a URI": re.compile(r"\b[a-z][a-z0-9+]*://[^\s:/@'\"]+:[^\s@'\"{}$<>]{3,}@"),
    "assigned password": re.compile(r"(?i)\b(password|passwd|secret)\s*[=:]\s*['\"][^'\"{}$<>\s]{6,}['\"]"),
}
# Credentials of the test servers this suite starts itself (moto, trust-auth PostgreSQL): not secrets.
TEST_VALUES = ("sparkify-test-secret", "sparkify-test-key", "known-warehouse-password")


def findings(text: str) -> list[str]:
    found = []
    for what, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            if not any(value in match.group(0) for value in TEST_VALUES):
                found.append(f"{what}: {match.group(0)[:60]}")
    return found


def test_no_secret_in_tracked_files():
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(files) > 50
    problems = []
    for name in files:
        path = REPO / name
        if path.is_file() and path.stat().st_size < 2_000_000:
            text = path.read_text(encoding="utf-8", errors="ignore")
            problems += [f"{name}: {finding}" for finding in findings(text)]
    assert problems == []


def test_the_scanner_finds_secrets():
    # Assembled here so that this file itself holds none of them.
    key_id = "AKIA" + "IOSFODNN7EXAMPLE"
    secret_key = "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY"
    leaked = "\n".join(
        [
            f"aws_access_key_id = {key_id}",
            f"aws_secret_access_key = {secret_key}",
            "postgresql://etl:" + "hunter2hunter2@db:5432/sparkify",
            "password = " + '"correct-horse-battery"',
        ]
    )
    assert len(findings(leaked)) == 4
