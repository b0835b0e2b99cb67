"""The commands of the compose stack: stack-env (the .env of generated secrets) and upload-lake (the sample lake
into the stack's S3)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sparkify.local_airflow import (
    write_private,
)
from sparkify.settings import settings


def cmd_upload_lake(args: argparse.Namespace) -> int:
    """The compose stack's first start: the generated sample lake into the object store (SPARKIFY_LAKE)."""
    from sparkify.lake import Lake

    config = settings()
    lake = Lake(config.lake, config.aws_conn_id)
    if lake.is_local:
        print(f"error: SPARKIFY_LAKE={config.lake} is not an s3:// lake", file=sys.stderr)
        return 2
    count = lake.upload(Path(args.source))
    print(f"uploaded {count} file(s) from {args.source} to {config.lake}", flush=True)
    return 0


# The secrets docker-compose.yaml requires, each generated once into .env (kept out of git).
STACK_SECRETS = (
    "AIRFLOW_DB_PASSWORD",
    "AIRFLOW_DB_ADMIN_PASSWORD",
    "AIRFLOW_ADMIN_PASSWORD",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_FERNET_KEY",
    "WAREHOUSE_PASSWORD",
    "WAREHOUSE_ADMIN_PASSWORD",
    "MINIO_ROOT_USER",
    "MINIO_ROOT_PASSWORD",
)


def stack_values(existing: dict[str, str]) -> dict[str, str]:
    """The .env of the full stack: existing values kept, missing ones generated."""
    import base64
    import secrets

    generated = {
        name: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        if name == "AIRFLOW_FERNET_KEY"
        else ("sparkify-" + secrets.token_hex(4) if name == "MINIO_ROOT_USER" else secrets.token_urlsafe(24))
        for name in STACK_SECRETS
    }
    return {"AIRFLOW_UID": str(os.getuid()), **generated, **existing}


def cmd_stack_env(_: argparse.Namespace) -> int:
    path = settings().root / ".env"
    existing = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                name, value = line.split("=", 1)
                existing[name.strip()] = value.strip()
    values = stack_values(existing)
    write_private(path, "".join(f"{name}={value}\n" for name, value in values.items()))
    added = sorted(values.keys() - existing.keys())
    print(
        f"{path}: {len(added)} value(s) generated ({', '.join(added) or 'none'}), {len(existing)} kept",
        flush=True,
    )
    return 0
