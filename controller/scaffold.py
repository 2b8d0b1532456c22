"""What `stagectl init` puts in a team's repository: the workflows, the pre-commit entry, the schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from . import __version__
from .errors import ConfigError, Problem

REPOSITORY = "stagectl/stagectl"  # where the action and the pre-commit hook are published
WORKFLOWS = ("stagectl-pr.yml", "stagectl-reconcile.yml", "stagectl-propose.yml")
PRE_COMMIT = ".pre-commit-config.yaml"
# What the generated files may name, as written into YAML, shell and path filters without quoting.
_PLAIN_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*")
_REPOSITORY = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_REF = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_./-]*")
_DEFAULT_NAME = re.compile(r"(^|/)stages\.ya?ml$")  # the hook's own `files:` pattern


@dataclass(frozen=True, slots=True)
class Pin:
    """The stagectl release the generated files use: a commit where one is known (what zizmor and pre-commit
    want pinned), else the version's tag."""

    ref: str
    label: str  # what a person reads beside the ref: the version

    @property
    def is_commit(self) -> bool:
        return len(self.ref) == 40 and all(c in "0123456789abcdef" for c in self.ref)


@dataclass(frozen=True, slots=True)
class File:
    path: str  # relative to the repository's root, with /
    text: str


def files(stages_path: str, stages_text: str | None, action: str, pin: Pin, schema_text: str) -> list[File]:
    """Every file init writes, for a stages file at `stages_path` (relative to the repository's root).
    `stages_text` is None when the stages file exists and stays as it is. `action` is OWNER/REPO (the
    pre-commit hook comes from the same repository, at the same pin) or ./ for the repository's own."""
    check_path(stages_path)
    folder = PurePosixPath(stages_path).parent
    found = [] if stages_text is None else [File(stages_path, stages_text)]
    found.append(File((folder / "schemas/stages.schema.json").as_posix(), schema_text))
    uses = local(action) if action.startswith("./") else f"{action}@{pin.ref}" + (
        f" # {pin.label}" if pin.is_commit else "")
    found += [File(f".github/workflows/{name}", workflow(name, uses, stages_path)) for name in WORKFLOWS]
    found.append(File(PRE_COMMIT, pre_commit_config(pin, hook_repository(action), stages_path)))
    return found


def check_path(stages_path: str) -> None:
    """The stages file's path goes into YAML, path filters and shell lines of the workflows, unquoted."""
    if not _PLAIN_PATH.fullmatch(stages_path) or ".." in stages_path.split("/"):
        why = ("init names this file in the workflows it writes: give it a path of letters, digits, '.', '_', '-' "
               "and '/' (like deploy/stages.yaml)")
        raise ConfigError((Problem(stages_path, why),))


def check_action(action: str, ref: str | None) -> None:
    """--action: OWNER/REPO with an optional @REF, or ./ (the repository's own action.yml)."""
    if action == "./" and ref is None:
        return
    if not _REPOSITORY.fullmatch(action) or (ref is not None and not _REF.fullmatch(ref)):
        raise ConfigError((Problem("--action", f"'{action}{'@' + ref if ref else ''}' is not OWNER/REPO[@REF] "
                                               "(a GitHub repository that holds stagectl's action.yml), nor ./"),))


def hook_repository(action: str) -> str:
    """Where the pre-commit hook comes from: the action's repository, or stagectl's for the local action."""
    return REPOSITORY if action.startswith("./") else action


def local(action: str) -> str:
    """A `uses:` of an action in the repository itself. zizmor suggests GitHub's `$/` form for it, which runners
    do not all take yet: `./` is the form every runner knows."""
    return f"{action} # zizmor: ignore[self-repository]"


def workflow(name: str, uses: str, stages_path: str) -> str:
    template = resources.files("controller").joinpath(f"templates/{name}").read_text(encoding="utf-8")
    return template.replace("@ACTION@", uses).replace("@FILE@", stages_path)


def pre_commit_config(pin: Pin, repository: str = REPOSITORY, stages_path: str = "stages.yaml") -> str:
    return "repos:\n" + pre_commit_entry(pin, repository, stages_path)


def pre_commit_entry(pin: Pin, repository: str = REPOSITORY, stages_path: str = "stages.yaml") -> str:
    """The entry for `repos:` of a .pre-commit-config.yaml; a file the hook's pattern misses is named."""
    label = f"  # {pin.label}" if pin.is_commit else ""
    files = "" if _DEFAULT_NAME.search(stages_path) else f"        files: ^{re.escape(stages_path)}$\n"
    return (f"  - repo: https://github.com/{repository}\n"
            f"    rev: {pin.ref}{label}\n"
            "    hooks:\n"
            "      - id: stagectl-validate\n" + files)


def schema_text(name: str = "stages") -> str:
    """A packaged JSON Schema as shipped: what `stagectl schema` prints and init writes beside the file."""
    return resources.files("controller").joinpath(f"schemas/{name}.schema.json").read_text(encoding="utf-8")


def next_steps(stages_path: str) -> str:
    return f"""Next steps:
  1. In the repository's settings on GitHub, create two environments with these secrets:
       mlflow-plan      (read-only, for pull requests and proposals)
                        MLFLOW_TRACKING_URI, MLFLOW_PLAN_USERNAME, MLFLOW_PLAN_PASSWORD
       mlflow-registry  (write access, for apply; protect it: deployment branch main)
                        MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, MLFLOW_TRACKING_PASSWORD
  2. Optional: the repository variable STAGECTL_DRIFT_MODE (heal, report or propose) for scheduled runs.
  3. pip install pre-commit && pre-commit install   (validates {stages_path} on every commit)
  4. Commit these files, push, and open a pull request that changes {stages_path}: its plan appears as a
     comment, and merging it applies the change.
  5. Optional: let promotions propose themselves: add propose: [staging, production] under a policy, and
     store a GitHub App or fine-grained token as the secret STAGECTL_PROPOSE_TOKEN, so that the pull
     requests stagectl-propose.yml opens get planned too.
"""


def default_pin(resolve_tag: Callable[[str], str | None] | None = None) -> Pin:
    """The installed stagectl's commit: from pip's record of a git install, else from stagectl's own checkout
    it runs from, else its version's tag resolved to a commit on the repository (`resolve_tag`, a network
    call); else the tag itself."""
    label = f"v{__version__}"
    commit = _installed_commit() or _source_commit()
    if commit is None and resolve_tag is not None:
        commit = resolve_tag(label)
    return Pin(commit, label) if commit else Pin(label, label)


def _installed_commit() -> str | None:
    from .extras import origin

    found = origin().get("vcs_info")
    commit = found.get("commit_id") if isinstance(found, dict) else None
    return commit if isinstance(commit, str) and Pin(commit, "").is_commit else None


def _source_commit() -> str | None:
    """HEAD of the stagectl checkout this module is loaded from (an editable install); None anywhere else,
    including a team's repository that happens to hold stagectl in a virtualenv."""
    from pathlib import Path

    from .gitops import Checkout

    here = Path(__file__).resolve()
    checkout = Checkout.find(here)
    if checkout is None or not checkout.has_commits() or checkout.path != "controller/scaffold.py":
        return None
    if not checkout.tracked() or not (checkout.root / "action.yml").is_file():
        return None
    return checkout.head().sha
