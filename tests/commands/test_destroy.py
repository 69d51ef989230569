"""`quickscale destroy`: confirm by typing the name, then remove data and folder."""

from __future__ import annotations

from quickscale.cli import app


def test_a_wrong_name_removes_nothing(runner, inside, fake_runtime):
    result = runner.invoke(app, ["destroy"], input="demoo\n")

    assert result.exit_code == 1
    assert "Nothing removed" in result.stderr
    assert (inside / "manage.py").is_file()
    assert (inside / ".quickscale/manifest.json").is_file()
    assert fake_runtime.calls == []


def test_no_answer_at_all_removes_nothing(runner, inside, fake_runtime):
    result = runner.invoke(app, ["destroy"], input="")

    assert result.exit_code == 1
    assert "Nothing removed" in result.stderr
    assert inside.is_dir()
    assert fake_runtime.calls == []


def test_typing_the_name_removes_data_and_folder(runner, inside, fake_runtime):
    result = runner.invoke(app, ["destroy"], input="demo\n")

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["destroy"]
    assert not inside.exists()
    assert f"Removed {inside}" in result.stdout


def test_run_from_inside_it_moves_to_the_parent_and_says_so(runner, inside, fake_runtime):
    from pathlib import Path

    result = runner.invoke(app, ["destroy", "--yes"])

    assert result.exit_code == 0, result.output
    assert Path.cwd() == inside.parent
    assert f"cd {inside.parent}" in result.stdout


def test_yes_skips_the_question(runner, inside, fake_runtime):
    result = runner.invoke(app, ["destroy", "--yes"])

    assert result.exit_code == 0
    assert "Type" not in result.stdout
    assert not inside.exists()


def test_runtime_destroy_runs_before_the_folder_goes(runner, inside, fake_runtime):
    runner.invoke(app, ["destroy", "--yes"])

    name, (cwd_at_destroy,) = fake_runtime.calls[0]
    assert name == "destroy"
    assert cwd_at_destroy == inside  # the project was still there and we were in it


def test_destroy_outside_a_project_exits_2(runner, in_tmp, fake_runtime):
    (in_tmp / "keep.txt").write_text("x")

    result = runner.invoke(app, ["destroy", "--yes"])

    assert result.exit_code == 2
    assert (in_tmp / "keep.txt").is_file()
    assert fake_runtime.calls == []


def test_a_project_with_a_missing_env_can_still_be_destroyed(runner, inside, fake_runtime):
    (inside / ".env").unlink()

    result = runner.invoke(app, ["destroy", "--yes"])

    assert result.exit_code == 0, result.output
    assert fake_runtime.names() == ["destroy"]
    assert not inside.exists()
