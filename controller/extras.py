"""How to add one of stagectl's extras to this installation, by a name pip can install it from."""

from __future__ import annotations

import json
from typing import Any


def install_hint(extra: str, record: Any = None) -> str:
    """`pip install ...` for stagectl with `extra`, from where this stagectl came (`record`: pip's
    direct_url.json, read when not given): its checkout (editable stays editable), its git URL or archive,
    else the index. Credentials in a recorded URL are left out: the user has them, the message need not."""
    import shlex
    from urllib.parse import unquote, urlsplit, urlunsplit

    if record is None:
        record = origin()
    url = record.get("url") if isinstance(record, dict) else None
    if not isinstance(url, str) or not url:
        return f"pip install {shlex.quote(f'stagectl[{extra}]')}"
    subdirectory = record.get("subdirectory")
    if url.startswith("file://") and isinstance(record.get("dir_info"), dict):
        folder = unquote(urlsplit(url).path) + (f"/{subdirectory}" if isinstance(subdirectory, str) else "")
        editable = "-e " if record["dir_info"].get("editable") else ""
        return f"pip install {editable}{shlex.quote(f'{folder}[{extra}]')}"
    parts = urlsplit(url)
    url = urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))) \
        if parts.hostname else url
    vcs = record.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs") and vcs.get("commit_id"):
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    if isinstance(subdirectory, str):
        url += f"#subdirectory={subdirectory}"
    return f"pip install {shlex.quote(f'stagectl[{extra}] @ {url}')}"


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
