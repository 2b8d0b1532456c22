"""A plan saved to a file with what it was computed against, and the check that refuses it once stale."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jsonschema

from . import lifecycle, uris
from .errors import ConfigError, ControllerError, Problem
from .gitops import Commit, Provenance
from .model import (
    Check,
    DeleteAlias,
    Lifecycle,
    LiveModel,
    LiveState,
    MarkArchived,
    Mode,
    Plan,
    SetAlias,
    SetLifecycle,
    Stage,
    Step,
    Transition,
    version_key,
)
from .reporters.json import plan_data

KIND = "stagectl-saved-plan"


class StalePlanError(ControllerError):
    """The registry changed since the plan was saved: applying it could undo or collide with that change."""


@dataclass(frozen=True, slots=True)
class Source:
    """What the plan was computed from."""

    path: str
    sha256: str
    commit: str | None = None
    author: str | None = None
    subject: str | None = None
    owner: str | None = None  # who manages the models: recorded on the ones it changes


@dataclass(frozen=True, slots=True)
class SavedPlan:
    plan: Plan
    source: Source
    snapshot: Mapping[str, Mapping[str, Any]]  # model → {"versions": {v: stage}, "aliases": {a: v}}
    registry_uri: str | None = None  # where to apply it: the URI without credentials; None if it cannot be kept
    tags: Mapping[str, Mapping[str, str]] | None = None  # model → provenance tags, as apply would set them
    unity_lease: str | None = None  # in Unity Catalog: the lease's model, where the file's applies take it


def registry_uri(uri: str) -> str | None:
    """The registry's URI as a plan can keep it: user:password@ dropped (credentials come from the environment
    at apply time), None when a secret is part of the address itself (a token in the query)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return None
    if "@" in parts.netloc:
        uri = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return None if uris.MASK in uris.redact(uri) else uri


def snapshot(model: LiveModel) -> dict[str, Any]:
    """What a plan of the model depends on. The lifecycle's own marks only where present, so that a model that
    follows stages has the snapshot it always had."""
    found: dict[str, Any] = {
        "versions": {v: model.versions[v].stage.value for v in sorted(model.versions, key=version_key)},
        "aliases": dict(sorted(model.aliases.items()))}
    archived = sorted(lifecycle.marked(model), key=version_key)
    if archived:
        found["archived"] = archived
    if lifecycle.LIFECYCLE_TAG in model.tags:
        found["lifecycle"] = model.tags[lifecycle.LIFECYCLE_TAG]
    return found


def fingerprint(state: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def dump(plan: Plan, live: LiveState, source: Source, uri: str, provenance: Provenance,
         unity_lease: str | None = None) -> str:
    touched = sorted(set(plan.models()) | set(plan.blocked))
    states = {name: snapshot(live.models[name]) for name in touched}
    data = {
        "kind": KIND,
        **plan_data(plan),
        "registry_uri": registry_uri(uri),
        "source": {"path": source.path, "sha256": source.sha256, "commit": source.commit,
                   "author": source.author, "subject": source.subject, "owner": source.owner},
        "provenance": {name: {k: v for k, v in provenance.tags_for(name).items() if k != "stagectl.run_url"}
                       for name in plan.models()},
        "live": {name: {**state, "fingerprint": fingerprint(state)} for name, state in states.items()},
        **({"unity_catalog": {"lease_model": unity_lease}} if unity_lease else {}),
    }
    return json.dumps(data, indent=2) + "\n"


def provenance(saved: SavedPlan, run_url: str | None) -> Provenance:
    """The provenance apply records for a saved plan: what the plan recorded, and the run applying it."""
    source = saved.source
    applied = Commit(source.commit, source.author or "", "", source.subject or "") if source.commit else None
    if saved.tags is None:  # saved before plans recorded each model's provenance: the commit planned from
        return Provenance(applied, run_url=run_url, outside="none (planned outside git)")
    return _Recorded(applied, run_url=run_url, recorded=saved.tags)


@dataclass(frozen=True, slots=True)
class _Recorded(Provenance):
    recorded: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    def tags_for(self, model: str) -> dict[str, str]:
        if model not in self.recorded:
            return Provenance.tags_for(self, model)
        tags = dict(self.recorded[model])
        if self.run_url:
            tags["stagectl.run_url"] = self.run_url
        return tags


def expected(saved: SavedPlan) -> dict[str, dict[str, Any]]:
    """Each touched model as the plan leaves it: the snapshot with every step carried out."""
    after = {name: {**s, "versions": dict(s["versions"]), "aliases": dict(s["aliases"])}
             for name, s in saved.snapshot.items()}
    for step in saved.plan.steps:
        state = after[step.model]
        if isinstance(step, Transition):
            state["versions"][step.version] = step.to_stage.value
        elif isinstance(step, SetAlias):
            state["aliases"][step.alias] = step.version
        elif isinstance(step, DeleteAlias):
            state["aliases"].pop(step.alias, None)
        elif isinstance(step, MarkArchived):
            marked = set(state.get("archived", ())) - {step.version} | ({step.version} if step.archived else set())
            state["archived"] = sorted(marked, key=version_key)
            if not marked:
                del state["archived"]
        else:
            state["lifecycle"] = lifecycle.tag_value(step.lifecycle)
    return after


def already_applied(saved: SavedPlan, live: LiveState) -> bool:
    """Whether the registry is exactly where the plan leads (and the plan changes something)."""
    if saved.plan.in_sync:
        return False
    for name, state in expected(saved).items():
        model = live.models.get(name)
        if model is None or fingerprint(snapshot(model)) != fingerprint(state):
            return False
    return True


def load(text: str, name: str) -> SavedPlan:
    try:
        data = json.loads(text)
        jsonschema.validate(data, _schema())
    except (json.JSONDecodeError, jsonschema.ValidationError) as e:
        message = e.msg if isinstance(e, json.JSONDecodeError) else e.message
        raise ConfigError((Problem(name, f"not a saved stagectl plan: {message}"),)) from None
    plan = Plan(
        tracking_uri=data["tracking_uri"],
        steps=tuple(_step(s) for s in data["steps"]),
        checks=tuple(Check(c["gate"], c["model"], c["version"], c["ok"], c["detail"]) for c in data.get("checks", [])),
        targets=tuple(data.get("models", ())),
    )
    source = Source(**data["source"])
    states = {name: {k: v for k, v in s.items() if k != "fingerprint"} for name, s in data["live"].items()}
    return SavedPlan(plan, source, states, data.get("registry_uri"), data.get("provenance"),
                     data.get("unity_catalog", {}).get("lease_model"))


def changes_since(saved: SavedPlan, live: LiveState) -> list[str]:
    """What changed in the touched models since the plan was saved, in words; empty when nothing did."""
    found = []
    for name, then in sorted(saved.snapshot.items()):
        model = live.models.get(name)
        if model is None:
            found.append(f"{name}: the model no longer exists")
            continue
        now = snapshot(model)
        if fingerprint(now) == fingerprint(then):
            continue
        for version in sorted(set(then["versions"]) | set(now["versions"]), key=version_key):
            a, b = then["versions"].get(version), now["versions"].get(version)
            if a != b:
                found.append(f"{name}: version {version} " + (f"is new ({b})" if a is None else
                             "is gone" if b is None else f"was {a}, is now {b}"))
        for alias in sorted(set(then["aliases"]) | set(now["aliases"])):
            a, b = then["aliases"].get(alias), now["aliases"].get(alias)
            if a != b:
                found.append(f"{name}: alias {alias} was on version {a or '(none)'}, is now on {b or '(none)'}")
        if then.get("archived") != now.get("archived"):
            was, is_now = (", ".join(s.get("archived", ())) or "none" for s in (then, now))
            found.append(f"{name}: the versions tagged {lifecycle.ARCHIVED_TAG} were {was}, are now {is_now}")
        if then.get("lifecycle") != now.get("lifecycle"):
            found.append(f"{name}: the recorded lifecycle was {then.get('lifecycle') or 'none'}, "
                         f"is now {now.get('lifecycle') or 'none'}")
    return found


def _step(data: Mapping[str, Any]) -> Step:
    if data["action"] == "set_alias":
        stands_for = data.get("stands_for")
        return SetAlias(data["model"], data["alias"], data["version"], data["from_version"],
                        Stage(stands_for) if stands_for else None)
    if data["action"] == "delete_alias":
        return DeleteAlias(data["model"], data["alias"], data["version"])
    if data["action"] == "mark_archived":
        return MarkArchived(data["model"], data["version"], data["archived"])
    if data["action"] == "set_lifecycle":
        was = data["from_lifecycle"]
        return SetLifecycle(data["model"], _lifecycle(data["lifecycle"]), _lifecycle(was) if was else None)
    return Transition(data["model"], data["version"], Stage(data["from_stage"]), Stage(data["to_stage"]),
                      archive_existing_versions=data.get("archive_existing_versions", False),
                      archived_by=data.get("archived_by"))


def _lifecycle(data: Mapping[str, str]) -> Lifecycle:
    return Lifecycle(Mode(data["mode"]), data["production_alias"], data["staging_alias"])


def _schema() -> dict[str, Any]:
    from importlib import resources

    schema: dict[str, Any] = json.loads(
        resources.files("controller").joinpath("schemas/saved-plan.schema.json").read_text("utf-8"))
    return schema
