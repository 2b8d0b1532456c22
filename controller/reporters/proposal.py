"""Proposals as a pull request's body (markdown), and the propose run as text, markdown or JSON."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .. import uris
from ..model import LiveVersion
from ..propose import Proposal, Status
from . import json as json_report
from . import markdown

MARKER = "<!-- stagectl:propose -->"  # marks the pull requests stagectl opens for its proposals


@dataclass(frozen=True, slots=True)
class Report:
    tracking_uri: str
    proposed: tuple[Proposal, ...]  # qualified, each with its status and commit
    held_back: tuple[Proposal, ...]  # candidates that failed a gate, or whose model is held or frozen
    unreadable: tuple[tuple[str, str], ...] = ()  # (model, why) the registry could not be asked about
    dry_run: bool = False


def body(p: Proposal, live: LiveVersion, source: str) -> str:
    """The pull request's description: what merging does, the evidence for it, and where the version came from."""
    c = p.candidate
    parts = [f"Proposed by `stagectl propose`: version {c.version} of `{markdown.cell(c.model)}` qualifies for "
             f"{c.stage} under the policy in `{markdown.cell(source)}`. Merging this pull request declares it there, "
             "and the next apply makes it so. A newer candidate replaces this proposal on the same branch.", "",
             markdown.render_plan(p.plan, source).rstrip("\n")]
    if p.metrics:
        first = p.metrics[0]
        production = f"Production v{first.baseline_version}" if first.baseline_version else "Production"
        parts += ["", "#### Metrics", "",
                  f"| Metric | Candidate v{c.version} | {production} | Change | Gate | Result |",
                  "|---|--:|--:|--:|---|---|"]
        for r in p.metrics:
            parts.append(f"| {markdown.cell(r.name)} | {_number(r.value)} | {_number(r.baseline)} | "
                         f"{_number(r.change, signed=True)} | {markdown.cell(str(r.gate))} | "
                         f"{'pass' if r.ok else 'FAIL'} |")
    soak = [ch for ch in p.checks if ch.gate == "soak"]
    if soak:
        parts += ["", "#### Soak", "", *[f"- {markdown.cell(ch.detail)}" for ch in soak]]
    registered = datetime.fromtimestamp(live.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC") \
        if live.created_ms else "unknown"
    parts += ["", "#### Lineage", "", "| | |", "|---|---|",
              f"| Run | {f'`{live.run_id}`' if live.run_id else 'none'} |",
              f"| Source | {f'`{markdown.cell(uris.redact(live.source))}`' if live.source else 'unknown'} |",
              f"| Registered by | {markdown.cell(live.user) if live.user else 'unknown'} |",
              f"| Registered | {registered} |", "", MARKER]
    return "\n".join(parts) + "\n"


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+g}" if signed else f"{value:g}"


def render(report: Report, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data(report), indent=2) + "\n"
    if fmt == "markdown":
        head = f"### stagectl propose: {_summary(report)}\n\nRegistry: `{report.tracking_uri}`\n"
        held = [f"- {markdown.cell(line)}" for line in _held_lines(report)]
        bodies = "".join(f"\n---\n\n#### {markdown.cell(p.title)}: `{p.branch}` ({_done(p, report.dry_run)})\n\n"
                         f"{p.body}" for p in report.proposed)
        return head + ("\n" + "\n".join(held) + "\n" if held else "") + bodies
    lines = [f"Registry: {report.tracking_uri}", ""]
    for p in report.proposed:
        c = p.candidate
        done = _done(p, report.dry_run) + (f" at {p.commit[:7]}" if p.commit else "")
        lines.append(f"{c.model}: version {c.version} to {c.stage}: branch {p.branch} ({done})")
    lines += _held_lines(report)
    if not report.proposed and not report.held_back and not report.unreadable:
        lines.append("Nothing qualifies: no new version for staging, no staging version ready for production.")
    return "\n".join(lines) + f"\n\nPropose: {_summary(report)}.\n"


def _done(p: Proposal, dry_run: bool) -> str:
    return f"would be {p.status}" if dry_run and p.status is not Status.UNCHANGED else str(p.status)


def _held_lines(report: Report) -> list[str]:
    lines = [f"{p.candidate.model}: version {p.candidate.version} to {p.candidate.stage}: held back: "
             + "; ".join(p.failed) for p in report.held_back]
    return lines + [f"{model}: nothing proposed: {why}" for model, why in report.unreadable]


def _summary(report: Report) -> str:
    counts = Counter(_done(p, report.dry_run) for p in report.proposed)
    done = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    text = f"{len(report.proposed)} proposed" + (f" ({done})" if done else "")
    if report.held_back:
        text += f", {len(report.held_back)} held back by their gates"
    if report.unreadable:
        n = len(report.unreadable)
        text += f", {n} model{'s' if n != 1 else ''} not read (see above)"
    return text + (" (dry run: no branch written)" if report.dry_run else "")


def data(report: Report) -> dict[str, Any]:
    def one(p: Proposal) -> dict[str, Any]:
        c = p.candidate
        return {"model": c.model, "stage": c.stage, "version": c.version, "branch": p.branch,
                "status": p.status.value if p.status else None, "commit": p.commit, "title": p.title,
                "reasons": list(p.failed),
                "checks": [json_report.check_data(ch) for ch in p.checks],
                "steps": [json_report.step_data(s) for s in p.plan.steps]}

    written = sum(1 for p in report.proposed if p.status in (Status.CREATED, Status.UPDATED))
    return {**json_report.header(), "tracking_uri": report.tracking_uri, "dry_run": report.dry_run,
            "changes": written,
            "proposals": [{**one(p), "body": p.body} for p in report.proposed],
            "held_back": [one(p) for p in report.held_back],
            "unreadable": [{"model": m, "reason": why} for m, why in report.unreadable]}
