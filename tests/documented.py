"""The shell blocks of README.md and docs/*.md, in the order a reader meets them (README, then the pages in the
order README's "Documentation" list links them, then any other page), each with the marker that says who runs it.

A ```bash block is a command a reader may copy. The HTML comment on the line before it says:
- nothing: tests/docs/test_documented_commands.py runs it, in order, in one fresh copy of the repository;
- ``<!-- run by tests/<file>.py -->``: that test runs it, reading it from the doc;
- ``<!-- not run offline: <reason> -->``: nothing here can run it (an AWS account, a cluster, a remote host).
Any other fenced block names its language (``text``, ``mermaid``): output, layouts and diagrams, never commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
MARKER = re.compile(r"<!--\s*(?P<kind>run by|not run offline:)\s*(?P<what>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int
    lang: str
    text: str
    # "" (the docs test runs it), "run by" or "not run offline:"
    kind: str
    what: str

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}"

    def commands(self) -> list[str]:
        """Its command lines, continuations joined, comment-only and blank lines dropped."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def documents() -> list[Path]:
    readme = REPO / "README.md"
    reading_list = readme.read_text(encoding="utf-8").split("\n## Documentation\n", 1)[1]
    linked = re.findall(r"\]\(docs/([\w-]+\.md)\)", reading_list)
    pages = sorted((REPO / "docs").glob("*.md"))
    ordered = [REPO / "docs" / name for name in dict.fromkeys(linked) if (REPO / "docs" / name).exists()]
    return [readme, *ordered, *(page for page in pages if page not in ordered)]


def blocks(doc: Path) -> list[Block]:
    text = doc.read_text(encoding="utf-8")
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.search(before)
        found.append(
            Block(
                doc=doc.relative_to(REPO).as_posix(),
                line=line,
                lang=match.group("lang"),
                text=match.group("body"),
                kind=marker.group("kind") if marker else "",
                what=marker.group("what") if marker else "",
            )
        )
    return found


def shell_blocks() -> list[Block]:
    return [block for doc in documents() for block in blocks(doc) if block.lang == "bash"]


def block_run_by(test_file: str, doc: str) -> Block:
    """The one block of ``doc`` that ``test_file`` (a path from the repository's root) runs."""
    (block,) = [b for b in shell_blocks() if b.doc == doc and b.kind == "run by" and b.what == test_file]
    return block
