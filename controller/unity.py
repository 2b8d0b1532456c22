"""Unity Catalog's rules: which files it can take, and how stagectl's own names are spelled there. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from .errors import ConfigError, Problem
from .model import DesiredState, Mode

FLAVOR = "unity-catalog"
LEASE_NAME = "stagectl_lease"  # in the schema of the file's first model: UC names are catalog.schema.model
_BAD_PART = re.compile(r"[\s./\x00-\x1f\x7f]")
_BAD_TAG_KEY = re.compile(r"[.,\-=/:]")


def is_registry(uri: str | None) -> bool:
    return uri is not None and (uri == "databricks-uc" or uri.startswith("databricks-uc://"))


def expected(state: DesiredState, uri: str | None = None) -> bool:
    """Whether the file, or the registry URI it is applied to, says the registry is Unity Catalog."""
    return state.flavor == FLAVOR or is_registry(state.registry_uri) or is_registry(uri)


def problems(state: DesiredState) -> tuple[Problem, ...]:
    """What Unity Catalog would refuse, each at its line."""
    found = []
    for model in state.models:
        parts = model.name.split(".")
        at = model.position
        if len(parts) != 3 or not all(parts) or any(_BAD_PART.search(p) for p in parts):
            found.append(Problem(state.path, f"models.{model.name}: Unity Catalog names a model "
                                 "catalog.schema.model: three parts, no spaces or slashes", at.line, at.col))
        elif model.name != model.name.lower():
            found.append(Problem(state.path, f"models.{model.name}: Unity Catalog keeps names in lowercase, so the "
                                 f"registry would answer with '{model.name.lower()}': write that", at.line, at.col))
        if model.lifecycle.mode is not Mode.ALIASES:
            where = model.lifecycle_position or at
            found.append(Problem(state.path, f"models.{model.name}: Unity Catalog has no stages; its lifecycle is "
                                 f"{model.lifecycle.mode}: set 'lifecycle: aliases' (for the file, or this model)",
                                 where.line, where.col))
        names = {**{a: model.alias_positions.get(a, at) for a in model.aliases},
                 **{a: model.lifecycle_position or at for a in (model.lifecycle.production_alias,
                                                                model.lifecycle.staging_alias)}}
        for alias, where in sorted(names.items()):
            if alias != alias.lower():
                found.append(Problem(state.path, f"models.{model.name}: alias '{alias}': Unity Catalog keeps names "
                                     f"in lowercase; write '{alias.lower()}'", where.line, where.col))
    return tuple(sorted(found, key=lambda p: (p.line or 0, p.col or 0)))


def check(state: DesiredState) -> None:
    found = problems(state)
    if found:
        raise ConfigError(found)


def tag_key(key: str) -> str:
    """stagectl's tag keys as Unity Catalog takes them: without . , - = / : (stagectl.owner → stagectl_owner)."""
    return _BAD_TAG_KEY.sub("_", key)


def read_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Tags as read from Unity Catalog, with stagectl's own keys back in their usual spelling (all of them are
    stagectl. and then lowercase words joined by _)."""
    return {"stagectl." + k.removeprefix("stagectl_") if k.startswith("stagectl_") else k: v for k, v in tags.items()}


def lease_model(names: Iterable[str]) -> str:
    """The lease's registered model: beside the file's first model, since a UC name needs a catalog and schema."""
    first = min(names, default="")
    catalog_schema = first.rsplit(".", 1)[0] if first.count(".") == 2 else "main.default"
    return f"{catalog_schema}.{LEASE_NAME}"
