"""The application side: resolve "the production model" to exactly one pinned version, or refuse."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import lifecycle, unity, uris
from .errors import AmbiguousModelError, RegistryError, ResolveError, UnreviewedModelError
from .model import DesiredModel, DesiredState, Stage, VersionDetail, version_key

_STAGES = {"production": Stage.PRODUCTION, "staging": Stage.STAGING, "archived": Stage.ARCHIVED}


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """One model version, pinned: `uri` names the version itself, never a stage or an alias."""

    name: str
    version: str
    stage: str
    aliases: tuple[str, ...]
    uri: str
    run_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    model: Any = None  # the loaded pyfunc model, with load=True

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "stage": self.stage, "aliases": list(self.aliases),
                "uri": self.uri, "run_id": self.run_id, "tags": dict(self.tags)}


def get_model(
    name: str,
    stage: str | None = None,
    alias: str | None = None,
    tracking_uri: str | None = None,
    stages_file: str | os.PathLike[str] | None = None,
    load: bool = False,
    registry_uri: str | None = None,
) -> ResolvedModel:
    """The one version of `name` in `stage` (or behind `alias`), pinned by number.

    With `stages_file` (or STAGECTL_STAGES_FILE), also require the registry to agree with that reviewed
    file for this model. With `load`, also load it through mlflow.pyfunc (needs the full mlflow package).
    """
    if (stage is None) == (alias is None):
        raise ResolveError("give exactly one of stage= and alias=")
    wanted = _parse_stage(stage) if stage is not None else None
    file = stages_file or os.environ.get("STAGECTL_STAGES_FILE")
    reviewed, state = _reviewed(Path(file), name) if file else (None, None)
    where = uris.locate(uris.Given(tracking_uri, registry_uri), state.tracking_uri if state else None,
                        state.registry_uri if state else None)

    from .registry import Registry

    in_unity = state is not None and unity.expected(state, where.registry_uri)
    registry = Registry(where.registry_uri, where.tracking_uri,
                        unity_lease=unity.lease_model(m.name for m in state.models) if state and in_unity else None)
    if alias is not None:
        detail = _by_alias(registry, name, alias)
    else:
        assert wanted is not None
        detail = _by_stage(registry, name, wanted)
    if reviewed is not None:
        _check_agrees(reviewed, registry, name, wanted, alias, detail, str(file))
    resolved = ResolvedModel(
        name=name, version=detail.live.version, stage=wanted.value if wanted else detail.live.stage.value,
        aliases=detail.aliases,
        uri=f"models:/{name}/{detail.live.version}", run_id=detail.live.run_id, tags=detail.tags)
    if load:
        resolved = replace(resolved, model=registry.load_pyfunc(resolved.uri))
    return resolved


def _parse_stage(stage: str) -> Stage:
    found = _STAGES.get(stage.strip().lower())
    if found is None:
        raise ResolveError(f"unknown stage {stage!r}: use production, staging or archived")
    return found


def _reviewed(file: Path, name: str) -> tuple[DesiredModel, DesiredState]:
    from . import desired

    state = desired.load(file)
    model = next((m for m in state.models if m.name == name), None)
    if model is None:
        raise UnreviewedModelError(f"{file} does not manage model '{name}': nothing reviewed to check against")
    return model, state


def _by_alias(registry: Any, name: str, alias: str) -> VersionDetail:
    try:
        detail: VersionDetail = registry.describe_version(name, alias=alias)
    except RegistryError as e:
        if e.code == "RESOURCE_DOES_NOT_EXIST" or e.code == "INVALID_PARAMETER_VALUE":
            raise ResolveError(f"model '{name}' has no alias '{alias}' (or the model does not exist)") from None
        raise
    return detail


def _by_stage(registry: Any, name: str, stage: Stage) -> VersionDetail:
    live = registry.read([name]).models.get(name)
    if live is None:
        raise ResolveError(f"model '{name}' does not exist in the registry at {registry.display_uri}")
    follows = lifecycle.of(live)
    versions = sorted(lifecycle.versions_in(live, stage, follows), key=version_key)
    if len(versions) != 1:
        found = f"versions {', '.join(versions)} are" if versions else "no version is"
        alias = follows.alias(stage) if follows.aliases else None
        how = f" (its lifecycle is {follows.mode}: the alias '{alias}')" if alias else ""
        raise AmbiguousModelError(f"model '{name}': {found} in {stage}{how}; expected exactly one")
    detail: VersionDetail = registry.describe_version(name, version=versions[0])
    return detail


def _check_agrees(reviewed: DesiredModel, registry: Any, name: str, stage: Stage | None, alias: str | None,
                  detail: VersionDetail, file: str) -> None:
    version = detail.live.version
    if alias is not None:
        declared = reviewed.aliases.get(alias)
        if declared != version:
            said = f"declares version {declared}" if declared else "does not declare it"
            raise UnreviewedModelError(f"model '{name}' alias '{alias}' is on version {version} in the registry, "
                                       f"but {file} {said}")
        return
    assert stage is not None
    key = stage.value.lower()
    declared_versions = getattr(reviewed, key)
    if not declared_versions or version not in declared_versions:
        listed = ", ".join(sorted(declared_versions or (), key=version_key)) or "nothing"
        raise UnreviewedModelError(f"model '{name}' has version {version} in {stage} in the registry, "
                                   f"but {file} declares {listed} there")
