"""The stages file that declares what a live registry holds: where export and init start. Pure."""

from __future__ import annotations

from collections.abc import Collection

from . import lifecycle
from .edit import yaml_key
from .model import LiveModel, LiveState, Mode, Stage, version_key


def render(live: LiveState, source: str, by: str = "stagectl export") -> str:
    lines = ["# yaml-language-server: $schema=schemas/stages.schema.json",
             f"# Exported from {source} by {by}.",
             "apiVersion: stagectl/v1",
             "models:" + ("" if live.models else " {}")]
    for name in sorted(live.models):
        model = live.models[name]
        follows = lifecycle.of(model)
        lines.append(f"  {yaml_key(name)}:")
        body = []
        if follows.mode is not Mode.STAGES:
            body.append(f"lifecycle: {{mode: {follows.mode}, production_alias: {follows.production_alias}, "
                        f"staging_alias: {follows.staging_alias}}}")
        # Only what plan accepts: a stage holding a version not READY yet (still registering, or failed) is not
        # declared, nor an alias on one; plan leaves both as they are, so export then plan is in sync.
        for key, stage in (("production", Stage.PRODUCTION), ("staging", Stage.STAGING)):
            versions = lifecycle.versions_in(model, stage, follows)
            if _ready(model, versions) and (versions or stage is Stage.STAGING or not follows.aliases):
                body.append(f"{key}: {_versions(versions)}")
        if archived := lifecycle.versions_in(model, Stage.ARCHIVED, follows):
            body.append(f"archived: {_versions(archived)}")
        own = {follows.production_alias, follows.staging_alias} if follows.aliases else set()
        aliases = {a: v for a, v in model.aliases.items() if _ready(model, {v}) and a not in own}
        if aliases:
            body.append("aliases:")
            body += [f"  {yaml_key(a)}: {v}" for a, v in sorted(aliases.items())]
        if not body:
            body.append("archived: []")  # a model with nothing yet to declare is still named: it is managed
        lines += [f"    {line}" for line in body]
    return "\n".join(lines) + "\n"


def _ready(model: LiveModel, versions: Collection[str]) -> bool:
    return all(v in model.versions and model.versions[v].status == "READY" for v in versions)


def _versions(versions: frozenset[str]) -> str:
    ordered = sorted(versions, key=version_key)
    return ordered[0] if len(ordered) == 1 else f"[{', '.join(ordered)}]"
