"""Loading the desired state: one file or a directory of `*.yaml`, every problem at once.

Operators split a large lab over several files (one per team, one for the site), so a
directory is read in sorted order: exactly one file holds `site:`, the `boxes:` lists are
concatenated. Validation runs on each piece with the line map of its own file, so that every
problem comes out as `file:line: field.path: problem` — all of them in one run, not the first
one per commit-push-wait cycle.

Relative `site.tftp_root` / `site.backup_root` are made absolute relative to the file that
holds `site:` (contract §5: paths in the desired file are relative to that file).
"""

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from controller.desired.yaml_lines import LoadedYaml, YamlProblem, load_yaml
from controller.errors import DesiredStateError
from schema.desired import Box, DesiredState, Site

DEFAULT_DESIRED = Path("desired")
TOP_LEVEL_KEYS = ("site", "boxes")

# What a pattern-constrained field accepts, in words (pydantic would print the regex).
_PATTERN_HINTS = {
    "disks": "a whole-disk name: sd*, hd*, vd*, xvd* or nvme<N>n<N> (e.g. sda, nvme0n1)",
    "image": "an image id or 'latest': letters, digits and ._- (up to 64)",
    "request": "a token: letters, digits and ._:+- (up to 64), e.g. a date or a ticket number",
    "device": "a network device name such as eth0 or ens3",
}


@dataclass(frozen=True)
class LoadedDesired:
    """The validated desired state and the files it came from (sorted)."""

    state: DesiredState
    sources: list[Path]
    site_source: Path


@dataclass(frozen=True)
class _Problem:
    file_index: int
    line: int
    text: str


def _field_path(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a mapping",
    }
    return f"{names.get(type(value), type(value).__name__)} {value!r}"[:80]


def _describe(error: ErrorDetails) -> str:
    """One pydantic error as a sentence an operator understands."""
    kind = error["type"]
    msg = error["msg"]
    value = error.get("input")
    names = [p for p in error["loc"] if isinstance(p, str)]
    if kind == "extra_forbidden":
        return "unknown field (check the spelling; see `testboxctl schema`)"
    if kind == "missing":
        return "required field missing"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        for name in reversed(names):
            if name in _PATTERN_HINTS:
                return f"{value!r} is not {_PATTERN_HINTS[name]}"
        return f"{value!r} has characters that are not allowed here"
    if kind == "string_type" and isinstance(
        value, datetime.date | datetime.datetime | int | float | bool
    ):
        return f"must be a string, got {type(value).__name__} {value!r}: put it in quotes"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of fields, got {_kind_of(value)}"
    if kind == "list_type":
        return f"expected a list, got {_kind_of(value)}"
    if kind == "literal_error":
        return f"{value!r}: {msg[0].lower()}{msg[1:]}"
    return msg


def _validation_problems(
    exc: ValidationError, prefix: tuple[str | int, ...], doc: LoadedYaml, file_index: int, name: str
) -> list[_Problem]:
    problems = []
    for error in exc.errors():
        path = (*prefix, *error["loc"])
        text = _describe(error)
        # A model-level check names its field first ("image: only applies to ..."): point there.
        head, sep, rest = text.partition(": ")
        if sep and (*path, head) in doc.lines:
            path, text = (*path, head), rest
        line = doc.line_of(path)
        problems.append(_Problem(file_index, line, f"{name}:{line}: {_field_path(path)}: {text}"))
    return problems


@dataclass(frozen=True)
class _PlacedBox:
    """One entry of a `boxes:` list, as written, and where it was written."""

    item: Any
    file_index: int
    doc: LoadedYaml
    local_index: int

    def where(self, files: Sequence[Path], field: str) -> tuple[int, str, str]:
        """(line, "file:line", field path) of one field of this box."""
        path = ("boxes", self.local_index, field)
        line = self.doc.line_of(path)
        return line, f"{files[self.file_index]}:{line}", _field_path(path)


def _identity(field: str, value: Any) -> str | None:
    """The value two boxes must not share; compared as the system will use it."""
    if not isinstance(value, str):
        return None
    if field == "mac":
        return value.replace("-", ":").lower()
    if field == "name":
        return value.lower()  # host names are case-insensitive
    return value


def _duplicates(boxes: Sequence[_PlacedBox], files: Sequence[Path]) -> list[_Problem]:
    """Names, IPs and MACs name files and PXE configs: each must be unique across all files.

    Checked on the entries as written, so a duplicate is reported even when the same box has
    another problem too.
    """
    problems = []
    for field in ("name", "ip", "mac"):
        first: dict[str, _PlacedBox] = {}
        for placed in boxes:
            if not isinstance(placed.item, dict):
                continue
            value = _identity(field, placed.item.get(field))
            if value is None:
                continue
            if value in first:
                line, where, path = placed.where(files, field)
                _, where_first, path_first = first[value].where(files, field)
                problems.append(
                    _Problem(
                        placed.file_index,
                        line,
                        f"{where}: {path}: duplicate {field} {placed.item[field]!r} "
                        f"(also {path_first} at {where_first})",
                    )
                )
            else:
                first[value] = placed
    return problems


def _at(index: int, name: str, doc: LoadedYaml, path: tuple[str, ...], text: str) -> _Problem:
    """A problem at `path` of a file (the line map is built only when there is a problem)."""
    line = doc.line_of(path)
    return _Problem(index, line, f"{name}:{line}: {text}")


def _yaml_files(path: Path) -> list[Path]:
    """The files to read: `path` itself, or the visible `*.yaml` files directly in it, sorted."""
    if path.is_dir():
        visible = [p for p in path.iterdir() if not p.name.startswith(".") and p.is_file()]
        # A `.yml` file in a desired directory is almost surely boxes someone expects to count.
        stray = sorted(p for p in visible if p.suffix == ".yml")
        if stray:
            raise DesiredStateError(
                [f"{p}: not read: only *.yaml files are desired state; rename it" for p in stray]
            )
        files = sorted((p for p in visible if p.suffix == ".yaml"), key=lambda p: p.name)
        if not files:
            raise DesiredStateError([f"{path}: no *.yaml files in this directory"])
        return files
    if path.exists():
        return [path]
    hint = " (run from the project directory or give -f FILE)" if path == DEFAULT_DESIRED else ""
    raise DesiredStateError([f"{path}: no such file or directory{hint}"])


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise YamlProblem(0, f"cannot read: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise YamlProblem(line, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _absolute(value: str, base: Path) -> str:
    return os.path.normpath(os.path.join(base.absolute(), os.path.expanduser(value)))


def load_desired(path: Path | None = None) -> LoadedDesired:
    """Load and validate the desired state; raise DesiredStateError with every problem."""
    files = _yaml_files(DEFAULT_DESIRED if path is None else Path(path))
    problems: list[_Problem] = []
    site: tuple[int, LoadedYaml, Any] | None = None
    # (file index, document, box data) for every box entry, in file order.
    box_docs: list[tuple[int, LoadedYaml, list[Any]]] = []

    unreadable = False  # a file that could not be parsed might have held site:
    for index, file in enumerate(files):
        name = str(file)
        try:
            doc = load_yaml(_read(file))
        except YamlProblem as exc:
            unreadable = True
            problems.append(_Problem(index, exc.line, f"{name}:{max(exc.line, 1)}: {exc.message}"))
            continue
        for line, key_path, text in doc.duplicate_keys:
            problems.append(
                _Problem(index, line, f"{name}:{line}: {_field_path(key_path)}: {text}")
            )
        if doc.data is None:
            unreadable = True
            problems.append(
                _Problem(index, 1, f"{name}:1: empty file: expected a mapping with site: / boxes:")
            )
            continue
        if not isinstance(doc.data, dict):
            unreadable = True
            problems.append(
                _Problem(
                    index,
                    doc.line_of(()),
                    f"{name}:{doc.line_of(())}: (top level): expected a mapping with site: / "
                    f"boxes:, got a {type(doc.data).__name__}",
                )
            )
            continue
        for key, value in doc.data.items():
            where = (key,) if isinstance(key, str) else ()
            if key == "site":
                if site is not None:
                    first = f"{files[site[0]]}:{site[1].line_of(('site',))}"
                    problems.append(
                        _at(
                            index,
                            name,
                            doc,
                            where,
                            f"site: given twice (first in {first}); exactly one file holds site:",
                        )
                    )
                else:
                    site = (index, doc, value)
            elif key == "boxes":
                if value is None:
                    continue  # `boxes:` with nothing under it: no boxes in this file
                if not isinstance(value, list):
                    problems.append(_at(index, name, doc, where, "boxes: must be a list of boxes"))
                else:
                    box_docs.append((index, doc, value))
            else:
                problems.append(
                    _at(
                        index,
                        name,
                        doc,
                        where,
                        f"{key}: unknown top-level key (expected site, boxes)",
                    )
                )

    validated_site: Site | None = None
    if site is None:
        if not unreadable:
            problems.append(
                _Problem(0, 1, f"{files[0]}:1: site: no site: section in any of the desired files")
            )
    else:
        s_index, s_doc, s_data = site
        try:
            validated_site = Site.model_validate(s_data)
        except ValidationError as exc:
            problems += _validation_problems(exc, ("site",), s_doc, s_index, str(files[s_index]))

    boxes: list[Box] = []
    placed: list[_PlacedBox] = []
    for index, doc, items in box_docs:
        for local, item in enumerate(items):
            placed.append(_PlacedBox(item, index, doc, local))
            try:
                boxes.append(Box.model_validate(item))
            except ValidationError as exc:
                problems += _validation_problems(
                    exc, ("boxes", local), doc, index, str(files[index])
                )
    problems += _duplicates(placed, files)

    if problems or validated_site is None:
        problems.sort(key=lambda p: (p.file_index, p.line))
        raise DesiredStateError([p.text for p in problems])

    assert site is not None
    site_file = files[site[0]]
    base = site_file.parent
    validated_site = validated_site.model_copy(
        update={
            "tftp_root": _absolute(validated_site.tftp_root, base),
            "backup_root": _absolute(validated_site.backup_root, base),
        }
    )
    state = DesiredState.model_validate({"site": validated_site, "boxes": boxes})
    return LoadedDesired(state=state, sources=files, site_source=site_file)
