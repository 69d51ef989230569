"""Templates: read again on every render with DEBUG on, cached outside DEBUG.

Under uvicorn nothing resets Django's cached loader when a template changes (only
runserver's autoreloader does), so development must not cache.
"""

import os

import pytest

from common.testing.process import run_python

# Renders a page, changes its file, renders it again; prints both renders.
RENDER_TWICE = """
import pathlib, tempfile
import django
django.setup()
from django.template import engines
backend = engines["django"]
folder = pathlib.Path(tempfile.mkdtemp())
backend.engine.dirs = [str(folder), *backend.engine.dirs]
page = folder / "probe_edited.html"
page.write_text("before")
first = backend.get_template("probe_edited.html").render({})
page.write_text("after")
print(first, backend.get_template("probe_edited.html").render({}))
"""


@pytest.mark.parametrize(
    ("debug", "renders"), [("True", "before after"), ("False", "before before")]
)
def test_an_edited_template_shows_on_the_next_render_only_with_debug_on(debug, renders):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="core.settings", DEBUG=debug, IS_PRODUCTION="False")
    result = run_python(["-c", RENDER_TWICE], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == renders
