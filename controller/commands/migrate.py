"""stagectl migrate: move the file's lifecycle from stages to both, then to aliases, by editing stages.yaml."""

from __future__ import annotations

from pathlib import Path

from .. import desired, edit
from ..errors import ConfigError, Problem
from ..model import Mode
from ..pipeline import read_for_edit, write_edit
from . import Output

_NEXT = {
    Mode.BOTH: "Open a pull request: its plan sets the aliases and changes no stage. Once applied, switch "
               "applications to models:/NAME@{production} (or get_model, which follows every mode), then run "
               "stagectl migrate --to aliases. To roll back, revert the pull request: stages were never touched.",
    Mode.ALIASES: "Open a pull request: its plan takes the versions out of Staging and Production, so a reader "
                  "still asking for models:/NAME/Production fails loudly. To roll back, revert it: the next apply "
                  "puts the versions back in their stages.",
}


def migrate(file: Path, to: Mode, branch: str | None, out: Output, *, production_alias: str | None = None,
            staging_alias: str | None = None) -> int:
    text, checkout = read_for_edit(file, branch)
    state = desired.load(file)  # the file's bytes checked too (size, encoding), as every command reads it
    if to is Mode.ALIASES and any(m.lifecycle.mode is Mode.STAGES for m in state.models):
        out.info("note: the file still follows stages; moving straight to aliases takes versions out of their "
                 "stages in the same apply that sets the aliases. Going through --to both first lets applications "
                 "switch in between.")
    try:
        new = edit.set_lifecycle(text, to.value, str(file), production_alias=production_alias,
                                 staging_alias=staging_alias)
    except ConfigError as e:
        hint = Problem(str(file), f"fix the lines above, then run stagectl migrate --to {to} again (an alias "
                       "points at one version; --production-alias and --staging-alias choose other names)")
        raise ConfigError((*e.problems, hint)) from None
    migrated = desired.parse(new, str(file)).models
    own = [m.name for m in migrated if m.lifecycle.mode is not to]
    if own:
        out.info(f"these models keep the lifecycle of their own lifecycle key: {', '.join(own)}")
    if new == text:
        out.info(f"{file} already follows {to}; nothing to change")
        return 0
    write_edit(file, new, f"Move the lifecycle to {to}", checkout, branch, out)
    out.info(_NEXT[to].format(production=migrated[0].lifecycle.production_alias if migrated else "production"))
    return 0
