"""stagectl resolve: the pinned URI of the one version a deployment should load, for shell scripts."""

from __future__ import annotations

import json
from pathlib import Path

from .. import uris
from ..reporters import json as json_report
from ..resolve import get_model
from . import Output


def resolve(model: str, stage: str | None, alias: str | None, check_file: Path | None, given: uris.Given,
            fmt: str, out: Output) -> int:
    for uri in (given.tracking_uri, given.registry_uri):
        if uri:
            out.also_hide(uri)
    resolved = get_model(model, stage=stage, alias=alias, tracking_uri=given.tracking_uri,
                         registry_uri=given.registry_uri, stages_file=check_file)
    if fmt == "json":
        out.data(json.dumps({**json_report.header(), **resolved.as_dict()}, indent=2) + "\n")
    else:
        out.data(resolved.uri + "\n")
    return 0
