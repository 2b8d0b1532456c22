"""What users would write instead of stagectl, run as their own processes like stagectl is.

    python -m bench.contenders floor URI
    python -m bench.contenders naive URI PREFIX MODELS VERSIONS
    python -m bench.contenders pool URI PREFIX MODELS VERSIONS
"""

from __future__ import annotations

import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

warnings.simplefilter("ignore", FutureWarning)


def floor(uri: str) -> None:
    """The fewest reads that learn every version's stage and every alias: the largest pages."""
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    client = ModelRegistryClient(uri, uri)
    token, versions = None, 0
    while True:
        page = client.search_model_versions(max_results=200_000, page_token=token,
                                            order_by=["name ASC", "version_number ASC"])
        versions += len(page)
        token = page.token
        if not token:
            break
    token, aliases = None, 0
    while True:
        models = client.search_registered_models(max_results=1000, page_token=token)
        aliases += sum(len(m.aliases) for m in models)
        token = models.token
        if not token:
            break
    print(versions, aliases)


def naive(uri: str, prefix: str, models: int, versions: int) -> None:
    """The loop people write today: one model after another, with MlflowClient."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for i in range(models):
        name = f"{prefix}-{i:05d}"
        current = client.get_latest_versions(name, ["Production", "Staging"])
        production = [v.version for v in current if v.current_stage == "Production"]
        staging = [v.version for v in current if v.current_stage == "Staging"]
        for version in production:
            client.transition_model_version_stage(name, version, "Archived")
        client.transition_model_version_stage(name, staging[0], "Production")
        client.set_registered_model_alias(name, "champion", staging[0])


def pool(uri: str, prefix: str, models: int, versions: int) -> None:
    """The fastest script one could write by hand: the same writes from a pool, no reads, no checks."""
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    client = ModelRegistryClient(uri, uri)

    def wave(i: int) -> None:
        name = f"{prefix}-{i:05d}"
        client.transition_model_version_stage(name, str(versions), "Production", archive_existing_versions=True)
        client.set_registered_model_alias(name, "champion", str(versions))

    with ThreadPoolExecutor(max_workers=8) as executor:
        list(executor.map(wave, range(models)))


def pool_aliases(uri: str, prefix: str, models: int, versions: int) -> None:
    """The same by hand in aliases mode: move the alias, tag the version it left archived."""
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    client = ModelRegistryClient(uri, uri)

    def wave(i: int) -> None:
        name = f"{prefix}-{i:05d}"
        client.set_registered_model_alias(name, "champion", str(versions))
        client.set_model_version_tag(name, str(versions - 1), "stagectl.archived", "true")

    with ThreadPoolExecutor(max_workers=8) as executor:
        list(executor.map(wave, range(models)))


if __name__ == "__main__":
    kind, uri, *rest = sys.argv[1:]
    if kind == "floor":
        floor(uri)
    else:
        {"naive": naive, "pool": pool, "pool_aliases": pool_aliases}[kind](uri, rest[0], int(rest[1]), int(rest[2]))
