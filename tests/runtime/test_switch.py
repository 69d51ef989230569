"""Changing QUICKSCALE_RUNTIME is never silent: the next `up` says the data did not move."""

from __future__ import annotations

from quickscale.project import Project
from quickscale.runtime.switch import MARKER, note_runtime_switch


def test_first_start_records_the_runtime_without_a_note(tmp_path):
    project = Project(root=tmp_path)

    assert note_runtime_switch(project, "local") is None
    assert (tmp_path / ".quickscale" / MARKER).read_text() == "local\n"


def test_same_runtime_again_says_nothing(tmp_path):
    project = Project(root=tmp_path)
    note_runtime_switch(project, "docker")

    assert note_runtime_switch(project, "docker") is None


def test_a_switch_says_where_the_data_stayed_and_how_to_go_back(tmp_path):
    project = Project(root=tmp_path)
    note_runtime_switch(project, "docker")

    note = note_runtime_switch(project, "local")

    assert note is not None
    assert "last ran with the docker runtime and now runs with local" in note
    assert "stays in Docker's named volumes" in note
    assert "set QUICKSCALE_RUNTIME=docker in .env" in note
    assert note_runtime_switch(project, "local") is None
