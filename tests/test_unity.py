"""Unity Catalog's spelling of stagectl's names, on plain data."""

from __future__ import annotations

from controller import unity


def test_stagectls_tag_keys_get_a_spelling_uc_takes_and_read_back_as_before() -> None:
    keys = ["stagectl.owner", "stagectl.commit_url", "stagectl.lifecycle", "stagectl.archived", "ttl_seconds"]
    spelled = [unity.tag_key(k) for k in keys]
    assert spelled == ["stagectl_owner", "stagectl_commit_url", "stagectl_lifecycle", "stagectl_archived",
                       "ttl_seconds"]
    assert list(unity.read_tags(dict.fromkeys(spelled, "v"))) == keys
    assert unity.read_tags({"team.owner": "x"}) == {"team.owner": "x"}  # other people's tags are left as they are


def test_the_lease_lives_beside_the_files_first_model() -> None:
    assert unity.lease_model(["main.ml.z", "main.ab.fraud"]) == "main.ab.stagectl_lease"
    assert unity.lease_model([]) == "main.default.stagectl_lease"


def test_the_registry_uri_says_unity_catalog() -> None:
    assert unity.is_registry("databricks-uc") and unity.is_registry("databricks-uc://profile")
    assert not unity.is_registry("databricks") and not unity.is_registry(None)
