"""stagectl init: start managing a registry from a team's repository, with the files CI and editors need."""

from __future__ import annotations

from pathlib import Path

from .. import desired, paths, scaffold, uris
from ..errors import ConfigError, Problem
from ..gitops import Checkout, GitError, tag_commit
from ..pipeline import from_registry
from . import Output


def init(file: Path, models: list[str], given: uris.Given, action: str, pin: scaffold.Pin | None, force: bool,
         dry_run: bool, out: Output) -> int:
    checkout = Checkout.find(file)
    if checkout is None:
        raise GitError(f"{file} is not inside a git repository: run stagectl init in the repository that will hold "
                       "stages.yaml (git init first, for a new one)")
    root = checkout.root
    stages_path = checkout.path
    scaffold.check_path(stages_path)
    if pin is None:
        remote = None if action.startswith("./") else f"https://github.com/{action}"
        pin = scaffold.default_pin(lambda tag: tag_commit(remote, tag) if remote else None)
    # The team's declarations are theirs: an existing stages file is never replaced, not even with --force.
    keep_stages = (root / stages_path).exists() or (root / stages_path).is_symlink()
    stages_text = None if keep_stages else from_registry(models, given, out, "stagectl init")[1]
    planned = scaffold.files(stages_path, stages_text, action, pin, scaffold.schema_text())
    if keep_stages:
        desired.load(root / stages_path)  # the workflows will check it: say now if it does not pass
    writes, lines = [], []
    for f in planned:
        target = root / f.path
        paths.check_write(target, f.path)
        if not target.parent.resolve().is_relative_to(root):
            raise ConfigError((Problem(f.path, "leads out of the repository through a symlinked folder; stagectl "
                                               "does not write through it"),))
        if not target.exists():
            writes.append(f)
            lines.append(f"  create     {f.path}")
        elif target.read_text(encoding="utf-8", errors="replace") == f.text:
            lines.append(f"  unchanged  {f.path}")
        elif f.path == scaffold.PRE_COMMIT:  # the team's hooks: never replaced, even with --force
            lines.append(f"  keep       {f.path} (exists: add the entry below to its repos)")
        elif force:
            writes.append(f)
            lines.append(f"  overwrite  {f.path}")
        else:
            lines.append(f"  keep       {f.path} (exists and differs; --force to overwrite)")
    if keep_stages:
        lines.insert(0, f"  keep       {stages_path} (exists: stagectl export shows the registry's state)")
    out.info(("Would write" if dry_run else "Writing") + f" in {root}:\n" + "\n".join(lines))
    pre_commit = root / scaffold.PRE_COMMIT
    if pre_commit.exists() and "stagectl-validate" not in pre_commit.read_text(encoding="utf-8", errors="replace"):
        out.info(f"\nAdd to {scaffold.PRE_COMMIT} under repos:\n"
                 f"{scaffold.pre_commit_entry(pin, scaffold.hook_repository(action), stages_path)}")
    if not pin.is_commit:
        out.info(f"\nThe action and the hook are pinned to the tag {pin.ref}, whose commit could not be looked up: "
                 f"pin them to it (git ls-remote https://github.com/{scaffold.REPOSITORY} {pin.ref}), as zizmor "
                 "asks, or run init again with --action OWNER/REPO@COMMIT.")
    if dry_run:
        return 0
    for f in writes:
        target = root / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if f.path == stages_path:  # from the registry: masked like any output
            out.write_file(target, f.text)
        else:  # stagectl's own templates, written as they are (the scrubber would mask the push URL's ${GH_TOKEN})
            target.write_text(f.text, encoding="utf-8")
    if not writes:
        out.info("Nothing to write: the repository already has every file.")
    out.info("\n" + scaffold.next_steps(stages_path))
    return 0


def parse_action(value: str) -> tuple[str, scaffold.Pin | None]:
    """--action OWNER/REPO[@REF] (or ./): where the generated workflows take the action from."""
    name, at, ref = value.partition("@")
    scaffold.check_action(name, ref if at else None)
    return name, (scaffold.Pin(ref, ref) if ref else None)
