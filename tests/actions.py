"""A composite action run the way a GitHub runner runs it: each `run:` step in bash with the GITHUB_* files and
variables, its expressions filled from the inputs, the event and earlier steps' outputs. `uses:` steps
(setup-python, the cache) are the runner's business: the test puts a Python on PATH, as setup-python would."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class ActionRun:
    exit_code: int  # of the step that failed, else 0
    outputs: dict[str, str]
    log: str  # every step's stdout and stderr, as the job log shows them
    skipped: list[str] = field(default_factory=list)  # the uses: steps, left to the runner


def run_action(action_dir: Path, inputs: dict[str, str], *, workspace: Path, temp: Path, path: list[Path],
               env: dict[str, str] | None = None, event: dict[str, Any] | None = None,
               repository: str = "acme/ml-deploy") -> ActionRun:
    action = yaml.safe_load((action_dir / "action.yml").read_text())
    given = {name: str(inputs.get(name, spec.get("default", ""))) for name, spec in action["inputs"].items()}
    unknown = set(inputs) - set(given)
    assert not unknown, f"the action has no inputs {unknown}"
    event = event or {}
    github = {"action_path": str(action_dir), "token": "ghs_simulated_token", "repository": repository,
              "event": event, "base_ref": event.get("pull_request", {}).get("base", {}).get("ref", ""),
              "event_name": "pull_request" if "pull_request" in event else "push"}
    context: dict[str, Any] = {"github": github, "runner": {"os": "Linux"}, "steps": {}}
    # The defaults may themselves be expressions (github-token: ${{ github.token }}).
    context["inputs"] = {k: _fill(v, context) for k, v in given.items()}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STAGECTL_", "GITHUB_"))}
    base.update(env or {})
    summary = temp / "summary.md"
    base.update({"GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_ACTION_PATH": str(action_dir),
                 "GITHUB_WORKSPACE": str(workspace), "GITHUB_REPOSITORY": repository,
                 "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "4242", "RUNNER_TEMP": str(temp),
                 "RUNNER_OS": "Linux", "GITHUB_STEP_SUMMARY": str(summary), "NO_COLOR": "1",
                 "PATH": os.pathsep.join([*map(str, path), base.get("PATH", "")])})
    log: list[str] = []
    run = ActionRun(0, {}, "")
    for index, step in enumerate(action["runs"]["steps"]):
        if "uses" in step:
            run.skipped.append(step["uses"].split("@")[0])
            continue
        output = temp / f"output-{index}"
        output.write_text("")
        step_env = {**base, **{k: _fill(str(v), context) for k, v in step.get("env", {}).items()},
                    "GITHUB_OUTPUT": str(output)}
        assert step["shell"] == "bash", step
        script = temp / f"step-{index}.sh"
        script.write_text(_fill(step["run"], context))
        # How the runner starts a bash step.
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=workspace,
                              env=step_env, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        log.append(done.stdout + done.stderr)
        if "id" in step:
            context["steps"][step["id"]] = {"outputs": _outputs(output.read_text())}
        if done.returncode != 0:
            run.exit_code = done.returncode
            break
    run.outputs = {name: _fill(spec["value"], context) for name, spec in action.get("outputs", {}).items()}
    run.log = "".join(log)
    return run


def _fill(text: str, context: dict[str, Any]) -> str:
    def path(expression: str) -> str:
        assert re.fullmatch(r"[\w-]+(\.[\w-]+)*", expression), f"the simulation reads only paths: {expression}"
        found: Any = context
        for part in expression.split("."):
            found = found.get(part, "") if isinstance(found, dict) else ""
        return "" if isinstance(found, dict) else str(found)

    def value(match: re.Match[str]) -> str:  # a path, or `a || b`: the first that is not empty
        return next((v for v in (path(e.strip()) for e in match.group(1).split("||")) if v), "")

    return EXPRESSION.sub(value, text)


def _outputs(text: str) -> dict[str, str]:
    """GITHUB_OUTPUT's two forms: name=value, and name<<DELIMITER ... DELIMITER."""
    found, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            body = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            found[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            found[name] = value
    return found


FAKE_GH = r'''#!{python}
"""gh, as far as the stagectl action uses it: the pull request's comments, kept in a JSON file."""
import json, pathlib, sys
store = pathlib.Path({store!r})
comments = json.loads(store.read_text()) if store.exists() else []
args = sys.argv[1:]
log = pathlib.Path({store!r} + ".calls")
with log.open("a") as fh:
    fh.write(json.dumps(args) + "\n")
assert args[0] == "api", args
method = args[args.index("--method") + 1] if "--method" in args else "GET"
if method == "GET":  # what the action's --jq selects: a bot's comment that starts with the marker
    assert "--jq" in args and 'select(.user.type == "Bot" and' in args[args.index("--jq") + 1], args
    for c in comments:
        if c["user"]["type"] == "Bot" and c["body"].startswith("<!-- stagectl:plan -->"):
            print(c["id"])
    sys.exit(0)
field = next(a for a in args if a.startswith("body=@"))
body = pathlib.Path(field.removeprefix("body=@")).read_text()
if method == "POST":
    comments.append({{"id": len(comments) + 1, "body": body, "user": {{"type": "Bot"}}}})
else:
    number = int(args[args.index("--method") + 2].rsplit("/", 1)[1])
    next(c for c in comments if c["id"] == number)["body"] = body
store.write_text(json.dumps(comments))
'''


def fake_gh(folder: Path, comments: list[dict[str, Any]] | None = None) -> Path:
    """A `gh` that keeps the pull request's comments in folder/comments.json (starting with `comments`)."""
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "comments.json"
    if comments is not None and not store.exists():
        store.write_text(json.dumps(comments))
    gh = folder / "gh"
    gh.write_text(FAKE_GH.format(python=sys.executable, store=str(folder / "comments.json")))
    gh.chmod(0o755)
    return folder


FAKE_PR_GH = r'''#!{python}
"""gh, as far as the propose workflow uses it: pull requests by head branch, kept in a JSON file."""
import json, pathlib, subprocess, sys
store = pathlib.Path({store!r})
pulls = json.loads(store.read_text()) if store.exists() else []
args = sys.argv[1:]
with open({store!r} + ".calls", "a") as fh:
    fh.write(json.dumps(args) + "\n")
def option(name):
    return args[args.index(name) + 1] if name in args else None
assert args[:2] in (["pr", "list"], ["pr", "create"], ["pr", "edit"]), args
assert option("--repo"), args
if args[1] == "list":
    state = option("--state")
    found = [p for p in pulls if p["headRefName"] == option("--head") and p["state"].lower() == state]
    fields = option("--json").split(",")
    out = json.dumps([{{f: p[f] for f in fields}} for p in found])
    if option("--jq"):
        out = subprocess.run(["jq", "-r", option("--jq")], input=out, capture_output=True, text=True, check=True).stdout
        sys.stdout.write(out)
    else:
        print(out)
    sys.exit(0)
body = pathlib.Path(option("--body-file")).read_text()
if args[1] == "create":
    pulls.append({{"number": len(pulls) + 1, "headRefName": option("--head"), "baseRefName": option("--base"),
                  "title": option("--title"), "body": body, "state": "OPEN", "mergedAt": None}})
else:
    pull = next(p for p in pulls if p["number"] == int(args[2]))
    pull.update(title=option("--title"), body=body)
store.write_text(json.dumps(pulls))
'''


def fake_pr_gh(folder: Path) -> Path:
    """A `gh` that keeps a repository's pull requests in folder/pulls.json."""
    folder.mkdir(parents=True, exist_ok=True)
    gh = folder / "gh"
    gh.write_text(FAKE_PR_GH.format(python=sys.executable, store=str(folder / "pulls.json")))
    gh.chmod(0o755)
    return folder


def run_workflow_step(workflow: Path, job: str, name: str, *, cwd: Path, env: dict[str, str],
                      context: dict[str, Any], path: list[Path]) -> subprocess.CompletedProcess[str]:
    """One `run:` step of a workflow's job, as a runner runs it: its env filled from `context`, bash -eo pipefail."""
    steps = {s.get("name"): s for s in yaml.safe_load(workflow.read_text())["jobs"][job]["steps"]}
    step = steps[name]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "STAGECTL_", "GITHUB_"))}
    step_env = {**base, **env, **{k: _fill(str(v), context) for k, v in step.get("env", {}).items()},
                "PATH": os.pathsep.join([*map(str, path), base.get("PATH", "")])}
    script = cwd.parent / f"{job}-step.sh"
    script.write_text(_fill(step["run"], context))
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=cwd, env=step_env,
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
