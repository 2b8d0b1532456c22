"""How to add one of stagectl's extras to this installation, by a name pip can install it from."""

from __future__ import annotations

import json
from typing import Any


def install_hint(extra: str, record: Any = None) -> str:
    """`pip install ...` for stagectl with `extra`, from where this stagectl came (`record`: pip's
    direct_url.json, read when not given): its checkout, its git URL or archive, else the index."""
    if record is None:
        record = origin()
    url = record.get("url") if isinstance(record, dict) else None
    if not isinstance(url, str) or not url:
        return f"pip install 'stagectl[{extra}]'"
    if url.startswith("file://") and "dir_info" in record:
        return f"pip install '{url.removeprefix('file://')}[{extra}]'"
    vcs = record.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") and vcs.get("commit_id"):
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    return f"pip install 'stagectl[{extra}] @ {url}'"


def origin() -> Any:
    from importlib import metadata

    # The first record pip wrote: a source checkout on sys.path may also hold build metadata without one.
    for found in metadata.distributions(name="stagectl"):
        text = found.read_text("direct_url.json")
        if text:
            try:
                found_record = json.loads(text)
            except ValueError:
                return {}
            return found_record if isinstance(found_record, dict) else {}
    return {}
