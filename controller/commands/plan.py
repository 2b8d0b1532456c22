"""stagectl plan: what apply would do to the live registry, as text, markdown or JSON."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from .. import desired, planner, savedplan, uris
from ..changes import Review, diff
from ..gitops import Checkout
from ..model import DesiredState, LiveState, Step
from ..pipeline import checked_plan, connect, owner, provenance_of, render, select
from ..reporters import json as json_report
from ..reporters import markdown, text
from . import Output


def plan(file: Path, given: uris.Given, fmt: str, detailed_exitcode: bool, base: str | None,
         max_changes: int | None, save_to: Path | None, out: Output, adopt: frozenset[str] = frozenset(),
         models: Sequence[str] = ()) -> int:
    whole = desired.load(file)
    state = select(whole, models)
    before = select(_load_base(file, base), models, strict=False) if base else None
    registry = connect(whole, given, out)
    names = {m.name for m in state.models} | {m.name for m in (before.models if before else ())}
    live = registry.read(sorted(names))
    result = checked_plan(state, live, registry, file=file, before=before, base=base, max_changes=max_changes,
                          adopt=adopt)
    if save_to is not None:
        recorded = provenance_of(file, state, True, result.models(), outside="none (planned outside git)")
        out.write_file(save_to, savedplan.dump(result, live, _source(file, owner(state, file)), registry.uri, recorded,
                                                  registry.lease_model if registry.unity else None))
        out.info(f"Saved the plan to {save_to}; apply it with: stagectl apply {save_to}")
    if base is None:
        out.data(render(result, fmt, str(file), out))
        out.summary(lambda: markdown.render_plan(result, str(file)))
        out.also_json(lambda: json_report.render_plan(result))
    else:
        review = Review(base, diff(before, state), result, _drift(before, live))
        if fmt == "json":
            out.data(json_report.render_review(review))
        elif fmt == "markdown":
            out.data(markdown.render_review(review, str(file)))
        else:
            out.data(text.render_review(review, str(file), color=out.color))
        out.summary(lambda: markdown.render_review(review, str(file)))
        out.also_json(lambda: json_report.render_review(review))
    if result.violations:
        out.info(f"{len(result.violations)} gate{'s' if len(result.violations) != 1 else ''} violated: "
                 "apply would refuse this plan")
        return 1
    if result.held:
        out.info(f"{len(result.held)} model{'s' if len(result.held) != 1 else ''} held: "
                 f"{', '.join(sorted(result.held))}; apply would skip {'them' if len(result.held) != 1 else 'it'}")
        return 1
    return 2 if detailed_exitcode and not result.in_sync else 0


def _source(file: Path, owner: str) -> savedplan.Source:
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    checkout = Checkout.find(file)
    if checkout is None or not checkout.has_commits():
        return savedplan.Source(str(file), digest, owner=owner)
    head = checkout.head()
    subject = head.subject + (" (with uncommitted changes to the stages file)" if checkout.is_dirty() else "")
    return savedplan.Source(str(file), digest, head.sha, head.author, subject, owner)


def _load_base(file: Path, base: str) -> DesiredState:
    """The stages file as it is at `base`; an empty one where it did not exist yet."""
    checkout = Checkout(file)
    source = f"{base}:{checkout.path}"
    text_at_base = checkout.read_at(base)
    if text_at_base is None:
        return DesiredState(source, ())
    return desired.parse(text_at_base, source)


def _drift(before: DesiredState | None, live: LiveState) -> tuple[Step, ...]:
    """Steps that would bring the registry to the file at base: none when the registry matches it."""
    if before is None:
        return ()
    steps: list[Step] = []
    for model in before.models:
        single = DesiredState(before.path, (model,))
        if not planner.check(single, live):  # a model or version gone since is not drift to report here
            steps += planner.plan(single, live, "").steps
    return tuple(steps)
