"""The stagectl command line: parse options, run one command, map its result or error to an exit code."""

from __future__ import annotations

import copy
import enum
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from . import github, uris
from .commands import Output
from .errors import ConfigError, ControllerError

app = typer.Typer(
    name="stagectl",
    help="GitOps promotion for the MLflow model registry: stages.yaml in git, the registry follows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: it starts without importing rich, and reads the same in CI logs
    context_settings={"help_option_names": ["-h", "--help"]},
)


_debug = False
_out: Output | None = None


def _output() -> Output:
    """The one Output of this run: the error boundary masks the same secrets the command learned (its URI's)."""
    global _out
    if _out is None:
        _out = Output()
    return _out


def _print_version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"stagectl {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On errors, also print the traceback (secrets masked). "
                                           "Accepted before or after the command name.")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print stagectl's version and exit.", is_eager=True,
                           callback=_print_version)
    ] = False,
) -> None:
    global _debug
    _debug = _debug or debug or bool(os.environ.get("STAGECTL_DEBUG"))


class Format(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


FileOption = Annotated[Path, typer.Option("-f", "--file", help="The stages file.", dir_okay=False)]
UriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="Tracking server (also the registry unless one is named apart). Default: $MLFLOW_TRACKING_URI, "
        f"else registry.tracking_uri in the file, else {uris.DEFAULT_TRACKING_URI}.",
        show_default=False,
    ),
]
RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry-uri",
        help="Model registry, when it is not the tracking server. Default: $MLFLOW_REGISTRY_URI, else "
        "registry.registry_uri in the file, else the tracking URI (as MLflow resolves it).",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Report format.")]
AdoptOption = Annotated[
    list[str] | None,
    typer.Option("--adopt", help="Take over this model from the stages file that manages it now (repeatable).",
                 show_default=False),
]
ModelOption = Annotated[
    list[str] | None,
    typer.Option("--model", help="Limit the run to this model of the file (repeatable); the report says it is "
                                 "partial.", show_default=False),
]
JsonReportOption = Annotated[
    Path | None,
    typer.Option("--json-report", help="Also write the report as JSON to this file, whatever --format says "
                                       "(for scripts; the GitHub Action's report output).",
                 show_default=False, dir_okay=False),
]
MaxChangesOption = Annotated[
    int | None,
    typer.Option("--max-changes", min=1, help="Allow this many steps, over the file's defaults.policy.max_changes.",
                 show_default=False),
]


@app.command()
def validate(
    files: Annotated[
        list[Path] | None, typer.Argument(help="Stages files to check (as pre-commit passes them).", show_default=False)
    ] = None,
    file: FileOption = Path("stages.yaml"),
) -> int:
    """Check stages files offline: YAML, schema and meaning. Exit 1 on any problem."""
    from .commands.validate import validate as run

    return run(files or [file], _output())


@app.command()
def plan(
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    format: FormatOption = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 when in sync, 2 when changes are pending.")
    ] = False,
    base: Annotated[
        str | None,
        typer.Option("--base", help="A git ref (e.g. origin/main): also show the change to the file since it.",
                     show_default=False),
    ] = None,
    max_changes: MaxChangesOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also save the plan, with the state it was computed against, for apply.",
                     show_default=False, dir_okay=False),
    ] = None,
    adopt: AdoptOption = None,
    model: ModelOption = None,
    json_report: JsonReportOption = None,
) -> int:
    """Show the ordered steps that would bring the registry to the stages file. Writes nothing."""
    from .commands.plan import plan as run

    _output().json_report = json_report
    return run(file, uris.Given(tracking_uri, registry_uri), format.value, detailed_exitcode, base, max_changes, out,
               _output(), frozenset(adopt or ()), model or [])


@app.command()
def apply(
    saved_plan: Annotated[
        Path | None,
        typer.Argument(help="A plan saved by `plan --out`: apply exactly it, or refuse it if stale.",
                       show_default=False),
    ] = None,
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    format: FormatOption = Format.text,
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, max=64, help="Models written concurrently (server registries).")
    ] = 8,
    allow_dirty: Annotated[
        bool, typer.Option("--allow-dirty", help="Apply even when the stages file has uncommitted changes or is not "
                                                 "in a git checkout (the provenance tags say so).")
    ] = False,
    max_changes: MaxChangesOption = None,
    lease_wait: Annotated[
        float, typer.Option("--lease-wait", min=0, help="Seconds to wait while another apply holds the registry lease.")
    ] = 300.0,
    lease_ttl: Annotated[
        float, typer.Option("--lease-ttl", min=1, help="Seconds a lease lasts unrenewed: another apply takes it "
                                                       "over once it has seen it unchanged for that long.")
    ] = 300.0,
    adopt: AdoptOption = None,
    model: ModelOption = None,
    json_report: JsonReportOption = None,
) -> int:
    """Re-plan against the live registry and apply the steps: archive first, then promote."""
    from .commands.apply import apply as run
    from .commands.apply import apply_saved

    _output().json_report = json_report
    policy = (lease_wait, lease_ttl)
    given = uris.Given(tracking_uri, registry_uri)
    if saved_plan is not None:
        from .pipeline import refuse_misread_saved_plan

        refuse_misread_saved_plan(saved_plan, file, model or [])
        return apply_saved(saved_plan, given, format.value, parallelism, policy, _output())
    return run(file, given, format.value, parallelism, allow_dirty, max_changes, policy, _output(),
               frozenset(adopt or ()), model or [])


class StageName(enum.StrEnum):
    production = "production"
    staging = "staging"
    archived = "archived"


class TextOrJson(enum.StrEnum):
    """For reports that have no markdown form."""

    text = "text"
    json = "json"


@app.command()
def history(
    model: Annotated[str, typer.Argument(help="The registered model.")],
    file: FileOption = Path("stages.yaml"),
    format: Annotated[TextOrJson, typer.Option("--format", help="Report format.")] = TextOrJson.text,
) -> int:
    """What was declared for a model, when, and who changed it: from the git log of the stages file."""
    from .commands.history import history as run

    return run(model, file, format.value, _output())


@app.command("transition-version")
def transition_version(
    model_name: Annotated[str, typer.Option("--model-name", help="The registered model.")],
    version: Annotated[int, typer.Option("--version", min=1, help="The model version.")],
    stage: Annotated[
        StageName | None,
        typer.Option("--stage", case_sensitive=False, help="Move the version into this stage.", show_default=False),
    ] = None,
    alias: Annotated[
        str | None, typer.Option("--alias", help="Point this alias at the version instead.", show_default=False)
    ] = None,
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Commit the change on this new branch, ready for a pull request.",
                     show_default=False),
    ] = None,
    move_aliases: Annotated[
        bool, typer.Option("--move-aliases", help="With --stage: move the aliases of the versions it replaces "
                                                  "there to this version.")
    ] = False,
    file: FileOption = Path("stages.yaml"),
) -> int:
    """Propose a promotion by editing the stages file (never the registry), keeping its comments and layout."""
    from .commands.transition import transition_version as run

    return run(file, model_name, version, stage.value if stage else None, alias, branch, _output(),
               move_aliases=move_aliases)


class MigrateTarget(enum.StrEnum):
    both = "both"
    aliases = "aliases"


@app.command()
def migrate(
    to: Annotated[MigrateTarget, typer.Option("--to", case_sensitive=False, help="both: stages and aliases at once; "
                                              "aliases: aliases only.")],
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Commit the change on this new branch, ready for a pull request.",
                     show_default=False),
    ] = None,
    production_alias: Annotated[
        str | None, typer.Option("--production-alias", help="The alias that stands for production.",
                                 show_default=False)] = None,
    staging_alias: Annotated[
        str | None, typer.Option("--staging-alias", help="The alias that stands for staging.", show_default=False)
    ] = None,
    file: FileOption = Path("stages.yaml"),
) -> int:
    """Move the stages file's lifecycle off MLflow stages, one reviewed pull request at a time."""
    from .commands.migrate import migrate as run
    from .model import Mode

    return run(file, Mode(to.value), branch, _output(), production_alias=production_alias,
               staging_alias=staging_alias)


@app.command()
def export(
    models: Annotated[list[str] | None, typer.Argument(help="Models to export (default: all).")] = None,
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file instead of stdout.", show_default=False)
    ] = None,
) -> int:
    """Print a stages file that describes the live registry: the way to start managing it."""
    from .commands.export import export as run

    return run(models or [], uris.Given(tracking_uri, registry_uri), output, _output())


class DriftMode(enum.StrEnum):
    report = "report"
    heal = "heal"
    propose = "propose"


@app.command()
def drift(
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    format: FormatOption = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 2 when the registry was changed outside git.")
    ] = False,
    mode: Annotated[
        DriftMode,
        typer.Option("--mode", help="report: only tell; heal: apply the file; propose: write the registry's "
                                    "state into the file on a new branch, for review."),
    ] = DriftMode.report,
    branch: Annotated[
        str | None,
        typer.Option("--branch", help="Branch for --mode propose (default stagectl/drift), reset to the current "
                                      "commit each time, so one pull request follows the open drift.",
                     show_default=False)
    ] = None,
    parallelism: Annotated[int, typer.Option("--parallelism", min=1, max=64, help="For --mode heal.")] = 8,
    json_report: JsonReportOption = None,
) -> int:
    """Find changes made to the registry outside git, told apart from merged changes not yet applied."""
    from .commands.drift import drift_command

    _output().json_report = json_report
    return drift_command(file, uris.Given(tracking_uri, registry_uri), format.value, detailed_exitcode, mode.value,
                         branch, (parallelism, (300.0, 300.0)), _output())


@app.command()
def propose(
    models: Annotated[list[str] | None, typer.Argument(help="Models to propose for (default: the file's).")] = None,
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report what would be proposed.")] = False,
    format: FormatOption = Format.text,
    json_report: JsonReportOption = None,
) -> int:
    """Write promotions the policy asks for as branches stagectl/promote/MODEL/STAGE, one commit each, ready
    for a pull request. Writes git, never the registry; the branch checked out stays checked out."""
    from .commands.propose import propose_command

    _output().json_report = json_report
    return propose_command(models or [], file, uris.Given(tracking_uri, registry_uri), format.value, dry_run,
                           _output())


webhook_app = typer.Typer(
    help="Receive MLflow's registry webhooks (MLflow 3.3 and later): a new version starts a proposal at once, an "
         "alias changed outside stagectl a drift report. Webhooks are hints: keep the scheduled runs.",
    no_args_is_help=True, rich_markup_mode=None)
app.add_typer(webhook_app, name="webhook")
SecretEnvOption = Annotated[
    str, typer.Option("--secret-env", help="The environment variable that holds the webhook's secret (never the "
                                           "secret itself: a command line is visible to every user of the machine).")
]


@webhook_app.command("serve")
def webhook_serve(
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on (0: any free one).")],
    secret_env: SecretEnvOption,
    push: Annotated[
        str | None, typer.Option("--push", help="Push each new or updated proposal branch to this git remote "
                                                "(and bring the checkout up to date from it first).",
                                 show_default=False)
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
) -> int:
    """Receive deliveries at POST /: verify their signature and freshness, then run propose for new versions
    and tags (in the checkout that holds the file), and a drift report for alias changes."""
    from .commands.webhook import serve

    return serve(port, host, secret_env, push, file, uris.Given(tracking_uri, registry_uri), _output())


@webhook_app.command("register")
def webhook_register(
    url: Annotated[str, typer.Option("--url", help="Where webhook serve listens, as the registry reaches it.")],
    secret_env: SecretEnvOption,
    name: Annotated[str, typer.Option("--name", help="The webhook's name; one of that name is updated.")] = "stagectl",
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
) -> int:
    """Create (or update) the registry's webhook for the events webhook serve acts on, signed with the secret."""
    from .commands.webhook import register

    return register(url, secret_env, name, file, uris.Given(tracking_uri, registry_uri), _output())


@app.command()
def resolve(
    model: Annotated[str, typer.Argument(help="The registered model.")],
    stage: Annotated[
        str | None, typer.Option("--stage", help="production, staging or archived.", show_default=False)
    ] = None,
    alias: Annotated[str | None, typer.Option("--alias", help="An alias, e.g. champion.", show_default=False)] = None,
    check_file: Annotated[
        Path | None,
        typer.Option("--check-file", help="Also require the registry to agree with this reviewed stages file.",
                     show_default=False),
    ] = None,
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    format: Annotated[
        TextOrJson, typer.Option("--format", help="text: the pinned URI only; json: the whole record.")
    ] = TextOrJson.text,
) -> int:
    """Print the pinned URI (models:/NAME/VERSION) of the one version in a stage or behind an alias."""
    from .commands.resolve import resolve as run

    return run(model, stage, alias, check_file, uris.Given(tracking_uri, registry_uri), format.value, _output())


@app.command("cleanup-report")
def cleanup_report(
    models: Annotated[list[str] | None, typer.Argument(help="Models to report on (default: all).")] = None,
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Idle for longer than this: 90d, 12h, 30m, 45s, 2w.")
    ] = "90d",
    format: FormatOption = Format.text,
) -> int:
    """List archived versions no alias points at, the file does not mention, idle for long. Deletes nothing."""
    from .commands.cleanup import cleanup_report as run

    return run(models or [], file, uris.Given(tracking_uri, registry_uri), older_than, format.value, _output())


@app.command()
def init(
    models: Annotated[list[str] | None, typer.Argument(help="Models to manage (default: all).")] = None,
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    registry_uri: RegistryOption = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the workflows and the schema where they exist and "
                                                        "differ (never the stages file).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be written.")] = False,
    action: Annotated[
        str, typer.Option("--action", help="The action the workflows use: OWNER/REPO[@REF] (default: this "
                                           "stagectl's commit), or ./ for an action in the repository itself.")
    ] = "stagectl/stagectl",
) -> int:
    """Start managing a registry from this repository: stages.yaml from the registry (unless there is one), the
    pull-request and reconcile workflows, the pre-commit hook and the schema. Shows what it writes; overwrites
    only with --force; a second run changes nothing."""
    from .commands.init import init as run
    from .commands.init import parse_action

    name, pin = parse_action(action)
    return run(file, models or [], uris.Given(tracking_uri, registry_uri), name, pin, force, dry_run, _output())


class SchemaName(enum.StrEnum):
    stages = "stages"
    plan = "plan"
    apply = "apply"
    saved_plan = "saved-plan"
    propose = "propose"


@app.command()
def schema(
    name: Annotated[SchemaName, typer.Argument(help="Which document's schema.")] = SchemaName.stages,
) -> int:
    """Print a JSON Schema: the stages file's (for editors: its modeline points at schemas/stages.schema.json),
    or a JSON report's."""
    from .scaffold import schema_text

    _output().data(schema_text(name.value))
    return 0


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


COMPLETE_VAR = "_STAGECTL_COMPLETE"


@app.command()
def completion(shell: Annotated[Shell, typer.Argument(help="The shell.")]) -> int:
    """Print the shell completion script: bash: `stagectl completion bash > ~/.local/share/bash-completion/
    completions/stagectl`; zsh: into a file named _stagectl on your fpath; fish: into
    ~/.config/fish/completions/stagectl.fish."""
    from typer._completion_classes import completion_init  # typer's scripts and its answers to them
    from typer._completion_shared import get_completion_script

    completion_init()
    _output().data(get_completion_script(prog_name="stagectl", complete_var=COMPLETE_VAR, shell=shell.value) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the one place where errors become messages and exit codes."""
    global _debug, _out
    _out = None
    args, _debug = _without_debug(sys.argv[1:] if argv is None else argv)
    if os.environ.get(COMPLETE_VAR):  # the shell asking for completions: only then load what answers it
        from typer._completion_classes import completion_init

        completion_init()
    try:
        code = _only_the_command(args)(args=args, prog_name="stagectl", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except ControllerError as e:
        _print_error(str(e), prefix="" if _is_located(str(e)) else "error: ")
        if _debug:
            _print_error(traceback.format_exc(), prefix="")
        if isinstance(e, ConfigError) and github.active():
            _output().data(github.error_annotations(e.problems))
        return e.exit_code
    except typer.Abort:
        _print_error("aborted")
        return 1
    except KeyboardInterrupt:
        _print_error("interrupted")
        return 130
    except Exception as e:
        if _is_usage_error(e):
            e.show()  # type: ignore[attr-defined]
            return 1  # wrong usage is an error like any other: 2 means "changes pending"
        _print_error(f"an unexpected error occurred: {type(e).__name__}: {e}")
        if _debug:
            _print_error(traceback.format_exc(), prefix="")
        return 1


def _without_debug(args: list[str]) -> tuple[list[str], bool]:
    """`--debug` is the app's option, but people add it where the command's options go (`stagectl plan
    --debug`): take it from anywhere before `--`."""
    end = args.index("--") if "--" in args else len(args)
    kept = [arg for arg in args[:end] if arg != "--debug"] + args[end:]
    return kept, len(kept) != len(args)


def _only_the_command(args: list[str]) -> typer.Typer:
    """The app with just the command being run, when it names one: typer builds the options of every command it
    holds before parsing, a cost each start pays (`validate` runs on every commit, as a pre-commit hook)."""
    name = next((arg for arg in args if not arg.startswith("-")), None)  # the app's own options take no value
    chosen = [c for c in app.registered_commands
              if c.callback and name == (c.name or typer.main.get_command_name(c.callback.__name__))]
    groups = [g for g in app.registered_groups if g.name == name]
    if not chosen and not groups:
        return app  # no command, or an unknown one: the whole app, for its help and its suggestions
    only = copy.copy(app)
    only.registered_commands = chosen
    only.registered_groups = groups
    return only


def _is_usage_error(error: Exception) -> bool:
    """Click's usage errors (typer ships its own copy of click, so match the interface, not the class)."""
    return callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int)


def _is_located(message: str) -> bool:
    first = message.split(":", 1)[0]
    return bool(first) and " " not in first


def _print_error(message: str, prefix: str = "error: ") -> None:
    _output().info(prefix + message)
