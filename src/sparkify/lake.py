"""Where the raw files are: a local directory laid out like the bucket, or ``s3://bucket/prefix``.

Staging reads local files: a local lake's own, or copies of an S3 lake's objects fetched into a temporary
folder. The source recorded with each row is always the lake's path or ``s3://`` URI.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

SONG_KEY = re.compile(r"song_data/[^/]+/[^/]+/[^/]+/[^/]+\.json")
_DOWNLOAD_THREADS = 16
# A key that climbs out of its folder (``..``), names the folder itself (``.``), is absolute, or holds a glob or
# escape character: in a local lake or a temporary folder it would reach other files, in COPY other objects.
_UNSAFE_KEY = re.compile(r"(^|/)\.{1,2}(/|$)|^/|//|[*?\[\]{}\\\x00-\x1f]")


class LakeError(FileNotFoundError):
    """A file the pipeline needs is not in the lake."""


def check_key(key: str, what: str = "lake key") -> str:
    """``key`` if it is a plain path below the lake's root, else a ``ValueError`` naming it."""
    if not key or _UNSAFE_KEY.search(key):
        raise ValueError(
            f"{what} {key!r} refused: a key is a plain path below the lake's root, without '.' or '..' parts, "
            "'//', a leading '/', glob characters (* ? [ ] { }), backslashes or control characters"
        )
    return key


@dataclass(frozen=True)
class LocalFiles:
    """Local copies of lake files: ``root`` stands for the lake's root, ``files`` are below it."""

    root: Path
    files: list[Path]


@dataclass(frozen=True)
class SongListing:
    """The song files' keys below the lake's root, sorted, and a digest of their keys and versions: equal
    digests mean the same files, unchanged."""

    keys: list[str]
    fingerprint: str


@dataclass(frozen=True)
class Lake:
    root: str
    aws_conn_id: str = "aws_default"

    def __post_init__(self) -> None:
        if not self.is_local:
            prefix = self.bucket_and_prefix()[1]
            if prefix:
                check_key(prefix, "the lake's S3 prefix")

    @staticmethod
    def log_key(day: date) -> str:
        """The bucket-relative key of a day's event log, ``log_data/2018/11/2018-11-01-events.json``."""
        return f"log_data/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"

    @property
    def is_local(self) -> bool:
        return "://" not in self.root

    def last_local_day(self) -> date | None:
        """The last day a local lake has a log file for (None: no file, or the lake is on S3)."""
        if not self.is_local:
            return None
        days = [
            date.fromisoformat(path.name.removesuffix("-events.json"))
            for path in Path(self.root).glob("log_data/[0-9]*/[0-9]*/????-??-??-events.json")
        ]
        return max(days, default=None)

    def uri(self, key: str) -> str:
        return f"{self.root.rstrip('/')}/{check_key(key)}"

    def write(self, key: str, data: bytes) -> str:
        """Write one object (a report the pipeline produces) at ``key``, replacing it; its URI or path."""
        check_key(key)
        if self.is_local:
            path = Path(self.root) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return str(path)
        self._s3().put_object(Bucket=self.bucket_and_prefix()[0], Key=self._s3_key(key), Body=data)
        return self.uri(key)

    # -- S3 -------------------------------------------------------------------------------------------------
    def bucket_and_prefix(self) -> tuple[str, str]:
        match = re.fullmatch(r"s3://([^/]+)/?(.*)", self.root)
        if not match:
            raise ValueError(f"lake {self.root!r}: expected a local directory or s3://bucket/prefix")
        return match.group(1), match.group(2).strip("/")

    def _s3_key(self, key: str) -> str:
        prefix = self.bucket_and_prefix()[1]
        return f"{prefix}/{key}" if prefix else key

    def _s3(self) -> Any:
        """A boto3 S3 client from the Airflow connection (its extra may set endpoint_url, region_name)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from botocore.config import Config

        config = Config(max_pool_connections=_DOWNLOAD_THREADS)
        return S3Hook(aws_conn_id=self.aws_conn_id, config=config).get_conn()

    def upload(self, local_root: Path) -> int:
        """Copy a local lake's files (``sparkify.datagen``'s output) into this S3 lake, creating the bucket if it is
        missing; the number of files."""
        bucket = self.bucket_and_prefix()[0]
        client = self._s3()
        if bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=bucket)
        files = sorted(path for path in local_root.rglob("*") if path.is_file())
        with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
            list(
                pool.map(
                    lambda path: client.upload_file(
                        str(path), bucket, self._s3_key(check_key(path.relative_to(local_root).as_posix()))
                    ),
                    files,
                )
            )
        return len(files)

    def _download(self, client: Any, key: str, target: Path) -> None:
        from botocore.exceptions import ClientError

        bucket = self.bucket_and_prefix()[0]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            client.download_file(bucket, self._s3_key(key), str(target))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NoSuchBucket"}:
                raise LakeError(f"not in the lake: expected {self.uri(key)}") from error
            raise

    def _song_objects(self, client: Any) -> list[tuple[str, str]]:
        """``(key, version)`` of every song object, sorted; the version is its size and ETag."""
        bucket, prefix = self.bucket_and_prefix()
        start = f"{prefix}/" if prefix else ""
        objects = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{start}song_data/"
        ):
            for item in page.get("Contents", []):
                key = item["Key"][len(start) :]
                if SONG_KEY.fullmatch(key):
                    objects.append((check_key(key, "song file key"), f"{item['Size']} {item['ETag']}"))
        return sorted(objects)

    # -- what staging uses -----------------------------------------------------------------------------------
    @contextmanager
    def log_file(self, day: date, key: str | None = None) -> Iterator[tuple[str, Path]]:
        """The day's log file as a local path, with its lake URI; an error naming it when it is missing."""
        key = check_key(key or self.log_key(day), "the day's log key")
        if self.is_local:
            path = Path(self.root) / key
            if not path.is_file():
                raise LakeError(f"no event log for {day:%Y-%m-%d}: expected {path}")
            yield str(path), path
            return
        with tempfile.TemporaryDirectory(prefix="sparkify-lake-") as folder:
            path = Path(folder) / key
            try:
                self._download(self._s3(), key, path)
            except LakeError as error:
                raise LakeError(f"no event log for {day:%Y-%m-%d}: expected {self.uri(key)}") from error
            yield self.uri(key), path

    def log_where(self, day: date) -> str:
        """Where the day's event log is expected: its path, or its ``s3://`` URI."""
        key = self.log_key(day)
        return str(Path(self.root) / key) if self.is_local else self.uri(key)

    def missing_logs(self, days: list[date]) -> list[date]:
        """Those of ``days`` whose event log is not in the lake yet (S3: the provider's hook asks for each key)."""
        if self.is_local:
            return [day for day in days if not (Path(self.root) / self.log_key(day)).is_file()]
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        hook, bucket = S3Hook(aws_conn_id=self.aws_conn_id), self.bucket_and_prefix()[0]
        return [day for day in days if not hook.check_for_key(self._s3_key(self.log_key(day)), bucket)]

    def song_listing(self) -> SongListing:
        """Every song file (``song_data/<A>/<B>/<C>/*.json``), sorted, with a fingerprint of their versions
        (local: size and modification time; S3: size and ETag); an error naming the folder if there is none."""
        if self.is_local:
            root = Path(self.root)
            objects = []
            for path in sorted(root.glob("song_data/*/*/*/*.json")):
                stat = path.stat()
                objects.append((path.relative_to(root).as_posix(), f"{stat.st_size} {stat.st_mtime_ns}"))
        else:
            objects = self._song_objects(self._s3())
        if not objects:
            raise LakeError(
                f"no song files under {self.uri('song_data')} (expected song_data/<A>/<B>/<C>/TR*.json)"
            )
        digest = hashlib.sha256()
        for key, version in objects:
            digest.update(f"{key}\t{version}\n".encode())
        return SongListing(keys=[key for key, _ in objects], fingerprint=digest.hexdigest())

    @contextmanager
    def song_files(self, listing: SongListing | None = None) -> Iterator[LocalFiles]:
        """The song files of ``listing`` (default: listed now) as local files, sorted."""
        keys = (listing or self.song_listing()).keys
        if self.is_local:
            root = Path(self.root)
            yield LocalFiles(root=root, files=[root / key for key in keys])
            return
        client = self._s3()
        with tempfile.TemporaryDirectory(prefix="sparkify-lake-") as folder:
            root = Path(folder)
            with ThreadPoolExecutor(_DOWNLOAD_THREADS) as pool:
                list(pool.map(lambda key: self._download(client, key, root / key), keys))
            yield LocalFiles(root=root, files=[root / key for key in keys])
