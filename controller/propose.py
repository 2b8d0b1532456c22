"""Promotions that propose themselves: which versions are candidates, the branch each proposal lives on, and
whether it qualifies. Pure: the command reads the registry, edits the file and writes git."""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

from . import lifecycle
from .gates import MetricResult
from .model import Check, DesiredModel, LiveModel, Plan, Stage, version_key

BRANCH_PREFIX = "stagectl/promote"
_BRANCH_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_HASHED = re.compile(r"-[0-9a-f]{8}$")


class Status(enum.StrEnum):
    CREATED = "created"  # a new branch
    UPDATED = "updated"  # the branch held an older proposal (another version, or an older file): replaced
    UNCHANGED = "unchanged"  # the branch already proposes exactly this


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    stage: str  # "staging" or "production", as the file spells the keys
    version: str


def candidates(want: DesiredModel, have: LiveModel) -> list[Candidate]:
    """The promotions the model's policy asks stagectl to propose, best first.

    staging: the newest READY version newer than every version the file names for the model (a version the
    file already names has been decided on by a person) and every version serving now. production: the versions
    in staging (as the file declares it, else as the registry has it) newer than every version in production,
    declared or serving, newest first; the first that passes every gate is the one proposed. Never backwards.
    """
    wanted = want.policy.propose or frozenset()
    found = []
    in_production = lifecycle.versions_in(have, Stage.PRODUCTION, want.lifecycle)
    in_staging = lifecycle.versions_in(have, Stage.STAGING, want.lifecycle)
    if "staging" in wanted:
        named = set(want.archived).union(want.aliases.values(), *want.declared().values()) | in_production | in_staging
        floor = max((version_key(v) for v in named), default=0)
        fresh = [v for v, lv in have.versions.items() if lv.status == "READY" and version_key(v) > floor]
        if fresh:
            found.append(Candidate(want.name, "staging", max(fresh, key=version_key)))
    if "production" in wanted:
        staging = want.staging if want.staging is not None else in_staging
        floor = max((version_key(v) for v in set(want.production or ()) | in_production), default=0)
        ready = [v for v in staging if v in have.versions and have.versions[v].status == "READY"]
        found += [Candidate(want.name, "production", v)
                  for v in sorted(ready, key=version_key, reverse=True) if version_key(v) > floor]
    return found


def branch(model: str, stage: str) -> str:
    """`stagectl/promote/<model>/<stage>`, stable across runs so that a newer candidate replaces the older one.

    A name that is not plain (letters, digits, `._-`) is spelt with those, plus a short hash of the real name,
    so that no two models share a branch and no shell or URL has to quote it.
    """
    if (_BRANCH_SAFE.fullmatch(model) and ".." not in model and not model.endswith((".lock", "."))
            and len(model) <= 100 and not _HASHED.search(model)):  # a plain name never looks like a hashed one
        part = model
    else:
        plain = re.sub(r"[^A-Za-z0-9_-]+", "-", model).strip("-") or "model"
        part = f"{plain[:60]}-{hashlib.sha256(model.encode()).hexdigest()[:8]}"
    return f"{BRANCH_PREFIX}/{part}/{stage}"


@dataclass(frozen=True, slots=True)
class Proposal:
    """One candidate judged: the plan of the file with it promoted, its gates, and, once written, its branch."""

    candidate: Candidate
    branch: str
    text: str  # the stages file with the promotion declared
    plan: Plan  # the edited file's plan, for this model alone
    metrics: tuple[MetricResult, ...] = ()
    status: Status | None = None  # None until written (or judged not to qualify)
    commit: str | None = None
    body: str = ""  # the pull request's description (also the commit message's body)

    @property
    def failed(self) -> tuple[str, ...]:
        """Why it does not qualify: every failed gate, a hold, a freeze; empty when it qualifies."""
        reasons = [f"{c.gate}: {c.detail}" for c in self.plan.checks if not c.ok]
        reasons += [f"held: {why}" for why in self.plan.held.values()]
        reasons += [f"frozen: {why}" for why in self.plan.frozen.values()]
        return tuple(reasons)

    @property
    def checks(self) -> tuple[Check, ...]:
        return self.plan.checks

    @property
    def title(self) -> str:
        c = self.candidate
        return f"Promote {c.model} version {c.version} to {c.stage}"
