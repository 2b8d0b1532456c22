"""Evidence gates on a promotion into production: its source run's metrics, and its time in staging. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from . import lifecycle
from .model import Check, DesiredModel, LiveModel, MetricGate, Stage, version_key

STAGED_TAG = "stagectl.staged_at"  # when stagectl put the version in staging (UTC, ISO 8601)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the gates read beyond the registry's state: the runs' metrics, and the time now."""

    metrics: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # run id → its metrics
    now_ms: int = 0
    # model → version → (since when, by which commit) the file's git history has declared it in staging, without
    # a break up to now; read only when a soak check has no entry recorded by stagectl to count from.
    declared_staging: Mapping[str, Mapping[str, tuple[int, str]]] | None = None


def staged_at(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def runs_needed(want: DesiredModel, have: LiveModel) -> set[str]:
    """The runs whose metrics the metric gates of this model may read: candidates and production now."""
    if not want.policy.metrics:
        return set()
    versions = set(want.production or ()) | lifecycle.versions_in(have, Stage.PRODUCTION, want.lifecycle)
    return {run for v in versions if v in have.versions and (run := have.versions[v].run_id)}


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric gate judged for a candidate, with the numbers a reviewer compares."""

    name: str
    gate: MetricGate
    value: float | None  # the candidate's; None when its run lacks it (or it has no run)
    baseline: float | None  # production's now, when there is a version there and its run has the metric
    baseline_version: str | None
    ok: bool
    detail: str

    @property
    def change(self) -> float | None:
        return None if self.value is None or self.baseline is None else self.value - self.baseline


def metric_results(want: DesiredModel, have: LiveModel, version: str, evidence: Evidence) -> list[MetricResult]:
    """Each metric gate of the model, judged for `version` against the version in production now."""
    candidate = have.versions[version]
    values = evidence.metrics.get(candidate.run_id or "", {})
    current = sorted(lifecycle.versions_in(have, Stage.PRODUCTION, want.lifecycle) - {version}, key=version_key)
    baseline_version = current[-1] if current else None
    baseline_run = have.versions[baseline_version].run_id if baseline_version else None
    baseline = evidence.metrics.get(baseline_run or "", {})
    results = []
    for name, gate in sorted(want.policy.metrics.items()):
        base = baseline.get(name)
        if candidate.run_id is None or name not in values:
            why = "the version has no source run" if candidate.run_id is None else f"missing on run {candidate.run_id}"
            results.append(MetricResult(name, gate, None, base, baseline_version, False, f"{name}: {why}"))
            continue
        ok, detail = _judge(name, gate, values[name], base, baseline_version)
        results.append(MetricResult(name, gate, values[name], base, baseline_version, ok, detail))
    return results


def metric_checks(want: DesiredModel, have: LiveModel, version: str, evidence: Evidence) -> list[Check]:
    """One check per metric gate, with its numbers: the candidate's value, production's, the change."""
    return [Check("metrics", want.name, version, r.ok, r.detail)
            for r in metric_results(want, have, version, evidence)]


def _judge(name: str, gate: MetricGate, value: float, base: float | None, base_version: str | None) -> tuple[bool, str]:
    better = ">=" if gate.greater_is_better else "<="
    sign = 1 if gate.greater_is_better else -1
    parts, ok = [f"{name} {value:g}"], True
    if gate.threshold is not None:
        passed = sign * (value - gate.threshold) >= 0
        ok &= passed
        parts.append(f"{better} {gate.threshold:g} {'ok' if passed else 'FAILED'}")
    if gate.min_absolute_change is None and gate.min_relative_change is None:
        return ok, "; ".join(parts)
    if base_version is None or base is None:
        why = "no version in production now" if base_version is None else \
            f"production's version {base_version} has no {name}"
        parts.append(f"change not checked: {why}")
        return ok, "; ".join(parts)
    change = value - base
    parts.append(f"production v{base_version} {base:g}, change {change:+g}")
    if gate.min_absolute_change is not None:
        passed = sign * change >= gate.min_absolute_change
        ok &= passed
        parts.append(f"needs {sign * gate.min_absolute_change:+g} {'ok' if passed else 'FAILED'}")
    if gate.min_relative_change is not None:
        needed = gate.min_relative_change * abs(base)
        passed = sign * change >= needed if base != 0 else sign * change > 0
        ok &= passed
        parts.append(f"needs {gate.min_relative_change:.1%} of {abs(base):g} {'ok' if passed else 'FAILED'}")
    return ok, "; ".join(parts)


def soak_check(want: DesiredModel, have: LiveModel, version: str, evidence: Evidence) -> Check:
    """Time in staging, from the entry stagectl recorded; else from the registry, and the check says so."""
    assert want.policy.soak is not None
    live = have.versions[version]
    needed = want.policy.soak
    recorded = live.tags.get(STAGED_TAG)
    if recorded is not None:
        try:
            since = int(datetime.strptime(recorded, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() * 1000)
            source = f"in staging since {recorded} (recorded by stagectl)"
        except ValueError:
            return Check("soak", want.name, version, False, f"{STAGED_TAG} is {recorded!r}, not a time")
    elif lifecycle.in_staging(have, version, want.lifecycle) and \
            version in (evidence.declared_staging or {}).get(want.name, {}):
        since, commit = (evidence.declared_staging or {})[want.name][version]
        source = (f"in staging since {staged_at(since)} (declared there by commit {commit[:7]}, in the file's git "
                  "history: stagectl did not record its entry)")
    elif lifecycle.in_staging(have, version, want.lifecycle):
        since = live.updated_ms
        source = (f"in staging since {staged_at(since)} at the latest (the registry's last update: stagectl did not "
                  "record its entry)")
    else:
        return Check("soak", want.name, version, False, f"never put in staging by stagectl, and not in staging now; "
                                                         f"needs {_words(needed)} there")
    spent = max(0, evidence.now_ms - since) // 1000
    ok = spent >= needed
    return Check("soak", want.name, version, ok, f"{source}: {_words(spent)} of {_words(needed)}"
                                                 + ("" if ok else f"; ready in {_words(needed - spent)}"))


def _words(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            return f"{whole}{unit}" + (f" {_words(rest)}" if rest and unit != "m" else "")
    return f"{seconds}s"
