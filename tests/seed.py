"""Create registered models and versions in a real registry, for the end-to-end tests and `make demo`.

    python tests/seed.py demo sqlite:///.demo/mlflow.db
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from mlflow.tracking._model_registry.client import ModelRegistryClient

# Over REST a version without a run needs a non-local source; nothing is ever downloaded from it.
SOURCE = "s3://stagectl-test/models/m"


def client(uri: str) -> ModelRegistryClient:
    return ModelRegistryClient(uri, uri)


def make_model(registry: ModelRegistryClient, name: str, stages: Iterable[str],
               aliases: Mapping[str, int] | None = None) -> None:
    """A model with one version per entry of `stages` (version i+1 in stages[i]; "None" leaves it)."""
    registry.create_registered_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for stage in stages:
            mv = registry.create_model_version(name, source=SOURCE, run_id=None)
            if stage != "None":
                registry.transition_model_version_stage(name, mv.version, stage)
    for alias, version in (aliases or {}).items():
        registry.set_registered_model_alias(name, alias, str(version))


def bulk(backend: str, prefix: str, models: int, versions: int, model_tags: Mapping[str, str] | None = None,
         aliases: bool = False) -> None:
    """Models of `versions` versions each: v-1 in Production (alias champion), v in Staging, older Archived.

    `aliases`: the same in aliases mode (champion on v-1, challenger on v, older tagged stagectl.archived), no stage.

    Written into a server's backend through MLflow's own SQL models in bulk: seconds, where the REST API would
    take minutes.
    """
    import sqlalchemy
    from mlflow.store.model_registry.dbmodels.models import (
        SqlModelVersion,
        SqlModelVersionTag,
        SqlRegisteredModel,
        SqlRegisteredModelAlias,
        SqlRegisteredModelTag,
    )

    now = int(time.time() * 1000)
    rows: list[Any] = []
    for i in range(models):
        name = f"{prefix}-{i:05d}"
        rows.append(SqlRegisteredModel(name=name, creation_time=now, last_updated_time=now))
        rows += [SqlRegisteredModelTag(name=name, key=k, value=v) for k, v in (model_tags or {}).items()]
        for v in range(1, versions + 1):
            stage = "Production" if v == versions - 1 else "Staging" if v == versions else "Archived"
            rows.append(SqlModelVersion(name=name, version=v, current_stage="None" if aliases else stage,
                                        source=SOURCE, status="READY", creation_time=now, last_updated_time=now))
            if aliases and stage == "Archived":
                rows.append(SqlModelVersionTag(name=name, version=v, key="stagectl.archived", value="true"))
        rows.append(SqlRegisteredModelAlias(name=name, alias="champion", version=versions - 1))
        if aliases:
            rows.append(SqlRegisteredModelAlias(name=name, alias="challenger", version=versions))
    engine = sqlalchemy.create_engine(backend)
    with sqlalchemy.orm.Session(engine) as session:
        session.bulk_save_objects(rows)
        session.commit()
    if engine.dialect.name == "postgresql":
        # Statistics, as autovacuum keeps them for any database in use: without them, PostgreSQL plans the
        # registered-model search over freshly loaded tables badly (seconds instead of tens of milliseconds).
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(sqlalchemy.text("ANALYZE"))
    engine.dispose()


def snapshot(registry: ModelRegistryClient, names: Iterable[str], *, times: bool = False) -> dict[str, object]:
    """Every version's stage and every alias of the named models: compare before and after a run.

    With times, also every last-updated timestamp, so that any write at all shows up.
    """
    state: dict[str, object] = {}
    for name in sorted(names):
        versions = _versions(registry, name)
        model = registry.get_registered_model(name)
        entry: dict[str, object] = {
            "stages": {str(mv.version): mv.current_stage for mv in versions},
            "aliases": {alias: str(v) for alias, v in model.aliases.items()},
        }
        if times:
            entry["updated"] = [model.last_updated_timestamp] + [mv.last_updated_timestamp for mv in versions]
        state[name] = entry
    return state


def _versions(registry: ModelRegistryClient, name: str) -> list[Any]:
    """Every version of a model; a name a filter cannot hold as written is read version by version, so that
    the tests never depend on the escaping they test."""
    if not any(c in name for c in "'\\\""):
        return list(registry.search_model_versions(f"name = '{name}'", max_results=10_000))
    from mlflow.exceptions import MlflowException

    found = []
    for version in range(1, 10_000):
        try:
            found.append(registry.get_model_version(name, str(version)))
        except MlflowException:
            return found
    return found


def seed_demo(uri: str) -> None:
    """The story users know: fraud-detector v1 serves in Production, v2 waits in Staging."""
    make_model(client(uri), "fraud-detector", ["Production", "Staging"], aliases={"champion": 1})


if __name__ == "__main__":
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    if len(sys.argv) != 3 or sys.argv[1] != "demo":
        sys.exit("usage: python tests/seed.py demo TRACKING_URI")
    seed_demo(sys.argv[2])
    print(f"seeded {sys.argv[2]}: fraud-detector v1 Production (alias champion), v2 Staging")
