"""stagectl migrate: move the file's lifecycle from stages to both, then to aliases, by editing stages.yaml."""

from __future__ import annotations

from pathlib import Path

from .. import desired, edit, paths
from ..errors import ConfigError, Problem
from ..gitops import Checkout, GitError
from ..model import Mode
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
    paths.check_read(file)
    paths.check_write(file)
    state = desired.load(file)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError((Problem(str(file), "file not found"),)) from None
    checkout = Checkout(file) if branch else None
    if checkout is not None and checkout.is_dirty():
        raise GitError(f"{file} has uncommitted changes; commit or stash them before --branch")
    modes = {m.lifecycle.mode for m in state.models}
    if to is Mode.ALIASES and Mode.STAGES in modes:
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
    own = [m.name for m in desired.parse(new, str(file)).models if m.lifecycle.mode is not to]
    if own:
        out.info(f"these models keep the lifecycle of their own lifecycle key: {', '.join(own)}")
    if new == text:
        out.info(f"{file} already follows {to}; nothing to change")
        return 0
    lifecycle = next((m.lifecycle for m in desired.parse(new, str(file)).models), None)
    message = f"Move the lifecycle to {to}"
    if checkout is not None and branch is not None:
        commit = checkout.commit_on_new_branch(branch, new, message)
        out.info(f"{message}: committed {commit.sha[:7]} on new branch '{branch}'")
    else:
        file.write_text(new, encoding="utf-8")
        out.info(f"{message}: {file} updated")
    out.info(_NEXT[to].format(production=lifecycle.production_alias if lifecycle else "production"))
    return 0
