"""The stagectl command line: parse options, run one command, map its result or error to an exit code."""

from __future__ import annotations

import enum
import os
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from . import uris
from .commands import Output
from .errors import ControllerError

app = typer.Typer(
    name="stagectl",
    help="GitOps promotion for the MLflow model registry: stages.yaml in git, the registry follows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(enum.StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


FileOption = Annotated[Path, typer.Option("-f", "--file", help="The stages file.", dir_okay=False)]
UriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="Registry to reconcile. Default: $MLFLOW_TRACKING_URI, else registry.tracking_uri in the file, "
        f"else {uris.DEFAULT_TRACKING_URI}.",
        show_default=False,
    ),
]
FormatOption = Annotated[Format, typer.Option("--format", help="Report format.")]


@app.command()
def validate(file: FileOption = Path("stages.yaml")) -> int:
    """Check the stages file offline: YAML, schema and meaning. Exit 1 on any problem."""
    from .commands.validate import validate as run

    return run(file, Output())


@app.command()
def plan(
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    format: FormatOption = Format.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 0 when in sync, 2 when changes are pending.")
    ] = False,
) -> int:
    """Show the ordered steps that would bring the registry to the stages file. Writes nothing."""
    from .commands.plan import plan as run

    return run(file, tracking_uri, format.value, detailed_exitcode, Output())


@app.command()
def apply(
    file: FileOption = Path("stages.yaml"),
    tracking_uri: UriOption = None,
    format: FormatOption = Format.text,
    parallelism: Annotated[
        int, typer.Option("--parallelism", min=1, max=64, help="Models written concurrently (server registries).")
    ] = 8,
) -> int:
    """Re-plan against the live registry and apply the steps: archive first, then promote."""
    from .commands.apply import apply as run

    return run(file, tracking_uri, format.value, parallelism, Output())


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; the one place where errors become messages and exit codes."""
    try:
        code = app(args=argv, prog_name="stagectl", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except ControllerError as e:
        _print_error(str(e), prefix="" if _is_located(str(e)) else "error: ")
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
        if os.environ.get("STAGECTL_DEBUG"):
            _print_error(traceback.format_exc())
        return 1


def _is_usage_error(error: Exception) -> bool:
    """Click's usage errors (typer ships its own copy of click, so match the interface, not the class)."""
    return callable(getattr(error, "show", None)) and isinstance(getattr(error, "exit_code", None), int)


def _is_located(message: str) -> bool:
    first = message.split(":", 1)[0]
    return bool(first) and " " not in first


def _print_error(message: str, prefix: str = "error: ") -> None:
    sys.stderr.write(uris.scrub(prefix + message, uris.secrets()) + "\n")
