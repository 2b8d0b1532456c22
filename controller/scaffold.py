"""What `stagectl init` puts in a team's repository: the workflows, the pre-commit entry, the schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from . import __version__

REPOSITORY = "stagectl/stagectl"  # where the action and the pre-commit hook are published
WORKFLOWS = ("stagectl-pr.yml", "stagectl-reconcile.yml")
PRE_COMMIT = ".pre-commit-config.yaml"


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
    `stages_text` is None when the stages file exists and stays as it is."""
    folder = PurePosixPath(stages_path).parent
    found = [] if stages_text is None else [File(stages_path, stages_text)]
    found.append(File((folder / "schemas/stages.schema.json").as_posix(), schema_text))
    uses = local(action) if action.startswith("./") else f"{action}@{pin.ref}" + (
        f" # {pin.label}" if pin.is_commit else "")
    found += [File(f".github/workflows/{name}", workflow(name, uses, stages_path)) for name in WORKFLOWS]
    found.append(File(PRE_COMMIT, pre_commit_config(pin)))
    return found


def local(action: str) -> str:
    """A `uses:` of an action in the repository itself. zizmor suggests GitHub's `$/` form for it, which runners
    do not all take yet: `./` is the form every runner knows."""
    return f"{action} # zizmor: ignore[self-repository]"


def workflow(name: str, uses: str, stages_path: str) -> str:
    template = resources.files("controller").joinpath(f"templates/{name}").read_text(encoding="utf-8")
    return template.replace("@ACTION@", uses).replace("@FILE@", stages_path)


def pre_commit_config(pin: Pin) -> str:
    label = f"  # {pin.label}" if pin.is_commit else ""
    return ("repos:\n"
            f"  - repo: https://github.com/{REPOSITORY}\n"
            f"    rev: {pin.ref}{label}\n"
            "    hooks:\n"
            "      - id: stagectl-validate\n")


def pre_commit_entry(pin: Pin) -> str:
    """The entry to add to an existing .pre-commit-config.yaml's `repos:`."""
    return pre_commit_config(pin).removeprefix("repos:\n")


def schema_text() -> str:
    schema = resources.files("controller").joinpath("schemas/stages.schema.json").read_text(encoding="utf-8")
    return json.dumps(json.loads(schema), indent=2) + "\n"


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
"""


def default_pin() -> Pin:
    """The installed stagectl's commit: from pip's record of a git install, else from the checkout it runs
    from; else its version's tag."""
    commit = _installed_commit() or _source_commit()
    label = f"v{__version__}"
    return Pin(commit, label) if commit else Pin(label, label)


def _installed_commit() -> str | None:
    from .extras import origin

    found = origin().get("vcs_info")
    commit = found.get("commit_id") if isinstance(found, dict) else None
    return commit if isinstance(commit, str) and Pin(commit, "").is_commit else None


def _source_commit() -> str | None:
    from pathlib import Path

    from .gitops import Checkout

    here = Path(__file__).resolve()
    checkout = Checkout.find(here)
    if checkout is None or not checkout.has_commits() or not (checkout.root / "action.yml").is_file():
        return None  # not stagectl's own checkout
    return checkout.head().sha
