"""stagectl transition-version: propose a promotion by editing stages.yaml (never the registry)."""

from __future__ import annotations

from pathlib import Path

from .. import edit
from ..errors import ConfigError, Problem
from ..pipeline import read_for_edit, write_edit
from . import Output


def transition_version(file: Path, model: str, version: int, stage: str | None, alias: str | None,
                       branch: str | None, out: Output, *, move_aliases: bool = False) -> int:
    if (stage is None) == (alias is None):
        raise ConfigError((Problem(str(file), "give exactly one of --stage and --alias"),))
    if move_aliases and stage in (None, "archived"):
        raise ConfigError((Problem(str(file), "--move-aliases goes with --stage production or --stage staging: "
                                   "it moves the aliases of the versions replaced there to the new one"),))
    text, checkout = read_for_edit(file, branch)
    left: dict[str, str] = {}
    if stage is not None:
        left = edit.replaced(text, model, str(version), stage, str(file))
        new = edit.move_version(text, model, str(version), stage, str(file), move_aliases=move_aliases)
        message = f"Move {model} version {version} to {stage}"
        if move_aliases and left:
            message += f", with alias{'es' if len(left) > 1 else ''} {', '.join(left)}"
    else:
        assert alias is not None
        new = edit.move_alias(text, model, alias, str(version), str(file))
        message = f"Point {model} alias {alias} at version {version}"
    for name, target in left.items():
        if move_aliases:
            out.info(f"alias {name} moves from version {target} to version {version}")
        else:
            out.info(f"alias {name} stays on version {target}, which moves to archived"
                     + (f"; pass --move-aliases to move it to version {version}" if stage != "archived" else
                        "; point it elsewhere with --alias if it should not stay on an archived version"))
    if new == text:
        out.info(f"{file} already declares that; nothing to change")
        return 0
    write_edit(file, new, message, checkout, branch, out)
    return 0
