"""Edit stages.yaml text in place: only the spans that must change are rewritten, every other byte is kept."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from . import desired
from .errors import ConfigError, Problem
from .model import DesiredModel, DesiredState, version_key

STAGE_KEYS = ("production", "staging", "archived")
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_ESCAPE = re.compile(r"\\(U[0-9A-F]{8}|.)")


class EditError(ConfigError):
    """The requested change cannot be written into this file."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__((Problem(file, message),))


def replaced(text: str, model: str, version: str, stage: str, file: str = "stages.yaml") -> dict[str, str]:
    """The declared aliases that point at a version `move_version` moves out of `stage`: alias → its version.

    Moving `version` into production or staging replaces the versions declared there; moving it to archived
    moves `version` itself out of where it was.
    """
    current = _model(desired.parse(text, file), model)
    if current is None:
        return {}
    leaving = {version} if stage == "archived" else set(_listed(current, stage)) - {version}
    return {alias: target for alias, target in sorted(current.aliases.items()) if target in leaving}


def move_version(text: str, model: str, version: str, stage: str, file: str = "stages.yaml", *,
                 move_aliases: bool = False) -> str:
    """Put `version` in `stage` as apply would: for production and staging, the versions it replaces there
    are declared archived; the version leaves every other list. With `move_aliases`, the aliases of the
    versions it replaces point at it instead."""
    aliases = replaced(text, model, version, stage, file) if move_aliases and stage != "archived" else {}
    current = _model(desired.parse(text, file), model)
    before = {key: _listed(current, key) for key in STAGE_KEYS}
    after = {key: [v for v in values if v != version] for key, values in before.items()}
    if stage == "archived":
        after["archived"].append(version)
    else:
        after["archived"] += [v for v in before[stage] if v != version]
        after[stage] = [version]
    editor = _Editor(text, file)
    for key in STAGE_KEYS:
        new = sorted(set(after[key]), key=version_key)
        if new != before[key]:
            editor.set_versions(model, key, new)
    for alias in aliases:
        editor.set_alias(model, alias, version)
    return _checked(editor.result(), file)


def _listed(model: DesiredModel | None, key: str) -> list[str]:
    versions = getattr(model, key) if model is not None else None
    return sorted(versions or (), key=version_key)


def move_alias(text: str, model: str, alias: str, version: str, file: str = "stages.yaml") -> str:
    desired.parse(text, file)
    editor = _Editor(text, file)
    editor.set_alias(model, alias, version)
    return _checked(editor.result(), file)


def declare(text: str, model: str, stages: dict[str, list[str]], aliases: dict[str, str],
            file: str = "stages.yaml") -> str:
    """Set some stage lists and alias targets of one model exactly (the rest of the file unchanged)."""
    desired.parse(text, file)
    editor = _Editor(text, file)
    for key, versions in stages.items():
        editor.set_versions(model, key, sorted(versions, key=version_key))
    for alias, version in aliases.items():
        editor.set_alias(model, alias, version)
    return _checked(editor.result(), file)


def set_lifecycle(text: str, mode: str, file: str = "stages.yaml", *, production_alias: str | None = None,
                  staging_alias: str | None = None) -> str:
    """Set the file's lifecycle mode (and, when given, the names of its aliases); models' own keys are kept."""
    desired.parse(text, file)
    editor = _Editor(text, file)
    editor.set_lifecycle(mode, {k: v for k, v in (("production_alias", production_alias),
                                                  ("staging_alias", staging_alias)) if v is not None})
    return _checked(editor.result(), file)


def yaml_key(name: str) -> str:
    """A model or alias name as a YAML key: plain when YAML reads it back as the same text."""
    if _PLAIN.fullmatch(name) and yaml.safe_load(f"{name}: x") == {name: "x"}:
        return name
    # YAML's own double-quoted form, as readable UTF-8: an emoji stays an emoji (JSON's surrogate-pair escapes
    # are invalid YAML), and only what YAML cannot hold raw is escaped.
    quoted: str = yaml.safe_dump(name, default_style='"', allow_unicode=True, width=1 << 30)
    quoted = quoted.removesuffix("\n").removesuffix("\n...")
    return _ESCAPE.sub(lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "U" and chr(int(m[1][1:], 16)).isprintable()
                       else m[0], quoted)  # PyYAML escapes every character past U+FFFF; YAML reads them raw


def _model(state: DesiredState, name: str) -> DesiredModel | None:
    return next((m for m in state.models if m.name == name), None)


def _checked(text: str, file: str) -> str:
    desired.parse(text, file)  # an edit must never leave an invalid file behind
    return text


@dataclass
class _Edit:
    start: int
    end: int
    text: str


class _Editor:
    def __init__(self, text: str, file: str) -> None:
        self.text, self.file = text, file
        self.root = yaml.compose(text, Loader=yaml.SafeLoader)  # pure-Python marks: character offsets
        self.edits: list[_Edit] = []

    def result(self) -> str:
        out = self.text
        for edit in sorted(self.edits, key=lambda e: e.start, reverse=True):
            out = out[: edit.start] + edit.text + out[edit.end:]
        return out

    def set_versions(self, model: str, key: str, versions: list[str]) -> None:
        entry = self._model_node(model)
        old = _value(entry, key) if entry is not None else None
        single = len(versions) == 1 and not isinstance(old, yaml.SequenceNode)
        rendered = versions[0] if single else f"[{', '.join(versions)}]"
        if old is None:
            self._insert(model, entry, key, rendered)
        elif isinstance(old, yaml.SequenceNode) and not old.flow_style and old.value and versions:
            self._edit_block_list(old, versions)
        elif isinstance(old, yaml.SequenceNode) and not old.flow_style and old.value:
            self._replace(old.start_mark.index, old.value[-1].end_mark.index, "[]")
        else:
            self._replace(old.start_mark.index, old.end_mark.index, rendered)

    def _edit_block_list(self, old: yaml.SequenceNode, versions: list[str]) -> None:
        """Delete the lines of items that go, add lines for items that come; other lines keep their bytes."""
        present = [str(item.value) for item in old.value]
        for item in old.value:
            if str(item.value) not in versions:
                start = item.start_mark.index - item.start_mark.column
                end = self.text.find("\n", item.end_mark.index)
                self.edits.append(_Edit(start, len(self.text) if end == -1 else end + 1, ""))
        first = old.value[0].start_mark
        prefix = self.text[first.index - first.column: first.index]  # e.g. "      - "
        added = "".join(f"\n{prefix}{v}" for v in versions if v not in present)
        if added:
            self._after_line(_last_end(old), added)

    def set_alias(self, model: str, alias: str, version: str) -> None:
        entry = self._model_node(model)
        aliases = _value(entry, "aliases") if entry is not None else None
        if aliases is None:
            self._insert(model, entry, "aliases", f"{{{yaml_key(alias)}: {version}}}")
            return
        if not isinstance(aliases, yaml.MappingNode):
            raise EditError(self.file, f"models.{model}.aliases is not a mapping")
        old = _value(aliases, alias)
        if old is not None:
            self._replace(old.start_mark.index, old.end_mark.index, version)
        else:
            self._add_key(aliases, yaml_key(alias), version)

    def set_lifecycle(self, mode: str, names: dict[str, str]) -> None:
        old = _value(self.root, "lifecycle")
        if isinstance(old, yaml.MappingNode):
            for key, value in {"mode": mode, **names}.items():
                node = _value(old, key)
                if node is None:
                    self._add_key(old, key, value)
                else:
                    self._replace(node.start_mark.index, node.end_mark.index, value)
            return
        rendered = mode if not names else "{" + ", ".join(f"{k}: {v}" for k, v in {"mode": mode, **names}.items()) + "}"
        if old is not None:
            self._replace(old.start_mark.index, old.end_mark.index, rendered)
            return
        if not isinstance(self.root, yaml.MappingNode) or self.root.flow_style:
            raise EditError(self.file, "the file is one flow mapping ({...}); add 'lifecycle: " + mode + "' by hand")
        models = next(k for k, _ in self.root.value if isinstance(k, yaml.ScalarNode) and k.value == "models")
        line_start = models.start_mark.index - models.start_mark.column
        self.edits.append(_Edit(line_start, line_start, f"lifecycle: {rendered}\n"))

    def _model_node(self, model: str) -> yaml.MappingNode | None:
        models = _value(self.root, "models")
        node = _value(models, model) if isinstance(models, yaml.MappingNode) else None
        if node is not None and not isinstance(node, yaml.MappingNode):
            raise EditError(self.file, f"models.{model} is not a mapping")
        return node

    def _insert(self, model: str, entry: yaml.MappingNode | None, key: str, value: str) -> None:
        if entry is not None:
            self._add_key(entry, key, value)
            return
        models = _value(self.root, "models")
        assert isinstance(models, yaml.MappingNode)
        if models.flow_style or not models.value:
            body = f"{{{key}: {value}}}"
            self._add_key(models, yaml_key(model), body)
        else:
            indent = models.value[0][0].start_mark.column
            nested = " " * (indent + 2)
            self._append_line(models, f"{' ' * indent}{yaml_key(model)}:\n{nested}{key}: {value}")

    def _add_key(self, mapping: yaml.MappingNode, key: str, value: str) -> None:
        if mapping.flow_style or not mapping.value:
            if not mapping.value:  # `{}`: fill it
                self._replace(mapping.start_mark.index, mapping.end_mark.index, f"{{{key}: {value}}}")
            else:
                close = self.text.rindex("}", mapping.start_mark.index, mapping.end_mark.index)
                self.edits.append(_Edit(close, close, f", {key}: {value}"))
            return
        indent = " " * mapping.value[0][0].start_mark.column
        self._append_line(mapping, f"{indent}{key}: {value}")

    def _append_line(self, mapping: yaml.MappingNode, line: str) -> None:
        """Add a line after the last line of a block mapping."""
        self._after_line(_last_end(mapping), "\n" + line)

    def _after_line(self, index: int, text: str) -> None:
        """Insert text at the end of the line holding `index`, after any comment on it."""
        eol = self.text.find("\n", index)
        at = len(self.text) if eol == -1 else eol
        self.edits.append(_Edit(at, at, text))

    def _replace(self, start: int, end: int, text: str) -> None:
        self.edits.append(_Edit(start, end, text))


def _last_end(node: yaml.Node) -> int:
    """Where a node's text really ends: a block collection's own end mark lies past its last line break."""
    while isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style and node.value:
        last = node.value[-1]
        node = last[1] if isinstance(node, yaml.MappingNode) else last
    end: int = node.end_mark.index
    return end


def _value(mapping: yaml.Node | None, key: str) -> yaml.Node | None:
    if not isinstance(mapping, yaml.MappingNode):
        return None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            found: yaml.Node = value_node
            return found
    return None
