"""Every shell block of README.md and docs/*.md is run by a test or says why nothing here can run it."""

from __future__ import annotations

import re

from tests.documented import REPO, blocks, documents, shell_blocks

# Languages that are commands: they must be ```bash so that the docs test finds them.
SHELLS = {"sh", "shell", "console", "zsh", "shell-session"}


def test_every_fence_names_its_language_and_commands_are_bash():
    for doc in documents():
        for block in blocks(doc):
            assert block.lang, (
                f"{block}: a fenced block names its language (bash for commands, text for output)"
            )
            assert block.lang not in SHELLS, f"{block}: commands are ```bash, so that a test runs them"


def test_every_shell_block_is_run_or_says_why_not():
    for block in shell_blocks():
        if block.kind == "run by":
            runner = REPO / block.what
            assert runner.is_file(), f"{block}: {block.what} does not exist"
            assert block.doc in runner.read_text(encoding="utf-8"), f"{block}: {block.what} does not read it"
        elif block.kind == "not run offline:":
            assert len(block.what) > 10, f"{block}: say why it cannot run offline"
        else:
            assert block.kind == "", block


def test_the_markers_are_recognised():
    # A marker spelled another way would leave its block to the docs test, which would then fail on it.
    for doc in documents():
        text = doc.read_text(encoding="utf-8")
        markers = re.findall(r"^<!--\s*(?:run by|not run offline)", text, re.M)
        assert len(markers) == sum(1 for block in blocks(doc) if block.kind), doc
