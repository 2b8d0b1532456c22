"""stagectl plan: what apply would do to the live registry, as text, markdown or JSON."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .. import desired, planner, uris
from ..errors import ConfigError
from ..model import DesiredState, Plan
from ..reporters import json as json_report
from ..reporters import markdown, text
from . import Output

if TYPE_CHECKING:  # importing the registry module loads mlflow: only when a command needs it
    from ..registry import Registry


def compute(file: Path, tracking_uri: str | None, out: Output) -> tuple[DesiredState, Registry, Plan]:
    """Load and check the file, read the registry, check the file against it, and plan."""
    state = desired.load(file)
    uri = uris.resolve(tracking_uri, state.tracking_uri)
    out.also_hide(uri)
    from ..registry import Registry

    registry = Registry(uri)
    live = registry.read([m.name for m in state.models])
    problems = planner.check(state, live)
    if problems:
        raise ConfigError(problems)
    return state, registry, planner.plan(state, live, registry.display_uri)


def render(plan: Plan, fmt: str, source: str, out: Output) -> str:
    if fmt == "json":
        return json_report.render_plan(plan)
    if fmt == "markdown":
        return markdown.render_plan(plan, source)
    return text.render_plan(plan, source, color=out.color)


def plan(file: Path, tracking_uri: str | None, fmt: str, detailed_exitcode: bool, out: Output) -> int:
    _, _, result = compute(file, tracking_uri, out)
    out.data(render(result, fmt, str(file), out))
    return 2 if detailed_exitcode and not result.in_sync else 0
