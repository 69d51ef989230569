"""Which lines of a Markdown page are commands (common/testing/doc_commands.py)."""

from pathlib import Path

import pytest

from common.testing.doc_commands import Command, commands_in

PAGE = """\
# A page

    indented code is not a fenced block: ruff check .

```bash
# a comment, then a blank line, are not commands

pytest credits  # one app
ruff check . \\
  --fix
```

```python
print("not a shell block")
```

~~~~markdown
A fence closes only with its own character, so this is still markdown:
```bash
pytest
```
~~~~

~~~sh
lint-imports
~~~

```console
$ python manage.py check
System check identified no issues (0 silenced).
$ mypy .
```

```
pytest -q  (no language: not a shell block)
```
"""


def test_commands_are_the_lines_of_bash_sh_and_console_blocks_only():
    assert commands_in(PAGE) == [
        (8, "pytest credits  # one app"),
        (9, "ruff check . --fix"),
        (25, "lint-imports"),
        (29, "python manage.py check"),
        (31, "mypy ."),
    ]


def test_a_block_that_ends_on_a_continued_line_ends_the_command_there():
    assert commands_in("```bash\nruff check . \\\n```\npytest\n") == [(2, "ruff check .")]


@pytest.mark.parametrize(
    ("text", "runs_the_tool"),
    [
        ("quickscale up", True),
        ("quickscale manage configure_service --list  # costs", True),
        ("WEB_PORT=8010 quickscale up", True),
        ("DEBUG=False python manage.py check", False),
        ("pytest public -m 'not browser'", False),
        ("ruff check . && quickscale up", False),
    ],
)
def test_commands_of_the_quickscale_tool_are_told_apart(text, runs_the_tool):
    assert Command(page=Path("README.md"), line=1, text=text).runs_the_tool is runs_the_tool
