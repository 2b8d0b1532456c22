"""What people expect of a command-line tool they install beside others: a version, completion, a schema for
their editor, install hints they can run, a changelog, and a package that builds and passes PyPI's checks."""

from __future__ import annotations

import email
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import controller
from controller.extras import install_hint
from tests.e2e.helpers import stagectl
from tests.gitrepo import git

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return stagectl(*args, cwd=cwd, env=env, timeout=60)


def test_version_is_the_packages() -> None:
    from importlib import metadata

    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"stagectl {controller.__version__}\n"
    installed = {d.version for d in metadata.distributions(name="stagectl") if d.read_text("direct_url.json")}
    assert installed == {controller.__version__}  # what pip recorded: one version, written in one place


def test_init_pins_a_commit_from_git_else_resolves_the_release_tag_else_says_it_is_a_tag(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from controller import extras, scaffold

    tag = f"v{controller.__version__}"
    monkeypatch.setattr(extras, "origin", lambda: {"url": "https://github.com/stagectl/stagectl",
                                                    "vcs_info": {"vcs": "git", "commit_id": "c" * 40}})
    assert scaffold.default_pin(lambda t: None) == scaffold.Pin("c" * 40, tag)  # pip install git+...@commit
    monkeypatch.setattr(extras, "origin", lambda: {})
    monkeypatch.setattr(scaffold, "_source_commit", lambda: None)  # a wheel from the index
    asked: list[str] = []
    assert scaffold.default_pin(lambda t: asked.append(t) or "d" * 40) == scaffold.Pin("d" * 40, tag)
    assert asked == [tag]
    offline = scaffold.default_pin(lambda t: None)
    assert offline == scaffold.Pin(tag, tag) and not offline.is_commit


def test_changelog_has_this_release() -> None:
    assert f"## [{controller.__version__}] - " in (ROOT / "CHANGELOG.md").read_text()


def test_schema_prints_the_stages_files_schema_and_the_reports() -> None:
    assert run("schema").stdout == (ROOT / "schemas/stages.schema.json").read_text()
    assert json.loads(run("schema", "apply").stdout)["$id"] == "urn:stagectl:schema:apply:v2"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_call_back_into_stagectl(shell: str) -> None:
    result = run("completion", shell)
    assert result.returncode == 0, result.stderr
    assert "_STAGECTL_COMPLETE=complete_" + shell in result.stdout


def test_completion_answers_commands_options_and_choices_as_bash_asks(tmp_path: Path) -> None:
    def ask(words: str) -> list[str]:
        cword = len(words.split()) - (0 if words.endswith(" ") else 1)
        result = run(env={"_STAGECTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
                     cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert ask("stagectl pl") == ["plan"]
    assert "--detailed-exitcode" in ask("stagectl plan --de")
    assert ask("stagectl drift --mode ") == ["report", "heal", "propose"]
    assert ask("stagectl completion ") == ["bash", "zsh", "fish"]
    # And a real bash, with the script stagectl prints, completes the same.
    script = run("completion", "bash").stdout
    probe = (f"{script}\nCOMP_WORDS=(stagectl tran); COMP_CWORD=1; _stagectl_completion stagectl; "
             'echo "${COMPREPLY[@]}"')
    bash = subprocess.run(["bash", "--norc", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}, timeout=60)
    assert bash.stdout.split() == ["transition-version"], bash.stderr


@pytest.mark.parametrize(("origin", "hint"), [
    ({}, "pip install 'stagectl[local]'"),
    ({"url": "file:///home/ana/stagectl", "dir_info": {"editable": True}},
     "pip install -e '/home/ana/stagectl[local]'"),
    ({"url": "file:///home/ana/my%20tools/stagectl", "dir_info": {}},
     "pip install '/home/ana/my tools/stagectl[local]'"),
    ({"url": "file:///home/ana/it's", "dir_info": {}}, "pip install '/home/ana/it'\"'\"'s[local]'"),
    ({"url": "https://github.com/stagectl/stagectl", "vcs_info": {"vcs": "git", "commit_id": "a" * 40}},
     f"pip install 'stagectl[local] @ git+https://github.com/stagectl/stagectl@{'a' * 40}'"),
    ({"url": "https://ana:tok3n@git.example.com:8443/ml/tools", "subdirectory": "stagectl",
      "vcs_info": {"vcs": "git", "commit_id": "b" * 40}},
     f"pip install 'stagectl[local] @ git+https://git.example.com:8443/ml/tools@{'b' * 40}#subdirectory=stagectl'"),
    ({"url": "https://example.com/stagectl-0.2.0.tar.gz", "archive_info": {}},
     "pip install 'stagectl[local] @ https://example.com/stagectl-0.2.0.tar.gz'"),
])
def test_install_hints_name_what_pip_can_install(origin: dict[str, object], hint: str) -> None:
    assert install_hint("local", origin) == hint


def test_the_install_hint_here_names_this_checkout() -> None:
    assert install_hint("local") in (f"pip install -e '{ROOT}[local]'", f"pip install '{ROOT}[local]'")


def test_a_database_uri_without_mlflows_sql_store_says_how_to_install_it(tmp_path: Path) -> None:
    """As after a plain install (mlflow-skinny, no extras): a Python where sqlalchemy and alembic are absent."""
    site = Path(sysconfig.get_paths()["purelib"])
    without = tmp_path / "site-without-sql"
    without.mkdir()
    for entry in site.iterdir():
        if not entry.name.lower().startswith(("sqlalchemy", "alembic")):
            (without / entry.name).symlink_to(entry)
    home = tmp_path / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    (next((home / "lib").glob("python3*/site-packages")) / "deps.pth").write_text(f"{ROOT}\n{without}\n")
    (tmp_path / "stages.yaml").write_text("apiVersion: stagectl/v1\nmodels: {}\n")
    subprocess.run([sys.executable, str(ROOT / "tests/seed.py"), "demo", f"sqlite:///{tmp_path}/r.db"], check=True,
                   capture_output=True, timeout=300)
    before = (tmp_path / "r.db").read_bytes()
    result = subprocess.run([str(home / "bin/python"), "-m", "controller", "plan", "--tracking-uri",
                             f"sqlite:///{tmp_path}/r.db"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 1
    assert "needs MLflow's SQL store (sqlalchemy is not installed)" in result.stderr, result.stderr
    assert "pip install " in result.stderr and "[local]'" in result.stderr
    assert (tmp_path / "r.db").read_bytes() == before


def test_the_package_builds_and_passes_pypis_checks(tmp_path: Path) -> None:
    """From the files git would ship, offline: the wheel holds what stagectl reads at run time."""
    source = tmp_path / "src"
    for name in git(ROOT, "ls-files", "-co", "--exclude-standard").splitlines():
        path = ROOT / name
        if not path.exists() and not path.is_symlink():
            continue  # deleted in the working tree
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        else:
            shutil.copy2(path, target)
    dist = tmp_path / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    files = sorted(dist.iterdir())
    assert [f.name for f in files] == [f"stagectl-{controller.__version__}-py3-none-any.whl",
                                       f"stagectl-{controller.__version__}.tar.gz"]
    twine = subprocess.run([str(BIN / "twine"), "check", "--strict", *map(str, files)], capture_output=True,
                           text=True, timeout=120)
    assert twine.returncode == 0, twine.stdout + twine.stderr
    with zipfile.ZipFile(files[0]) as wheel:
        names = set(wheel.namelist())
        info = f"stagectl-{controller.__version__}.dist-info"
        meta = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert {"controller/py.typed", "controller/schemas/stages.schema.json", "controller/schemas/plan.schema.json",
            "controller/templates/stagectl-pr.yml", "controller/templates/stagectl-reconcile.yml"} <= names
    assert "stagectl = controller.cli:main" in entry_points
    assert f"{info}/licenses/LICENSE" in names and meta["License-Expression"] == "Apache-2.0"
    assert meta["Version"] == controller.__version__ and meta["Requires-Python"] == ">=3.11"
    assert meta["Description-Content-Type"] == "text/markdown"
    assert "Programming Language :: Python :: 3.11" in meta.get_all("Classifier")
    assert any(url.startswith("Changelog, ") for url in meta.get_all("Project-URL"))
    # Nothing held below a release without a known break, except typer (see the README's "Start-up").
    capped = [r for r in meta.get_all("Requires-Dist") if "<" in r and "extra ==" not in r]
    assert capped == ["typer<0.29,>=0.12"] or capped == ["typer>=0.12,<0.29"], capped
