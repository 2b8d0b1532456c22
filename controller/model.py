"""The values that flow through the pipeline: desired state, live state, steps, plans and outcomes. No I/O."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


class Stage(enum.StrEnum):
    """MLflow's stage names, in their canonical spelling."""

    NONE = "None"
    STAGING = "Staging"
    PRODUCTION = "Production"
    ARCHIVED = "Archived"

    @classmethod
    def parse(cls, name: str | None) -> Stage:
        """MLflow compares stage names case-insensitively, and reports a fresh version's stage as None."""
        if name is None:
            return cls.NONE
        for stage in cls:
            if stage.value.lower() == name.strip().lower():
                return stage
        raise ValueError(f"unknown stage {name!r}")


# The registered-model tags that say which stages file manages a model, and tell people in the MLflow UI so.
OWNER_TAG = "stagectl.owner"
MANAGED_TAG = "stagectl.managed"


def ownership_tags(owner: str) -> dict[str, str]:
    return {OWNER_TAG: owner,
            MANAGED_TAG: f"Managed by stagectl from {owner}. Changes made here (stages, aliases) are reverted "
                         "by its next apply: change that stages file instead, through a pull request."}


class Mode(enum.StrEnum):
    """What production, staging and archived mean in the registry: MLflow stages, aliases, or both at once."""

    STAGES = "stages"
    ALIASES = "aliases"
    BOTH = "both"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    mode: Mode = Mode.STAGES
    production_alias: str = "production"
    staging_alias: str = "staging"

    @property
    def stages(self) -> bool:
        """Whether declarations are applied as MLflow stages."""
        return self.mode is not Mode.ALIASES

    @property
    def aliases(self) -> bool:
        """Whether declarations are applied as aliases."""
        return self.mode is not Mode.STAGES

    def alias(self, stage: Stage) -> str | None:
        """The alias that stands for a serving stage."""
        return {Stage.PRODUCTION: self.production_alias, Stage.STAGING: self.staging_alias}.get(stage)


def version_key(version: str) -> int:
    """Versions are digit strings; they sort as numbers."""
    return int(version)


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    col: int


@dataclass(frozen=True, slots=True)
class MetricGate:
    """MLflow's MetricThreshold: a bound on the candidate's metric, and on its change from production's."""

    threshold: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None
    greater_is_better: bool = True

    def __str__(self) -> str:
        parts = [f"{k} {v:g}" for k, v in (("threshold", self.threshold),
                                           ("min_absolute_change", self.min_absolute_change),
                                           ("min_relative_change", self.min_relative_change)) if v is not None]
        return ", ".join(parts + ([] if self.greater_is_better else ["lower is better"]))


@dataclass(frozen=True, slots=True)
class Policy:
    """Promotion gates for one model (the file's defaults with the model's own keys over them)."""

    require_tags: Mapping[str, str] = field(default_factory=dict)
    promote_from: str | None = None  # "staging": only from staging (now, or declared before)
    frozen: str | None = None  # the reason; pending changes are held
    metrics: Mapping[str, MetricGate] = field(default_factory=dict)  # the candidate's source run's metrics
    soak: int | None = None  # seconds in staging before production
    propose: frozenset[str] | None = None  # the promotions `stagectl propose` writes: staging, production

    def over(self, defaults: Policy) -> Policy:
        return Policy(
            require_tags=self.require_tags if self.require_tags else defaults.require_tags,
            promote_from=self.promote_from if self.promote_from is not None else defaults.promote_from,
            frozen=self.frozen if self.frozen is not None else defaults.frozen,
            metrics=self.metrics if self.metrics else defaults.metrics,
            soak=self.soak if self.soak is not None else defaults.soak,
            propose=self.propose if self.propose is not None else defaults.propose,
        )


@dataclass(frozen=True, slots=True)
class DesiredModel:
    """What stages.yaml says about one registered model. None for a stage means: not declared, leave as is."""

    name: str
    production: frozenset[str] | None = None
    staging: frozenset[str] | None = None
    archived: frozenset[str] = frozenset()
    aliases: Mapping[str, str] = field(default_factory=dict)
    policy: Policy = Policy()  # effective: defaults already applied
    lifecycle: Lifecycle = Lifecycle()  # effective: the file's, unless the model has its own
    position: Position = Position(1, 1)
    lifecycle_position: Position | None = None  # where its lifecycle is set (its own key, or the file's)
    # Where each version and alias is first written, so that a live check can point at the line.
    version_positions: Mapping[str, Position] = field(default_factory=dict)
    alias_positions: Mapping[str, Position] = field(default_factory=dict)

    def declared(self) -> Mapping[Stage, frozenset[str]]:
        """The stages this model's entry declares, each with exactly the versions that must be in it."""
        stages = {Stage.PRODUCTION: self.production, Stage.STAGING: self.staging}
        return {stage: versions for stage, versions in stages.items() if versions is not None}


@dataclass(frozen=True, slots=True)
class DesiredState:
    path: str
    models: tuple[DesiredModel, ...]  # sorted by name
    tracking_uri: str | None = None
    registry_uri: str | None = None  # when the registry is not the tracking server (MLflow's own distinction)
    flavor: str | None = None  # registry.flavor: "unity-catalog", or None (an MLflow registry)
    max_changes: int | None = None
    owner: str | None = None  # the file's `owner:` key: who manages its models, where the repository is no name
    defaults: Policy = Policy()  # defaults.policy as written (each model's policy already includes it)
    only: tuple[str, ...] = ()  # --model: the models a run is limited to (empty: the whole file)


@dataclass(frozen=True, slots=True)
class LiveVersion:
    version: str
    stage: Stage
    status: str = "READY"
    run_id: str | None = None
    created_ms: int = 0  # creation time, milliseconds since the epoch
    updated_ms: int = 0  # last update (a transition updates it), milliseconds since the epoch
    tags: Mapping[str, str] = field(default_factory=dict)
    source: str | None = None  # where its artifacts are (lineage, for people: may hold a signed URL)
    user: str | None = None  # who registered it, when the registry says


@dataclass(frozen=True, slots=True)
class VersionDetail:
    """One version as an application sees it: everything needed to load and trust it."""

    live: LiveVersion
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    source: str = ""


@dataclass(frozen=True, slots=True)
class LiveModel:
    name: str
    versions: Mapping[str, LiveVersion]
    aliases: Mapping[str, str]
    tags: Mapping[str, str] = field(default_factory=dict)  # the registered model's own tags

    @property
    def owner(self) -> str | None:
        """The stages file that manages this model, as recorded by the last apply that changed it."""
        return self.tags.get(OWNER_TAG)

    def in_stage(self, stage: Stage) -> frozenset[str]:
        return frozenset(v.version for v in self.versions.values() if v.stage is stage)


@dataclass(frozen=True, slots=True)
class LiveState:
    """The registry as read, for the models stages.yaml names; a model missing here does not exist, or (when in
    `hidden`) exists but may not be read with these credentials."""

    models: Mapping[str, LiveModel]
    hidden: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Transition:
    model: str
    version: str
    from_stage: Stage
    to_stage: Stage
    # Set on a promotion that archives the stage's current occupants in the same server-side transaction,
    # so the stage is never empty and never over-full in between.
    archive_existing_versions: bool = False
    # Set on an archive step that such a promotion performs: the version being promoted.
    archived_by: str | None = None

    action = "transition"


@dataclass(frozen=True, slots=True)
class SetAlias:
    model: str
    alias: str
    version: str
    from_version: str | None = None
    stands_for: Stage | None = None  # a lifecycle alias: the stage it stands for (aliases and both modes)

    action = "set_alias"


@dataclass(frozen=True, slots=True)
class DeleteAlias:
    """Remove a lifecycle alias from a version the file archives (aliases mode): archived serves nowhere."""

    model: str
    alias: str
    version: str  # where it pointed

    action = "delete_alias"


@dataclass(frozen=True, slots=True)
class MarkArchived:
    """Set (or, for a version declared in service again, remove) the version tag that says it is archived."""

    model: str
    version: str
    archived: bool = True

    action = "mark_archived"


@dataclass(frozen=True, slots=True)
class SetLifecycle:
    """Record on the registered model which lifecycle it follows, for the readers (get_model, resolve, ...)."""

    model: str
    lifecycle: Lifecycle
    from_lifecycle: Lifecycle | None = None  # None: nothing recorded (stages)

    action = "set_lifecycle"


Step = Transition | SetAlias | DeleteAlias | MarkArchived | SetLifecycle


@dataclass(frozen=True, slots=True)
class Check:
    """One gate applied to one promotion (or to the whole plan, for max_changes; to a model, for owner)."""

    gate: str  # require_tags, promote_from, max_changes, owner
    model: str | None
    version: str | None
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class AliasWarning:
    """After the plan, an alias points at a version that serves from no stage: Archived, or in none."""

    model: str
    alias: str
    version: str
    stage: Stage
    moved: bool  # the plan moves the version there; else it is there already

    def __str__(self) -> str:
        where = f"{'will be' if self.moved else 'is'} {self.stage}" + (" (in no stage)" if self.stage is Stage.NONE
                                                                       else "")
        return (f"{self.model}: alias {self.alias} points at version {self.version}, which {where} after this plan; "
                f"declare where it should point under the model's aliases: unless that is meant")


@dataclass(frozen=True, slots=True)
class Plan:
    """Ordered steps: models by name, and within a model in execution order."""

    tracking_uri: str  # as shown to users: credentials redacted
    steps: tuple[Step, ...]
    checks: tuple[Check, ...] = ()
    blocked: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)  # frozen model → steps held
    frozen: Mapping[str, str] = field(default_factory=dict)  # frozen model → reason
    # Models the registry cannot take as declared now (missing, a version missing or not READY) → why.
    # Held alone: the other models are planned and applied.
    held: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[AliasWarning, ...] = ()
    targets: tuple[str, ...] = ()  # --model: the models the run was limited to (empty: the whole file)

    @property
    def violations(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def in_sync(self) -> bool:
        return not self.steps

    def models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(step.model for step in self.steps))


class Status(enum.StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Outcome:
    step: Step
    status: Status
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    tracking_uri: str
    outcomes: tuple[Outcome, ...]  # in plan order
    final: LiveState | None = None  # the touched models as read back after the last write
    # model → what the read-back shows that the plan did not lead to (another writer changed the model)
    unexpected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    held: Mapping[str, str] = field(default_factory=dict)  # models not planned, and why (Plan.held)
    targets: tuple[str, ...] = ()  # as in Plan

    @property
    def ok(self) -> bool:
        return all(o.status is Status.APPLIED for o in self.outcomes) and not self.unexpected

    def count(self, status: Status) -> int:
        return sum(1 for o in self.outcomes if o.status is status)
