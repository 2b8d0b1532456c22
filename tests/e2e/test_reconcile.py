"""The promote/archive story and its edges, through the real command against a real mlflow server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

import controller
from tests import seed
from tests.conftest import ROOT, Server, free_port
from tests.e2e.helpers import stagectl, write
from tests.faultproxy import FaultProxy, writes, writes_to

pytestmark = pytest.mark.e2e


def story_file(tmp_path: Path, model: str) -> Path:
    return write(tmp_path / "stages.yaml", f"""\
apiVersion: stagectl/v1
models:
  {model}:
    production: 2
    archived: [1]
    aliases:
      champion: 2
""")


def test_promote_archive_story(tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient,
                               unique: str) -> None:
    model = f"{unique}-fraud-detector"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    story_file(tmp_path, model)
    uri = ["--tracking-uri", mlflow_server.uri]

    assert stagectl("validate", cwd=tmp_path).returncode == 0

    planned = stagectl("plan", *uri, "--format", "json", cwd=tmp_path)
    assert planned.returncode == 0, planned.stderr
    data = json.loads(planned.stdout)
    jsonschema.validate(data, json.loads((ROOT / "schemas/plan.schema.json").read_text()))
    assert data.pop("stagectl_version") == controller.__version__ and data.pop("changes") == 3
    assert data == {"format_version": 2, "tracking_uri": mlflow_server.uri, "partial": False, "steps": [
        {"model": model, "action": "transition", "version": "1", "from_stage": "Production",
         "to_stage": "Archived", "archived_by": "2"},
        {"model": model, "action": "transition", "version": "2", "from_stage": "Staging",
         "to_stage": "Production", "archive_existing_versions": True},
        {"model": model, "action": "set_alias", "alias": "champion", "version": "2", "from_version": "1"},
    ]}
    assert seed.snapshot(registry, [model])[model] == {  # plan wrote nothing
        "stages": {"1": "Production", "2": "Staging"}, "aliases": {"champion": "1"}}

    assert stagectl("plan", *uri, "--detailed-exitcode", cwd=tmp_path).returncode == 2

    applied = stagectl("apply", "--allow-dirty", *uri, cwd=tmp_path)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 3 applied, 0 failed, 0 skipped." in applied.stdout
    assert f"[3/3] {model}: alias champion: version 1 → 2 ... applied" in applied.stderr
    assert seed.snapshot(registry, [model])[model] == {
        "stages": {"1": "Archived", "2": "Production"}, "aliases": {"champion": "2"}}

    again = stagectl("plan", *uri, "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0
    assert again.stdout == f"No changes: the registry at {mlflow_server.uri} matches stages.yaml.\n"


def test_reapply_on_a_converged_registry_writes_nothing(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Archived", "Production"], aliases={"champion": 2})
    story_file(tmp_path, model)
    before = seed.snapshot(registry, [model], times=True)
    time.sleep(0.01)  # a write now would carry a later timestamp
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "No changes" in result.stdout
        as_json = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, "--format", "json", cwd=tmp_path)
    assert json.loads(as_json.stdout) == {
        "format_version": 2, "stagectl_version": controller.__version__, "tracking_uri": proxy.uri, "ok": True,
        "changes": 0, "steps": [], "partial": False, "unexpected": []}
    assert writes(proxy) == []  # no lease, no tag, no alias set again
    assert proxy.seen, "the runs did not go through the proxy"
    assert seed.snapshot(registry, [model], times=True) == before


def test_aliases_not_listed_are_left_alone(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "None", "None"], aliases={"champion": 1, "shadow": 3})
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n"
                                    f"    aliases: {{champion: 2, challenger: 3}}\n")
    result = stagectl("apply", "--allow-dirty", "--tracking-uri", mlflow_server.uri, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert seed.snapshot(registry, [model])[model] == {
        "stages": {"1": "Production", "2": "None", "3": "None"},
        "aliases": {"champion": "2", "challenger": "3", "shadow": "3"},
    }


BAD_FILES = {
    "float-version": ("production: 1.10", "4:17", "is read by YAML as a decimal number"),
    "duplicate-key": ("production: 2\n    production: 1", "5:5", "duplicate key 'production'"),
    "anchor": ("production: &v 2\n    staging: *v", "4:17", "anchors and aliases"),
    "two-stages": ("production: 2\n    staging: [2]", "5:15", "version 2 is listed in both production and staging"),
    "reserved-alias": ("aliases: {latest: 2}", "4:15", "'latest' is reserved"),
    "unknown-key": ("prodution: 2", "4:5", "unknown key 'prodution'; did you mean 'production'?"),
    "zero-version": ("production: 0", "4:17", "versions are positive whole numbers, got 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("command", ["plan", "apply"])
def test_bad_file_exits_1_with_position_and_writes_nothing(
        case: str, command: str, tmp_path: Path, mlflow_server: Server,
        registry: seed.ModelRegistryClient, unique: str) -> None:
    body, position, message = BAD_FILES[case]
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"], aliases={"champion": 1})
    # Another model that the file would promote, were the file not refused as a whole.
    other = f"{unique}-other"
    seed.make_model(registry, other, ["Production", "Staging"])
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    {body}\n"
                                    f"  {other}:\n    production: 2\n")
    before = seed.snapshot(registry, [model, other], times=True)
    dirty_ok = ["--allow-dirty"] if command == "apply" else []  # outside git: the file is what is tested
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl(command, *dirty_ok, "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert result.returncode == 1
    assert f"stages.yaml:{position}: " in result.stderr and message in result.stderr, result.stderr
    assert writes(proxy) == []
    assert seed.snapshot(registry, [model, other], times=True) == before


def _billion_laughs() -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines).encode()


RAW_FILES = {
    "not-utf8": (b"apiVersion: stagectl/v1\nmodels:\n  caf\xe9: {}\n", "3:6", "not valid UTF-8"),
    "billion-laughs": (_billion_laughs(), "1:4", "anchors and aliases"),
    "oversized": (b"#" * (5 * 1024 * 1024), "1:1", "larger than 4 MiB"),
    "bom": (b"\xef\xbb\xbfapiVersion: stagectl/v1\nmodels: {}\n", "1:1", "byte order mark"),
}


@pytest.mark.parametrize("case", sorted(RAW_FILES))
def test_unreadable_file_exits_1_fast_and_writes_nothing(
        case: str, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    raw, position, message = RAW_FILES[case]
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    (tmp_path / "stages.yaml").write_bytes(raw)
    before = seed.snapshot(registry, [model], times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path, timeout=20)
    assert result.returncode == 1
    assert f"stages.yaml:{position}: " in result.stderr and message in result.stderr, result.stderr
    assert writes(proxy) == []
    assert seed.snapshot(registry, [model], times=True) == before


@pytest.mark.parametrize("ghost", ["model", "version"])
def test_a_model_the_registry_lacks_is_held_alone_and_the_run_exits_1(
        ghost: str, tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model, other = f"{unique}-m", f"{unique}-other"
    seed.make_model(registry, model, ["Production", "Staging"])
    seed.make_model(registry, other, ["Production", "Staging"])
    held, position, reason = ((f"{unique}-ghost", "5:3", "does not exist in the registry") if ghost == "model"
                              else (other, "6:17", "has no version 9 (it has 1, 2)"))
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n"
                                    f"  {held}:\n    production: {9 if ghost == 'version' else 1}\n")
    before = seed.snapshot(registry, [other], times=True)
    with FaultProxy(mlflow_server.uri) as proxy:
        result = stagectl("apply", "--allow-dirty", "--tracking-uri", proxy.uri, cwd=tmp_path)
    assert result.returncode == 1
    assert f"{held}: held, nothing planned for it: {reason} (stages.yaml:{position})" in result.stdout, result.stdout
    assert seed.snapshot(registry, [model])[model]["stages"] == {"1": "Archived", "2": "Production"}
    assert writes_to(proxy, held) == [] and writes_to(proxy, other) == []  # not even an ownership tag
    assert writes_to(proxy, model), "the model not held was not written through the proxy"
    assert seed.snapshot(registry, [other], times=True) == before


def test_unreachable_registry_fails_fast_with_a_clear_message(tmp_path: Path) -> None:
    story_file(tmp_path, "fraud-detector")
    started = time.monotonic()
    result = stagectl("plan", "--tracking-uri", f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert "cannot reach the registry at http://127.0.0.1:" in result.stderr
    assert "connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_credentials_never_appear_in_output(
        tmp_path: Path, mlflow_server: Server, registry: seed.ModelRegistryClient, unique: str) -> None:
    model = f"{unique}-m"
    seed.make_model(registry, model, ["Production", "Staging"])
    write(tmp_path / "stages.yaml", f"apiVersion: stagectl/v1\nmodels:\n  {model}:\n    production: 2\n")
    secret_uri = mlflow_server.uri.replace("http://", "http://deployer:canary-pw-7731@")
    env = {"MLFLOW_TRACKING_TOKEN": "canary-token-5512"}
    dead = f"http://deployer:canary-pw-7731@127.0.0.1:{free_port()}"
    runs = [stagectl(*cmd, "--tracking-uri", uri, "--format", fmt, cwd=tmp_path, env=env)
            for uri in (secret_uri, dead) for cmd in (["plan"], ["apply", "--allow-dirty"])
            for fmt in ("text", "json", "markdown")]
    assert any(r.returncode == 0 for r in runs) and any(r.returncode == 1 for r in runs)
    for run in runs:
        for secret in ("canary-pw-7731", "canary-token-5512"):
            assert secret not in run.stdout + run.stderr
    assert "http://***@127.0.0.1" in runs[0].stdout


def test_python_dash_m_controller_is_the_same_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    story_file(tmp_path, "fraud-detector")
    result = subprocess.run([sys.executable, "-m", "controller", "validate"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stderr == "stages.yaml: valid (1 model)\n"


def test_local_sqlite_registry_without_a_server(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seed.seed_demo(uri)
    write(tmp_path / "stages.yaml", (ROOT / "stages.yaml").read_text())
    applied = stagectl("apply", "--allow-dirty", "--tracking-uri", uri, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert seed.snapshot(seed.client(uri), ["fraud-detector"])["fraud-detector"] == {
        "stages": {"1": "Archived", "2": "Production"}, "aliases": {"champion": "2"}}
    missing = stagectl("plan", "--tracking-uri", f"sqlite:///{tmp_path / 'nope.db'}", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no registry at sqlite:///" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
