"""Real git repositories in temp dirs, for tests (never a mocked git)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ENV = {"GIT_AUTHOR_NAME": "Ana Lyst", "GIT_AUTHOR_EMAIL": "ana@example.com",
       "GIT_COMMITTER_NAME": "Ana Lyst", "GIT_COMMITTER_EMAIL": "ana@example.com"}


def git(repo: Path, *args: str) -> str:
    import os

    result = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **ENV}, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", ENV["GIT_AUTHOR_NAME"])
    git(path, "config", "user.email", ENV["GIT_AUTHOR_EMAIL"])
    return path


def commit_file(repo: Path, text: str, message: str, name: str = "stages.yaml",
                author: str | None = None) -> str:
    (repo / name).write_text(text)
    git(repo, "add", name)
    args = ["commit", "-q", "-m", message]
    if author:
        args += ["--author", author]
    git(repo, *args)
    return git(repo, "rev-parse", "HEAD")
