"""Where stagectl may read and write files: never through a symlink out of the tree it works in, never onto one."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError, Problem


def boundary(path: Path) -> Path:
    """The tree `path` belongs to: the git working tree holding it, else the current directory (resolved)."""
    here = Path(os.path.abspath(path)).parent
    for folder in (here, *here.parents):
        if (folder / ".git").exists():
            return folder.resolve()
    return Path.cwd().resolve()


def check_read(path: Path, display: str | None = None) -> None:
    """Refuse a file reached through a symlink that leads out of its tree: a committed link to a file elsewhere
    on the machine (a fork's pull request, say) must not get that file's contents printed in errors."""
    lexical = Path(os.path.abspath(path))
    try:
        real = lexical.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise ConfigError((Problem(display or str(path), "is a symlink that cannot be resolved (a loop?)"),)) from None
    if real == lexical:
        return  # no symlink on the way
    tree = boundary(path)
    if not real.is_relative_to(tree):
        where = "its git repository" if (tree / ".git").exists() else "the current directory"
        raise ConfigError((Problem(display or str(path), f"is a symlink to a file outside {where}; stagectl "
                                   "does not read through it. Use the file itself (copy it in)"),))


def check_write(path: Path, display: str | None = None) -> None:
    """Refuse to write onto a symlink: the write would change the file it points to, wherever that is."""
    if path.is_symlink():
        raise ConfigError((Problem(display or str(path), "is a symlink; stagectl does not write through one. "
                                   "Write to the file it points to, or remove the link first"),))

