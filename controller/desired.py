"""stages.yaml → DesiredState: strict YAML, JSON Schema and semantic checks, every problem with file:line:col."""

from __future__ import annotations

import codecs
import difflib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import yaml

from . import paths, unity
from .cleanup import parse_duration
from .errors import ConfigError, Problem
from .model import DesiredModel, DesiredState, Lifecycle, MetricGate, Mode, Policy, Position, version_key

MAX_BYTES = 4 * 1024 * 1024  # thousands of models fit in a fraction of this; anything larger is a mistake
MAX_DEPTH = 20  # the format nests 5 deep

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_RESERVED_ALIAS = re.compile(r"latest|v\d+", re.IGNORECASE)
_STAGE_KEYS = ("production", "staging", "archived")
_TAG = "tag:yaml.org,2002:"

JsonPath = tuple[str | int, ...]


def load(path: Path | str, display: str | None = None) -> DesiredState:
    """Read and check a stages file; raises ConfigError listing every problem found."""
    path = Path(path)
    name = display or str(path)
    paths.check_read(path, name)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError((Problem(name, "file not found"),)) from None
    except OSError as e:
        raise ConfigError((Problem(name, f"cannot read the file: {e.strerror}"),)) from None
    return parse_bytes(raw, name)


def parse_bytes(raw: bytes, name: str = "stages.yaml") -> DesiredState:
    """Check a stages file's bytes: size, encoding, then everything parse() checks."""
    return parse(_decode(raw, name), name)


def parse(text: str, name: str = "stages.yaml") -> DesiredState:
    doc = _Document(name)
    root = doc.compose(text)
    if doc.problems:
        raise ConfigError(tuple(doc.problems))
    if root is None:
        empty = "the file is empty; expected 'apiVersion: stagectl/v1' and 'models:'"
        raise ConfigError((Problem(name, empty, 1, 1),))
    data = doc.convert(root, ())
    doc.check_schema(data)
    doc.check_semantics(data)
    if doc.problems:
        raise ConfigError(tuple(sorted(doc.problems, key=lambda p: (p.line or 0, p.col or 0))))
    state = _build(data, doc, name)
    if unity.expected(state):
        unity.check(state)
    return state


def _decode(raw: bytes, name: str) -> str:
    if len(raw) > MAX_BYTES:
        message = f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; refusing to read it"
        raise ConfigError((Problem(name, message, 1, 1),))
    if raw.startswith(codecs.BOM_UTF8):
        message = "the file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM"
        raise ConfigError((Problem(name, message, 1, 1),))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        message = f"the file is not valid UTF-8 (byte 0x{raw[e.start]:02x})"
        raise ConfigError((Problem(name, message, line, col),)) from None


@cache
def schema() -> dict[str, Any]:
    # Beside this module in every installed form (pip never installs stagectl zipped): no importlib.resources.
    result: dict[str, Any] = json.loads((Path(__file__).parent / "schemas/stages.schema.json").read_text("utf-8"))
    return result


@dataclass
class _Document:
    """One file being read: the positions of its values and keys, and the problems found so far."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    values: dict[JsonPath, Position] = field(default_factory=dict)
    keys: dict[JsonPath, Position] = field(default_factory=dict)
    reported: set[JsonPath] = field(default_factory=set)

    def problem(self, at: Position, message: str, path: JsonPath | None = None) -> None:
        if path is not None:
            if path in self.reported:
                return
            self.reported.add(path)
        self.problems.append(Problem(self.name, message, at.line, at.col))

    def where(self, path: JsonPath, *, key: bool = False) -> Position:
        """Where a value (or its key) is written; the nearest enclosing one if it is not."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            path = path[:-1]
        return self.values.get((), Position(1, 1))

    # -- YAML -----------------------------------------------------------------------------------------

    def compose(self, text: str) -> yaml.Node | None:
        """The node tree, after refusing what plain YAML loading would silently accept."""
        try:
            depth, documents = 0, 0
            for event in yaml.parse(text, Loader=_Loader):
                at = _position(event.start_mark)
                if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                    self.problem(at, "YAML anchors and aliases (&name, *name) are not allowed; write values out")
                    return None
                if isinstance(event, yaml.DocumentStartEvent):
                    documents += 1
                    if documents > 1:
                        self.problem(at, "more than one YAML document ('---'); a stages file is one document")
                        return None
                if isinstance(event, yaml.CollectionStartEvent):
                    depth += 1
                    if depth > MAX_DEPTH:
                        self.problem(at, f"nesting deeper than {MAX_DEPTH} levels")
                        return None
                elif isinstance(event, yaml.CollectionEndEvent):
                    depth -= 1
            node: yaml.Node | None = yaml.compose(text, Loader=_Loader)
            return node
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            at = _position(mark) if mark else Position(1, 1)
            if (e.problem or "").startswith("exceeded maximum nesting depth"):
                # libyaml scans flow collections ahead and meets its own limit (1000) before our events do.
                self.problem(at, f"nesting deeper than {MAX_DEPTH} levels")
            else:
                self.problem(at, f"YAML syntax error: {e.problem or e.context}")
        except yaml.reader.ReaderError as e:
            # Characters YAML refuses (NUL, other control characters): the error has an offset, not a mark.
            before = text[: e.position]
            at = Position(before.count("\n") + 1, e.position - (before.rfind("\n") + 1) + 1)
            code = e.character if isinstance(e.character, int) else ord(e.character)
            self.problem(at, f"character U+{code:04X} is not allowed in YAML ({e.reason.split(':')[0]})")
        except yaml.YAMLError as e:
            self.problem(Position(1, 1), f"YAML error: {e}")
        return None

    def convert(self, node: yaml.Node, path: JsonPath) -> Any:
        """Plain Python data from a node, refusing scalars whose YAML meaning differs from how they read."""
        self.values[path] = _position(node.start_mark)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            first_seen: dict[str, Position] = {}
            for key_node, value_node in node.value:
                key = self._key(key_node, path)
                if key is None:
                    continue
                at = _position(key_node.start_mark)
                if key in first_seen:
                    line = first_seen[key].line
                    self.problem(at, f"duplicate key '{key}' (first written on line {line})")
                    continue
                first_seen[key] = at
                self.keys[path + (key,)] = at
                result[key] = self.convert(value_node, path + (key,))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _key(self, node: yaml.Node, path: JsonPath) -> str | None:
        at = _position(node.start_mark)
        if not isinstance(node, yaml.ScalarNode):
            self.problem(at, "keys must be plain text, not lists or mappings")
            return None
        if node.tag != _TAG + "str":
            kind = _kind(node)
            self.problem(at, f"key '{node.value}' is read by YAML as {kind}; quote it: '\"{node.value}\"'")
            return None
        return str(node.value)

    def _scalar(self, node: yaml.Node, path: JsonPath) -> Any:
        tag, value, at = node.tag, str(node.value), _position(node.start_mark)
        if tag == _TAG + "str":
            return value
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            if value.lower() in ("true", "false"):
                return value.lower() == "true"
            self.problem(at, f"'{value}' is read by YAML as a boolean; quote it if you mean text", path)
            return None
        if tag == _TAG + "int":
            if _DECIMAL.fullmatch(value):
                return int(value)
            number = yaml.safe_load(value)
            self.problem(at, f"'{value}' is read by YAML as the number {number}; "
                         "write versions as plain digits without leading zeros", path)
            return None
        if tag == _TAG + "float" and len(path) >= 3 and path[-3] == "metrics":
            return float(value)  # a metric's bound (policy.metrics.NAME.KEY): a decimal number means what it reads
        if tag == _TAG + "float":
            if "require_tags" in path:
                self.problem(at, f"'{value}' is read by YAML as a number; tag values are text: quote it", path)
            else:
                self.problem(at, f"'{value}' is read by YAML as a decimal number, not a version; "
                             "versions are whole numbers (quote it if you mean text)", path)
            return None
        self.problem(at, f"'{value}' is read by YAML as {_kind(node)}; quote it if you mean text", path)
        return None

    # -- schema and meaning ---------------------------------------------------------------------------

    def check_schema(self, data: Any) -> None:
        validator = jsonschema.Draft202012Validator(schema())
        for error in sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
            for path, on_key, message in _explain(error):
                self.problem(self.where(path, key=on_key), message, path)

    def check_semantics(self, data: Any) -> None:
        """Rules a schema cannot say; safe on data that failed the schema (problems are deduplicated)."""
        if not isinstance(data, dict):
            return
        registry = data.get("registry")
        for key in ("tracking_uri", "registry_uri"):
            uri = registry.get(key) if isinstance(registry, dict) else None
            if not isinstance(uri, str):
                continue
            at = self.where(("registry", key))
            try:
                parts = urlsplit(uri)
            except ValueError as e:
                self.problem(at, f"registry.{key} is not a valid URI: {e}")
            else:
                if parts.password or parts.username:
                    self.problem(at, f"registry.{key} holds credentials; set MLFLOW_TRACKING_USERNAME/"
                                 "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN instead")
        models = data.get("models")
        for model, entry in models.items() if isinstance(models, dict) else ():
            if not isinstance(entry, dict):
                continue
            first: dict[int, str] = {}
            for stage, path, version in _stage_entries(model, entry):
                if not isinstance(version, int) or isinstance(version, bool):
                    continue
                if version in first:
                    where = first[version]
                    again = "twice" if where == stage else f"in both {where} and {stage}"
                    self.problem(self.where(path), f"models.{model}: version {version} is listed {again}", path)
                else:
                    first[version] = stage
            aliases = entry.get("aliases")
            for alias in aliases if isinstance(aliases, dict) else ():
                if _RESERVED_ALIAS.fullmatch(alias):
                    at = self.where(("models", model, "aliases", alias), key=True)
                    self.problem(at, f"models.{model}.aliases: '{alias}' is reserved by MLflow "
                                 "('latest' and v<number> name versions themselves)")
            self._check_lifecycle(model, entry, data.get("lifecycle"))
        self._check_lifecycle_aliases(("lifecycle",), data.get("lifecycle"))

    def _check_lifecycle(self, model: str, entry: dict[str, Any], file_wide: Any) -> None:
        """With aliases, production and staging name one version each (an alias points at one)."""
        own = entry.get("lifecycle")
        self._check_lifecycle_aliases(("models", model, "lifecycle"), own)
        lifecycle = _lifecycle(own, _lifecycle(file_wide, Lifecycle()) or Lifecycle())
        if lifecycle is None or not lifecycle.aliases:
            return
        where = "its lifecycle" if own is not None else "the file's lifecycle"
        for stage in ("production", "staging"):
            value = entry.get(stage)
            listed = value if isinstance(value, list) else [value] if value is not None else None
            if listed is None or len(listed) == 1 or (stage == "staging" and not listed):
                continue
            path = ("models", model, stage)
            alias = lifecycle.production_alias if stage == "production" else lifecycle.staging_alias
            why = ("production cannot be empty: the alias would point at nothing" if not listed else
                   f"{stage} names one version: its alias '{alias}' points at one")
            self.problem(self.where(path), f"models.{model}.{stage}: with {lifecycle.mode} in {where}, {why}", path)
        if lifecycle.production_alias == lifecycle.staging_alias:
            key: JsonPath = ("models", model, "lifecycle") if own is not None else ("lifecycle",)
            self.problem(self.where(key), f"models.{model}: its production and staging aliases are both "
                         f"'{lifecycle.production_alias}'; they must differ", key)
        names = {lifecycle.production_alias: "production", lifecycle.staging_alias: "staging"}
        aliases = entry.get("aliases")
        for alias in aliases if isinstance(aliases, dict) else ():
            if alias in names:
                at = self.where(("models", model, "aliases", alias), key=True)
                self.problem(at, f"models.{model}.aliases: '{alias}' is the lifecycle's {names[alias]} alias, "
                             f"set from '{names[alias]}:'; remove it from aliases")

    def _check_lifecycle_aliases(self, path: JsonPath, value: Any) -> None:
        if not isinstance(value, dict):
            return
        dotted = ".".join(str(p) for p in path)
        for key in ("production_alias", "staging_alias"):
            alias = value.get(key)
            if isinstance(alias, str) and _RESERVED_ALIAS.fullmatch(alias):
                self.problem(self.where(path + (key,)), f"{dotted}.{key}: '{alias}' is reserved by MLflow "
                             "('latest' and v<number> name versions themselves)", path + (key,))
        production, staging = value.get("production_alias"), value.get("staging_alias")
        if production is not None and production == staging:
            self.problem(self.where(path + ("staging_alias",)), f"{dotted}: production_alias and staging_alias "
                         f"are both '{production}'; they must differ", path + ("staging_alias",))


def _stage_entries(model: str, entry: dict[str, Any] | None) -> Iterator[tuple[str, JsonPath, int]]:
    for stage in _STAGE_KEYS:
        value = (entry or {}).get(stage)
        if isinstance(value, list):
            for i, version in enumerate(value):
                yield stage, ("models", model, stage, i), version
        elif value is not None:
            yield stage, ("models", model, stage), value


def _explain(error: jsonschema.ValidationError) -> list[tuple[JsonPath, bool, str]]:
    """(path, whether the problem is the key rather than the value, message) for one schema error."""
    path: JsonPath = tuple(error.absolute_path)
    dotted = ".".join(str(p) for p in path)
    prefix = f"{dotted}: " if dotted else ""
    if error.validator == "additionalProperties":
        allowed = list(_schema_of(error).get("properties", {}))
        unexpected = [k for k in error.instance if k not in allowed]  # type: ignore[union-attr]
        out = []
        for key in unexpected:
            hint = difflib.get_close_matches(key, allowed, n=1)
            why = f"did you mean '{hint[0]}'?" if hint else f"expected one of: {', '.join(allowed)}"
            out.append((path + (key,), True, f"{prefix}unknown key '{key}'; {why}"))
        return out
    if error.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        return [(path + (k,), False, f"{prefix}missing required key '{k}'") for k in missing]
    if error.validator in ("anyOf", "oneOf") and error.context:
        # One version or a list of versions: explain against the branch that matches the value's shape.
        kinds = [b.get("type") if isinstance(b, Mapping) else None for b in _listed(error.validator_value)]
        shape = "array" if isinstance(error.instance, list) else "object" if isinstance(error.instance, dict) else None
        branch = kinds.index(shape) if shape in kinds else 0
        inner = [e for e in error.context if e.relative_schema_path and e.relative_schema_path[0] == branch]
        inner = [e for e in inner if not (branch == 1 and e.validator == "type" and not e.path)]
        if inner:
            explained = []
            for e in inner:
                sub = path + tuple(e.path)
                explained += [(sub, False, message) for _, _, message in _explain_value(e, sub)]
            return explained
    if "propertyNames" in error.absolute_schema_path:
        return [(path + (str(error.instance),), True, f"{prefix}invalid name '{error.instance}': "
                 + ("only letters, digits, '_' and '-' are allowed" if "aliases" in path
                    else "model names cannot be blank"))]
    return _explain_value(error, path)


def _explain_value(error: jsonschema.ValidationError, path: JsonPath) -> list[tuple[JsonPath, bool, str]]:
    dotted = ".".join(str(p) for p in path) or "the file"
    value = error.instance
    schema = _schema_of(error)
    is_version = schema.get("minimum") == 1 or str(schema.get("$ref", "")).endswith("/version")
    if error.validator in ("type", "minimum") and (is_version or error.validator == "minimum"):
        return [(path, False, f"{dotted}: versions are positive whole numbers, got {_show(value)}")]
    if error.validator == "enum":
        allowed = ", ".join(str(v) for v in _listed(error.validator_value))
        return [(path, False, f"{dotted}: expected one of {allowed}, got {_show(value)}")]
    if error.validator == "const":
        return [(path, False, f"{dotted}: must be {json.dumps(error.validator_value)}, got {_show(value)}")]
    if error.validator == "type":
        return [(path, False, f"{dotted}: expected {_article(error.validator_value)}, got {_show(value)}")]
    return [(path, False, f"{dotted}: {error.message}")]


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _schema_of(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _policy(data: Mapping[str, Any] | None) -> Policy:
    data = data or {}
    metrics = {name: MetricGate(gate.get("threshold"), gate.get("min_absolute_change"),
                                gate.get("min_relative_change"), gate.get("greater_is_better", True))
               for name, gate in sorted((data.get("metrics") or {}).items())}
    soak, propose = data.get("soak"), data.get("propose")
    return Policy(metrics=metrics, soak=parse_duration(soak) if soak else None,
                  propose=frozenset(propose) if propose is not None else None,
                  require_tags=dict(data.get("require_tags") or {}), promote_from=data.get("promote_from"),
                  frozen=data.get("frozen"))


def _lifecycle(value: Any, base: Lifecycle) -> Lifecycle | None:
    """A `lifecycle:` value over the one it overrides; None when it is not one (the schema says why)."""
    if value is None:
        return base
    if isinstance(value, str):
        value = {"mode": value}
    if not isinstance(value, dict):
        return None
    try:
        mode = Mode(value.get("mode", base.mode))
    except ValueError:
        return None
    production = value.get("production_alias", base.production_alias)
    staging = value.get("staging_alias", base.staging_alias)
    if not isinstance(production, str) or not isinstance(staging, str):
        return None
    return Lifecycle(mode, production, staging)


def _build(data: dict[str, Any], doc: _Document, name: str) -> DesiredState:
    file_policy = (data.get("defaults") or {}).get("policy") or {}
    defaults = _policy(file_policy)
    file_lifecycle = _lifecycle(data.get("lifecycle"), Lifecycle()) or Lifecycle()
    models = []
    for model_name in sorted(data["models"]):
        entry = data["models"][model_name] or {}
        stages: dict[str, frozenset[str] | None] = {}
        version_positions: dict[str, Position] = {}
        for _, path, version in _stage_entries(model_name, entry):
            version_positions.setdefault(str(version), doc.where(path))
        for stage in _STAGE_KEYS:
            if stage in entry:
                value = entry[stage]
                listed = value if isinstance(value, list) else [value]
                stages[stage] = frozenset(str(v) for v in listed)
        aliases = {alias: str(v) for alias, v in (entry.get("aliases") or {}).items()}
        alias_positions = {a: doc.where(("models", model_name, "aliases", a), key=True) for a in aliases}
        for alias, target in aliases.items():
            version_positions.setdefault(target, doc.where(("models", model_name, "aliases", alias)))
        models.append(DesiredModel(
            name=model_name,
            production=stages.get("production"),
            staging=stages.get("staging"),
            archived=stages.get("archived") or frozenset(),
            aliases=dict(sorted(aliases.items())),
            policy=_policy(entry.get("policy")).over(defaults),
            lifecycle=_lifecycle(entry.get("lifecycle"), file_lifecycle) or file_lifecycle,
            lifecycle_position=(doc.where(("models", model_name, "lifecycle")) if "lifecycle" in entry
                                else doc.where(("lifecycle",)) if "lifecycle" in data else None),
            position=doc.where(("models", model_name), key=True),
            version_positions=dict(sorted(version_positions.items(), key=lambda kv: version_key(kv[0]))),
            alias_positions=alias_positions,
        ))
    registry = data.get("registry") or {}
    return DesiredState(path=name, models=tuple(models), tracking_uri=registry.get("tracking_uri"),
                        registry_uri=registry.get("registry_uri"), max_changes=file_policy.get("max_changes"),
                        owner=data.get("owner"), defaults=defaults, flavor=registry.get("flavor"))


def _position(mark: Any) -> Position:
    return Position(mark.line + 1, mark.column + 1)


def _kind(node: yaml.Node) -> str:
    kind = node.tag.removeprefix(_TAG)
    return {"bool": "a boolean", "int": "a number", "float": "a number", "null": "null (empty)",
            "timestamp": "a date"}.get(kind, f"the type '{kind}'")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return "nothing" if value is None else json.dumps(value)


def _article(kind: Any) -> str:
    words = {"object": "a mapping", "array": "a list", "string": "text", "integer": "a whole number"}
    return words.get(str(kind), str(kind))
