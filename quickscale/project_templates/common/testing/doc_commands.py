"""The shell commands that README.md and docs/*.md show, so a test can run them.

A command is a line of a fenced code block whose info string is ``bash``,
``sh`` or ``console``. Blank lines and ``#`` comments are not commands, a line
ending in a backslash continues on the next, and in a ``console`` block only
lines starting with ``$`` are commands (the others are their output).

Commands of the ``quickscale`` tool are told apart: the project does not
depend on the tool that generated it, so its own tests cannot run them;
QuickScale's test suite loads this file from a built project and runs those.
That is also why it uses the standard library only.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "console"})
TOOL = "quickscale"

# A CommonMark fence: up to three spaces, then three or more backticks or tildes,
# then the info string, whose first word is the language.
_FENCE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<language>[^\s`]*)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Command:
    """One command: where it is shown, and its text as a shell would read it."""

    page: Path
    line: int
    text: str

    @property
    def runs_the_tool(self) -> bool:
        """True when the command runs ``quickscale`` (after any ``NAME=value`` prefixes)."""
        words = shlex.split(self.text, comments=True)
        while words and _ASSIGNMENT.match(words[0]):
            words.pop(0)
        return bool(words) and words[0] == TOOL

    def where(self, root: Path) -> str:
        """``docs/page.md:12``, for failure messages."""
        return f"{self.page.relative_to(root)}:{self.line}"


def doc_pages(root: Path) -> list[Path]:
    """README.md and every page of docs/, in the order a reader meets them."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def shell_commands(page: Path) -> list[Command]:
    """Every command of ``page``'s shell blocks, in order."""
    return [
        Command(page=page, line=line, text=text)
        for line, text in commands_in(page.read_text(encoding="utf-8"))
    ]


def commands_in(markdown: str) -> list[tuple[int, str]]:
    """Return (line number, command) for each command of the shell blocks of ``markdown``."""
    commands: list[tuple[int, str]] = []
    fence = ""
    language = ""
    pending = ""
    start = 0
    for number, line in enumerate(markdown.splitlines(), start=1):
        if not fence:
            opening = _FENCE.match(line)
            if opening:
                fence, language = opening["fence"], opening["language"].lower()
            continue
        stripped = line.strip()
        if stripped.startswith(fence) and stripped == fence[0] * len(stripped):
            if pending:  # a block that ends on a continued line ends the command there
                commands.append((start, pending.rstrip()))
                pending = ""
            fence = ""
            continue
        if language not in SHELL_LANGUAGES:
            continue
        if not pending:
            if language == "console":
                if not stripped.startswith("$"):
                    continue  # output of the command above
                stripped = stripped[1:].strip()
            if not stripped or stripped.startswith("#"):
                continue
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        commands.append((start, pending + stripped))
        pending = ""
    return commands
