"""Which archived versions could be deleted: none of it deletes anything. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import lifecycle
from .model import DesiredState, LiveState, Stage, version_key

_DURATION = re.compile(r"(\d+)([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    version: str
    run_id: str | None
    created_ms: int
    archived_ms: int  # last updated: when it was archived, or touched since


def parse_duration(text: str) -> int:
    """'90d', '12h', '30m', '45s', '2w' → seconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit, e.g. 90d, 12h, 30m, 45s")
    return int(match[1]) * _SECONDS[match[2]]


def candidates(live: LiveState, desired: DesiredState | None, now_ms: int, older_than_s: int) -> tuple[Candidate, ...]:
    """Archived versions that no alias points at, the file does not mention, and that have not changed for
    longer than `older_than_s`. Models by name, versions by number."""
    mentioned: dict[str, set[str]] = {}
    for declared in desired.models if desired else ():
        mentioned[declared.name] = (set(declared.archived) | set(declared.aliases.values())).union(
            *declared.declared().values())
    cutoff = now_ms - older_than_s * 1000
    found = []
    for name in sorted(live.models):
        model = live.models[name]
        keep = set(model.aliases.values()) | mentioned.get(name, set())
        archived = lifecycle.versions_in(model, Stage.ARCHIVED)
        for version in sorted(model.versions, key=version_key):
            v = model.versions[version]
            if version in archived and version not in keep and v.updated_ms < cutoff:
                found.append(Candidate(name, version, v.run_id, v.created_ms, v.updated_ms))
    return tuple(found)
