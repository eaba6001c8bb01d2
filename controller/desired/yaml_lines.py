"""YAML for desired-state files: duplicate keys rejected, and the line of every value kept.

PyYAML silently keeps the last of two equal keys (`action: backup` then `action: none` in the
same box), which in a file that drives disk restores is a bug waiting to happen, so the loader
here refuses them. It also keeps a map from each value's path (`("boxes", 3, "ip")`) to its
line, so that a validation problem found later on plain Python data can still be reported as
`file:line: field: problem`.
"""

import re
from typing import Any

import yaml

# libyaml's parser when present: the controller loads desired files with 10,000 boxes.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Path = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlProblem(Exception):
    """The text is not acceptable YAML; `line` is 1-based (0 when unknown)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader with YAML 1.2 scalar typing (below) that notices possible duplicate keys."""

    suspect_duplicates = False

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        # Fewer keys than pairs: a key given twice, or a merged key overridden (fine). Cheap
        # to notice here; LoadedYaml then walks the nodes to tell which and where.
        if len(mapping) != len(node.value):
            self.suspect_duplicates = True
        return mapping


# YAML 1.2 scalars, as editors (yaml-language-server) read the file: PyYAML's YAML 1.1 rules
# would turn an unquoted MAC `52:54:00:12:34:56` into a base-60 integer, `2026-11-25` into a
# date and `on`/`no` into booleans. Here those stay strings; only true/false, plain decimal
# or hex integers and plain floats are typed.
_RETYPED = {
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:timestamp",
}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _RETYPED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)


class LoadedYaml:
    """One document: its data, the 1-based line of every value by path, and duplicate keys.

    The line map is built on first use only — it is needed for error messages, and walking
    the nodes of a 10,000-box file costs a quarter of a second — from a fresh parse of the
    text (constructing the data flattens merge keys into the nodes in place).
    """

    def __init__(self, data: Any, text: str = "", *, check_duplicates: bool = False) -> None:
        self.data = data
        self._text = text
        self._lines: dict[Path, int] | None = None
        self._duplicates: list[tuple[int, Path, str]] = []
        if check_duplicates:
            self._walk()

    def _walk(self) -> dict[Path, int]:
        if self._lines is None:
            self._lines = {}
            loader = _StrictLoader(self._text)
            try:
                node = loader.get_single_node()
            finally:
                loader.dispose()
            if node is not None:
                self._lines[()] = node.start_mark.line + 1
                _record_lines(node, (), self._lines, self._duplicates, set())
        return self._lines

    @property
    def lines(self) -> dict[Path, int]:
        return self._walk()

    @property
    def duplicate_keys(self) -> list[tuple[int, Path, str]]:
        """(line, path of the key, text) for every key given twice in one mapping."""
        return self._duplicates

    def line_of(self, path: Path) -> int:
        """Line of `path`, or of its nearest ancestor that is in the file (a missing field)."""
        lines = self._walk()
        for end in range(len(path), -1, -1):
            line = lines.get(path[:end])
            if line is not None:
                return line
        return 1


def _record_lines(
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    duplicates: list[tuple[int, Path, str]],
    seen: set[int],
) -> None:
    """Fill `lines`, and note keys given twice (PyYAML would keep the last silently).

    A node reached again through an alias is not walked again: its lines are the anchor's,
    and a recursive or exponential alias structure must not hang the loader.
    """
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            child = (*path, key_node.value)
            # The key's line: for a nested block that is where the field is named.
            line = key_node.start_mark.line + 1
            if child in lines:
                duplicates.append(
                    (line, child, f"duplicate key (first given on line {lines[child]})")
                )
                continue
            lines[child] = line
            _record_lines(value_node, child, lines, duplicates, seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, duplicates, seen)


def load_yaml(text: str) -> LoadedYaml:
    """Parse one YAML document; raise YamlProblem for bad YAML or more than one document."""
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlProblem(line, f"not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise YamlProblem(0, f"not valid YAML: {exc}") from None
    finally:
        suspect = loader.suspect_duplicates
        loader.dispose()
    return LoadedYaml(data, text, check_duplicates=suspect)
