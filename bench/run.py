"""make bench: stagectl against what users would write instead, on real mlflow servers, as ratios.

Each case gets a fresh server. Every program runs as its own process through one counting proxy, so the
time each takes and the HTTP requests each sends are measured the same way; and what one request of each kind
costs the server. Results: a table on stdout and bench/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller.lifecycle import LIFECYCLE_TAG, tag_value
from controller.model import Lifecycle, Mode, ownership_tags
from tests import seed
from tests.faultproxy import FaultProxy
from tests.gitrepo import git, make_repo
from tests.servers import Server, start_postgres, start_server, stop_server

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "GITHUB_"))}
ENV.update({"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/ml-deploy",
            "GITHUB_RUN_ID": "1234567890"})  # as in CI: every version written also gets the run's URL


OWNER = "github.com/acme/ml-deploy:stages.yaml"


def stages_file(path: Path, prefix: str, models: int, versions: int, aliases: bool = False) -> Path:
    lines = ["apiVersion: stagectl/v1", f"owner: {OWNER}"]
    if aliases:
        lines.append("lifecycle: {mode: aliases, production_alias: champion, staging_alias: challenger}")
    lines.append("models:")
    for i in range(models):
        lines += [f"  {prefix}-{i:05d}:", f"    production: {versions}"]
        if not aliases:
            lines.append(f"    aliases: {{champion: {versions}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def timed(args: list[str], proxy: FaultProxy, cwd: Path, memory: bool = False) -> dict[str, Any]:
    """Run one program to completion: wall time, HTTP requests it sent, and (memory) its peak RSS."""
    before = proxy.count
    wrapper = ["/usr/bin/time", "-f", "MAXRSS %M"] if memory else []
    started = time.perf_counter()
    result = subprocess.run([*wrapper, *args], cwd=cwd, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    out: dict[str, Any] = {"seconds": round(seconds, 3), "requests": proxy.count - before}
    if memory:
        rss = [line for line in result.stderr.splitlines() if line.startswith("MAXRSS ")]
        out["peak_mb"] = round(int(rss[-1].split()[1]) / 1024, 1)
    return out


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return min(runs, key=lambda r: r["seconds"])


def plan_case(backend_kind: str, models: int, versions: int, repeat: int) -> dict[str, Any]:
    """`repeat` rounds, taking turns at going first (the server warms up as it goes); the best run of each."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with _server(backend_kind, work) as (server, backend):
            seed.bulk(backend, "m", models, versions)
            file = stages_file(work / "stages.yaml", "m", models, versions)
            with FaultProxy(server.uri) as proxy:
                contenders = {
                    "stagectl": lambda: timed([str(BIN / "stagectl"), "plan", "-f", str(file), "--tracking-uri",
                                               proxy.uri, "--format", "json"], proxy, work, memory=True),
                    "floor": lambda: timed([sys.executable, "-m", "bench.contenders", "floor", proxy.uri], proxy, ROOT),
                }
                runs: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
                for round_ in range(repeat):
                    for name in sorted(contenders, reverse=round_ % 2 == 1):
                        runs[name].append(contenders[name]())
                stagectl, floor = best(runs["stagectl"]), best(runs["floor"])
    return {"backend": backend_kind, "models": models, "versions": versions, "stagectl": stagectl, "floor": floor,
            "time_ratio": round(stagectl["seconds"] / floor["seconds"], 2)}


def shared_case(backend_kind: str, models: int, versions: int, ours: int) -> dict[str, Any]:
    """A shared registry of `models` times `versions` in which the file names only `ours` models: plan's requests
    and memory must follow the file, not the registry."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with _server(backend_kind, work) as (server, backend):
            seed.bulk(backend, "other", models - ours, versions)
            seed.bulk(backend, "ours", ours, versions)
            file = stages_file(work / "stages.yaml", "ours", ours, versions)
            with FaultProxy(server.uri) as proxy:
                run = timed([str(BIN / "stagectl"), "plan", "-f", str(file), "--tracking-uri", proxy.uri,
                             "--format", "json"], proxy, work, memory=True)
    return {"backend": backend_kind, "models": models, "versions": versions, "ours": ours, "stagectl": run}


def apply_case(backend_kind: str, models: int, versions: int, naive: bool, aliases: bool = False) -> dict[str, Any]:
    """The wave twice each for stagectl and the pool, in the order pool, stagectl, stagectl, pool (a server
    warms up as it goes, and neither side should get the cold start): the better of each pair counts.

    `aliases`: the wave in aliases mode (the production alias moves, the version it leaves is tagged archived),
    against a pool that makes those two writes."""
    managed = ownership_tags(OWNER) | ({LIFECYCLE_TAG: tag_value(Lifecycle(Mode.ALIASES, "champion", "challenger"))}
                                       if aliases else {})
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with _server(backend_kind, work) as (server, backend):
            # stagectl's models are managed already, as in every wave after a model's first: their ownership
            # tags are there. The first apply to a model writes them once (two requests).
            for prefix in ("s1", "s2"):
                seed.bulk(backend, prefix, models, versions, model_tags=managed, aliases=aliases)
            for prefix in ("p1", "p2", "n"):
                seed.bulk(backend, prefix, models, versions, aliases=aliases)
            # As users run it: in a git checkout of the committed file, so every write carries provenance.
            checkout = make_repo(work / "checkout")
            for prefix in ("s1", "s2"):
                stages_file(checkout / f"{prefix}.yaml", prefix, models, versions, aliases)
            git(checkout, "add", ".")
            git(checkout, "commit", "-q", "-m", "Promote the wave")
            with FaultProxy(server.uri) as proxy:
                def stagectl(prefix: str) -> dict[str, Any]:
                    return timed([str(BIN / "stagectl"), "apply", "-f", f"{prefix}.yaml", "--tracking-uri",
                                  proxy.uri], proxy, checkout, memory=True)

                def script(kind: str, prefix: str) -> dict[str, Any]:
                    return timed([sys.executable, "-m", "bench.contenders", kind, proxy.uri, prefix, str(models),
                                  str(versions)], proxy, ROOT)

                kind = "pool_aliases" if aliases else "pool"
                pools = [script(kind, "p1")]
                runs = [stagectl("s1"), stagectl("s2")]
                pools.append(script(kind, "p2"))
                loop = script("naive", "n") if naive and not aliases else None
    ours, pool = best(runs), best(pools)
    result = {"backend": backend_kind, "models": models, "versions": versions, "stagectl": ours, "pool": pool,
              "vs_pool": round(ours["seconds"] / pool["seconds"], 2), "lifecycle": "aliases" if aliases else "stages"}
    if loop:
        result |= {"naive": loop, "speedup_vs_naive": round(loop["seconds"] / ours["seconds"], 1)}
    return result


def cost_case(backend_kind: str, models: int = 400) -> dict[str, Any]:
    """What one request of each kind costs the server: its CPU time per request (all its processes, read from
    /proc) and the wall time per request, from 8 client threads, as the pool sends them. When every kind costs
    about the same, a wave's time follows its request count, whatever the requests are."""
    from mlflow.tracking._model_registry.client import ModelRegistryClient

    kinds: dict[str, Callable[[ModelRegistryClient, str], object]] = {
        "transition": lambda c, name: c.transition_model_version_stage(name, "5", "Production", True),
        "alias": lambda c, name: c.set_registered_model_alias(name, "champion", "5"),
        "version tag": lambda c, name: c.set_model_version_tag(name, "5", "stagectl.commit", "0" * 40),
        "read version": lambda c, name: c.get_model_version(name, "5"),
    }
    with tempfile.TemporaryDirectory() as tmp, _server(backend_kind, Path(tmp)) as (server, backend):
        seed.bulk(backend, "c", models, 5)
        client = ModelRegistryClient(server.uri, server.uri)
        out: dict[str, Any] = {"backend": backend_kind, "requests": models}
        for kind, send in kinds.items():
            cpu, started = _group_cpu(server.process.pid), time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as executor:
                list(executor.map(send, [client] * models, [f"c-{i:05d}" for i in range(models)]))
            out[kind] = {"server_cpu_ms": round(1000 * (_group_cpu(server.process.pid) - cpu) / models, 1),
                         "wall_ms": round(1000 * (time.perf_counter() - started) / models, 1)}
    return out


def _group_cpu(group: int) -> float:
    """CPU seconds used so far by the processes of a process group (a server and its workers)."""
    total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == group:  # pgrp; then utime and stime are fields 11 and 12 after the name
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def startup(repeat: int) -> dict[str, Any]:
    """`stagectl --help` and `stagectl validate` against importing yaml and jsonschema: medians of rounds that
    run each once, so that whatever else the machine does falls on all three alike."""
    # As after any install (pip compiles what it installs): an editable checkout run with
    # PYTHONDONTWRITEBYTECODE would otherwise compile stagectl's sources on every start.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "controller")], check=True)
    commands = {"baseline": [sys.executable, "-c", "import yaml, jsonschema"],
                "help": [str(BIN / "stagectl"), "--help"], "validate": [str(BIN / "stagectl"), "validate"]}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, args in commands.items():
            started = time.perf_counter()
            subprocess.run(args, cwd=ROOT, env=ENV, capture_output=True, check=False)
            times[name].append(time.perf_counter() - started)
    baseline, help_s, validate_s = (round(statistics.median(times[name]), 3) for name in commands)
    return {"baseline_seconds": baseline, "help_seconds": help_s, "validate_seconds": validate_s,
            "help_ratio": round(help_s / baseline, 2), "validate_ratio": round(validate_s / baseline, 2)}


@contextmanager
def _server(kind: str, work: Path) -> Iterator[tuple[Server, str]]:
    """A fresh mlflow server on a fresh backend: a sqlite file, or a PostgreSQL cluster of its own."""
    postgres = start_postgres() if kind == "postgresql" else None
    backend = postgres.uri if postgres else f"sqlite:///{work / 'mlflow.db'}"
    server = start_server(work, backend_uri=backend)
    try:
        yield server, backend
    finally:
        stop_server(server)
        if postgres:
            postgres.stop()


def _seconds(run: dict[str, Any] | None) -> str:
    return f"{run['seconds']:.1f} s" if run else "—"


def table(results: dict[str, Any]) -> str:
    lines = ["| backend | M models × V versions | stagectl plan | floor | ratio | requests (stagectl / floor) "
             "| peak MB |", "|---|---|--:|--:|--:|--:|--:|"]
    for r in results["plan"]:
        lines.append(f"| {r['backend']} | {r['models']} × {r['versions']} | {r['stagectl']['seconds']:.2f} s | "
                     f"{r['floor']['seconds']:.2f} s | {r['time_ratio']:.2f}× | "
                     f"{r['stagectl']['requests']} / {r['floor']['requests']} | {r['stagectl']['peak_mb']:.0f} |")
    lines += ["", "| backend | wave over M models | stagectl apply | hand-written pool | naive loop | "
              "vs pool | faster than naive | requests (stagectl / pool / naive) |",
              "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in results["apply"] + results.get("aliases", []):
        naive = r.get("naive")
        backend = r["backend"] + (" (aliases)" if r.get("lifecycle") == "aliases" else "")
        lines.append(f"| {backend} | {r['models']} | {r['stagectl']['seconds']:.1f} s | "
                     f"{r['pool']['seconds']:.1f} s | {_seconds(naive)} | "
                     f"{r['vs_pool']:.2f}× | {str(r.get('speedup_vs_naive', '—')) + ('×' if naive else '')} | "
                     f"{r['stagectl']['requests']} / {r['pool']['requests']} / {naive['requests'] if naive else '—'} |")
    lines += ["", "| backend | shared registry (models × versions) | models in the file | stagectl plan | requests "
              "| peak MB |", "|---|---|--:|--:|--:|--:|"]
    for r in results.get("shared", []):
        run = r["stagectl"]
        lines.append(f"| {r['backend']} | {r['models']} × {r['versions']} | {r['ours']} | "
                     f"{run['seconds']:.2f} s | {run['requests']} | {run['peak_mb']:.0f} |")
    costs = results.get("cost", [])
    if costs:
        kinds = [k for k in costs[0] if isinstance(costs[0][k], dict)]
        lines += ["", "| backend | " + " | ".join(kinds) + " |", "|---|" + "--:|" * len(kinds)]
        for r in costs:
            cells = [f"{r[k]['server_cpu_ms']:.0f} ms ({r[k]['wall_ms']:.0f} ms)" for k in kinds]
            lines.append(f"| {r['backend']} | " + " | ".join(cells) + " |")
    s = results["startup"]
    lines += ["", f"Start-up (medians): `import yaml, jsonschema` {s['baseline_seconds']:.3f} s; "
              f"`stagectl --help` {s['help_seconds']:.3f} s ({s['help_ratio']:.2f}×); "
              f"`stagectl validate` {s['validate_seconds']:.3f} s ({s['validate_ratio']:.2f}×)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="small sizes only, to check the harness")
    parser.add_argument("--only", default="startup,cost,shared,plan,apply,aliases",
                        help="the cases to run (the others keep their last results in bench/results.json)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    sizes = [(10, 5), (100, 5)] if args.quick else [(10, 5), (10, 50), (100, 5), (100, 50), (1000, 5), (1000, 50)]
    waves = [10, 100] if args.quick else [10, 100, 1000]
    saved = ROOT / "bench/results.json"
    results: dict[str, Any] = json.loads(saved.read_text()) if saved.exists() else {}
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}
    results |= {case: [] for case in ("cost", "shared", "plan", "apply", "aliases") if case in only}
    if "startup" in only:
        results["startup"] = startup(5 if args.quick else 31)

    def save() -> None:  # after every case: a long run that stops keeps what it measured
        saved.write_text(json.dumps(results, indent=2) + "\n")

    for backend in args.backends.split(","):
        if "cost" in only:
            print(f"cost  {backend}", file=sys.stderr, flush=True)
            results["cost"].append(cost_case(backend, 100 if args.quick else 400))
            save()
        if "shared" in only:
            print(f"plan  {backend} shared registry", file=sys.stderr, flush=True)
            results["shared"].append(shared_case(backend, 500 if args.quick else 20_000, 10, 300))
            save()
        for models, versions in sizes if "plan" in only else []:
            print(f"plan  {backend} {models}x{versions}", file=sys.stderr, flush=True)
            results["plan"].append(plan_case(backend, models, versions, repeat=4))
            save()
        for models in waves if "apply" in only else []:
            print(f"apply {backend} {models}", file=sys.stderr, flush=True)
            results["apply"].append(apply_case(backend, models, 5, naive=True))
            save()
        for models in waves if "aliases" in only else []:
            print(f"apply {backend} {models} (aliases)", file=sys.stderr, flush=True)
            results["aliases"].append(apply_case(backend, models, 5, naive=False, aliases=True))
            save()
    save()
    print(table(results))


if __name__ == "__main__":
    main()
