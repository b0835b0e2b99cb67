"""The screen every record passes before a database reads it, the same on DuckDB and PostgreSQL: a record (a log
line, a song file) larger than ``rules.RECORD_LIMIT``, not UTF-8 text, or nested deeper than ``rules.MAX_DEPTH``
is quarantined here, with its size or the reason, and never read whole into memory.

A day's log is read once in chunks of ``CHUNK`` bytes, checking the three limits at C speed (a line's length,
UTF-8, and a line with more opening brackets than the depth allows). A file that passes, as every well-formed one
does, is read by the database as it is. Any other file is read again line by line, each line at most
``RECORD_LIMIT`` bytes at a time, into a copy in which each refused line is replaced by ``PLACEHOLDER`` (line
numbers kept); the database reads the copy, and the refused lines are quarantined with their own reason.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sparkify.staging import rules

CHUNK = 1 << 20
# What a refused line becomes in the copy the database reads; its quarantine reason is the screen's own.
PLACEHOLDER = b"-"
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
# Each byte but an opening bracket and the newline, deleted to find lines with many opening brackets.
_NOT_OPENER = bytes(byte for byte in range(256) if byte not in b"{[\n")
_MANY_OPENERS = re.compile(rb"[^\n]{%d}" % (rules.MAX_DEPTH + 1))
# The bytes of a refused record kept for its quarantined text (clipped to rules.RAW_TEXT_LIMIT characters).
_HEAD = rules.RAW_TEXT_LIMIT * 4


@dataclass(frozen=True)
class Screened:
    """A day's log as the database should read it: ``path`` (the file, or a copy with each refused line replaced
    by ``PLACEHOLDER``), its ``lines`` as ``rules.line_count`` counts them, and the refused lines by number."""

    path: Path
    lines: int | None
    refused: dict[int, rules.Bad] = field(default_factory=dict)


@dataclass
class _Scan:
    lines: int = 0
    clean: bool = True
    first: bytes = b""
    last: bytes = b""


def _scan(path: Path) -> _Scan:
    """One pass in chunks: the line count, and whether every line is within the three limits."""
    scan = _Scan()
    decoder = codecs.getincrementaldecoder("utf-8")()
    run = 0  # bytes of the current line so far
    openers = 0  # opening brackets of the current line so far
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            if not scan.first:
                scan.first = chunk[:3]
            scan.last = chunk[-1:]
            newlines = chunk.count(b"\n")
            scan.lines += newlines
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                scan.clean = False
            compact = chunk.translate(None, _NOT_OPENER)
            if newlines:
                head = chunk.index(b"\n")
                if run + head > rules.RECORD_LIMIT or openers + compact.index(b"\n") > rules.MAX_DEPTH:
                    scan.clean = False
                run = len(chunk) - chunk.rindex(b"\n") - 1
                openers = len(compact) - compact.rindex(b"\n") - 1
            else:
                run += len(chunk)
                openers += len(compact)
            if run > rules.RECORD_LIMIT or openers > rules.MAX_DEPTH or _MANY_OPENERS.search(compact):
                scan.clean = False
            if not scan.clean:
                break
        if scan.clean:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                scan.clean = False
    return scan


def _line_count(scan: _Scan) -> int | None:
    """A clean file's lines as ``rules.line_count`` counts them, from the scan's own counts."""
    if not scan.first or scan.first == _BYTE_ORDER_MARK:
        return None
    return scan.lines if scan.last == b"\n" else scan.lines + 1


def _reason(body: bytes) -> tuple[str, str | None]:
    """A line's text (invalid UTF-8 replaced) and why it is refused, or ``None``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        return body[:_HEAD].decode("utf-8", errors="replace"), (
            f"{rules.NOT_UTF8}: byte 0x{body[error.start]:02x} at offset {error.start} ({error.reason})"
        )
    if rules.may_be_too_deep(text) and rules.nesting_depth(text) > rules.MAX_DEPTH:
        return text, rules.TOO_DEEP
    return text, None


def _copy_refusing(source: str, path: Path, target: Path) -> dict[int, rules.Bad]:
    """Copy ``path`` to ``target`` line by line, each refused line replaced by ``PLACEHOLDER``."""
    refused: dict[int, rules.Bad] = {}
    with path.open("rb") as fh, target.open("wb") as sink:
        number = 0
        while line := fh.readline(rules.RECORD_LIMIT + 1):
            number += 1
            ending = b"\n" if line.endswith(b"\n") else b""
            body = line[: len(line) - len(ending)]
            if len(body) > rules.RECORD_LIMIT:
                size = len(body)
                while more := fh.readline(CHUNK):
                    if more.endswith(b"\n"):
                        size, ending = size + len(more) - 1, b"\n"
                        break
                    size += len(more)
                text, reason = body[:_HEAD].decode("utf-8", errors="replace"), rules.too_large(size)
            else:
                text, reason = _reason(body)
            if reason is None:
                sink.write(line)
            else:
                refused[number] = rules.Bad(source, number, rules.clip(text), rules.clip(reason))
                sink.write(PLACEHOLDER + ending)
    return refused


@contextmanager
def log_file(source: str, path: Path) -> Iterator[Screened]:
    """The day's log ``path`` (named ``source`` in errors and the quarantine), screened."""
    scan = _scan(path)
    if scan.clean:
        yield Screened(path, _line_count(scan))
        return
    with tempfile.TemporaryDirectory(prefix="sparkify-screen-") as folder:
        copy = Path(folder) / path.name
        refused = _copy_refusing(source, path, copy)
        yield Screened(copy, rules.line_count(copy), refused)


def song_file(uri: str, path: Path) -> rules.Bad | None:
    """Why the song file at ``path`` (``uri`` in the lake) is refused before it is parsed, or ``None``."""
    size = path.stat().st_size
    if size > rules.RECORD_LIMIT:
        with path.open("rb") as fh:
            head = fh.read(_HEAD)
        text, reason = head.decode("utf-8", errors="replace"), rules.too_large(size)
    else:
        text, reason = _reason(path.read_bytes())
    return None if reason is None else rules.Bad(uri, None, rules.clip(text), rules.clip(reason))
