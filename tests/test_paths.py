"""Symlinks: nothing is read through one that leaves its tree, nothing is written through one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller import desired, paths
from controller.errors import ConfigError
from controller.output import Output
from tests.gitrepo import make_repo

VALID = "apiVersion: stagectl/v1\nmodels:\n  fraud-detector: {production: 2}\n"


def test_a_symlink_out_of_the_repository_is_refused_without_reading_it(tmp_path: Path) -> None:
    outside = tmp_path / "private.yaml"
    outside.write_text("db_password: hunter2-canary\n")
    repo = make_repo(tmp_path / "repo")
    (repo / "stages.yaml").symlink_to(outside)
    with pytest.raises(ConfigError) as raised:
        desired.load(repo / "stages.yaml", "stages.yaml")
    assert str(raised.value) == ("stages.yaml: is a symlink to a file outside its git repository; stagectl does "
                                 "not read through it. Use the file itself (copy it in)")
    assert "hunter2" not in str(raised.value) and "private" not in str(raised.value)


def test_a_symlink_within_the_repository_is_read(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "config").mkdir()
    (repo / "config" / "stages.yaml").write_text(VALID)
    (repo / "stages.yaml").symlink_to("config/stages.yaml")
    assert [m.name for m in desired.load(repo / "stages.yaml").models] == ["fraud-detector"]


def test_outside_a_repository_the_current_directory_is_the_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    (elsewhere / "stages.yaml").write_text(VALID)
    (work / "inside.yaml").write_text(VALID)
    (work / "out.yaml").symlink_to(elsewhere / "stages.yaml")
    (work / "in.yaml").symlink_to("inside.yaml")
    monkeypatch.chdir(work)
    with pytest.raises(ConfigError, match="outside the current directory"):
        desired.load(Path("out.yaml"))
    assert desired.load(Path("in.yaml")).models
    folder_link = work / "linked-folder"
    folder_link.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(ConfigError, match="outside the current directory"):
        desired.load(folder_link / "stages.yaml")


def test_nothing_is_written_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text(VALID)
    link = tmp_path / "stages.yaml"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match=r"stages.yaml: is a symlink; stagectl does not write through one"):
        paths.check_write(link)
    paths.check_write(target)
    paths.check_write(tmp_path / "new.yaml")  # a file that does not exist yet is fine
    assert os.path.islink(link) and target.read_text() == VALID


def test_a_file_a_command_writes_is_masked_and_never_a_symlink(tmp_path: Path) -> None:
    out = Output(secrets=("canary-secret-551",))
    report = tmp_path / "plan.json"
    out.write_file(report, '{"tracking_uri": "https://h/?sig=c2ln&sv=1", "note": "canary-secret-551"}\n')
    assert report.read_text() == '{"tracking_uri": "https://h/?sig=***&sv=***", "note": "***"}\n'
    (tmp_path / "link.json").symlink_to(report)
    with pytest.raises(ConfigError, match="is a symlink"):
        out.write_file(tmp_path / "link.json", "overwritten\n")
    assert "overwritten" not in report.read_text()
