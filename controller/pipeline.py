"""The steps of the pipeline that commands share: find the registry, plan with gates, render a plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import desired, planner, uris
from .errors import ConfigError
from .gitops import Checkout
from .model import DesiredState, LiveState, Plan
from .output import Output
from .reporters import json as json_report
from .reporters import markdown, text

if TYPE_CHECKING:  # importing the registry module loads mlflow: only when a command needs it
    from .registry import Registry


def connect(state: DesiredState | None, given: uris.Given, out: Output) -> Registry:
    """The registry a command works on, found as MLflow finds it (uris.locate); every command asks here."""
    where = uris.locate(given, state.tracking_uri if state else None, state.registry_uri if state else None)
    out.also_hide(where.registry_uri)
    out.also_hide(where.tracking_uri)
    from .registry import Registry

    return Registry(where.registry_uri, where.tracking_uri)


def owner(state: DesiredState, file: Path) -> str:
    """Who manages the file's models: its `owner:` key, else its repository and path, else its path."""
    if state.owner:
        return state.owner
    checkout = Checkout.find(file)
    return checkout.identity() if checkout else file.resolve().as_posix()


def checked_plan(state: DesiredState, live: LiveState, registry: Registry, *, file: Path,
                 before: DesiredState | None = None, base: str | None = None,
                 max_changes: int | None = None, staged: dict[str, dict[str, str]] | None = None,
                 adopt: frozenset[str] = frozenset()) -> Plan:
    """The plan with its gates; a model the registry cannot take as declared is held in it, alone.

    `staged` (see staged_before) may be passed by a caller that plans more than once from one file.
    Models another stages file manages are changed only when `adopt` names them.
    """
    if staged is None:
        staged = staged_before(file, state, before, base)
    return planner.plan(state, live, registry.display_uri, staged_before=staged, max_changes=max_changes,
                        owner=owner(state, file), adopt=adopt)


def staged_before(file: Path, state: DesiredState, before: DesiredState | None,
                  base: str | None) -> dict[str, dict[str, str]]:
    """Where each version was last declared in staging: on the base ref, else in the file's git history."""
    if not any(m.policy.promote_from == "staging" for m in state.models):
        return {}
    if before is not None and base is not None:
        return {m.name: dict.fromkeys(m.staging or (), base) for m in before.models}
    checkout = Checkout.find(file)
    found: dict[str, dict[str, str]] = {}
    for commit, _, text_then in checkout.history() if checkout else ():
        try:
            then = desired.parse(text_then or "", f"{commit.sha[:7]}:{file}")
        except ConfigError:
            continue
        for model in then.models:
            for version in model.staging or ():
                found.setdefault(model.name, {}).setdefault(version, f"commit {commit.sha[:7]}")
    return found


def render(plan: Plan, fmt: str, source: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_plan(plan)
    if fmt == "markdown":
        return markdown.render_plan(plan, source)
    return text.render_plan(plan, source, color=out.color)
