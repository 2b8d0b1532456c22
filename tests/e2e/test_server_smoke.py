from tests import seed
from tests.conftest import Server


def test_server_starts_and_seeds(mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    seed.make_model(registry, unique, ["Production", "Staging"], aliases={"champion": 1})
    assert seed.snapshot(registry, [unique]) == {
        unique: {"stages": {"1": "Production", "2": "Staging"}, "aliases": {"champion": "1"}}
    }
