"""Loading desired state: files and directories, paths relative to the file, precise problems."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from controller.desired.load import load_desired
from controller.desired.yaml_lines import load_yaml
from controller.errors import DesiredStateError
from schema.desired import Box
from schema.types import ACTIONS
from tests.sample_site import site_yaml

SITE = site_yaml(tftp_root="shares/tftp", backup_root="/srv/backup")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(DesiredStateError) as caught:
        load_desired(path)
    return caught.value.problems


def test_share_paths_are_relative_to_the_file_holding_site(tmp_path: Path) -> None:
    file = write(tmp_path / "conf" / "lab.yaml", SITE + "boxes: []\n")
    loaded = load_desired(file)
    assert loaded.state.site.tftp_root == str(tmp_path / "conf" / "shares" / "tftp")
    assert loaded.state.site.backup_root == "/srv/backup"
    assert loaded.sources == [file]
    assert loaded.site_source == file


def test_directory_is_read_sorted_and_boxes_concatenated(tmp_path: Path) -> None:
    write(tmp_path / "b-team.yaml", "boxes:\n  - {name: tb-b, ip: 10.0.0.2}\n")
    write(tmp_path / "a-team.yaml", "boxes:\n  - {name: tb-a, ip: 10.0.0.1}\n")
    write(tmp_path / "site" / "ignored.yaml", "not: read\n")  # subdirectories are not read
    write(tmp_path / "z-site.yaml", SITE)
    write(tmp_path / "README.md", "not yaml at all: [\n")
    write(tmp_path / ".#z-site.yaml", "editor lock: [\n")
    loaded = load_desired(tmp_path)
    assert [b.name for b in loaded.state.boxes] == ["tb-a", "tb-b"]
    assert [p.name for p in loaded.sources] == ["a-team.yaml", "b-team.yaml", "z-site.yaml"]
    assert loaded.state.site.tftp_root == str(tmp_path / "shares" / "tftp")


def test_default_is_desired_directory_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "desired" / "lab.yaml", SITE)
    monkeypatch.chdir(tmp_path)
    assert load_desired(None).sources == [Path("desired/lab.yaml")]


def test_a_yml_file_in_the_directory_is_not_silently_ignored(tmp_path: Path) -> None:
    write(tmp_path / "site.yaml", SITE)
    write(tmp_path / "team.yml", "boxes:\n  - {name: tb-a, ip: 10.0.0.1}\n")
    assert problems_of(tmp_path) == [
        f"{tmp_path}/team.yml: not read: only *.yaml files are desired state; rename it"
    ]


def test_empty_boxes_section_means_no_boxes(tmp_path: Path) -> None:
    assert load_desired(write(tmp_path / "x.yaml", SITE + "boxes:\n")).state.boxes == []


def test_yaml_1_2_scalars_unquoted_mac_and_date_stay_strings(tmp_path: Path) -> None:
    file = write(
        tmp_path / "x.yaml",
        SITE + "boxes:\n  - {name: tb1, ip: 10.0.0.1, mac: 52:54:00:12:34:56, action: backup,"
        " request: 2026-11-25}\n",
    )
    box = load_desired(file).state.boxes[0]
    assert box.mac == "52:54:00:12:34:56"
    assert box.request == "2026-11-25"


def test_merge_keys_may_override_without_being_duplicates(tmp_path: Path) -> None:
    file = write(
        tmp_path / "x.yaml",
        SITE
        + "boxes:\n  - &w10 {name: tb1, ip: 10.0.0.1, action: backup}\n"
        + "  - {<<: *w10, name: tb2, ip: 10.0.0.2}\n",
    )
    assert [(b.name, b.action) for b in load_desired(file).state.boxes] == [
        ("tb1", "backup"),
        ("tb2", "backup"),
    ]


def test_problems_in_several_files_are_all_reported_in_file_order(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", SITE + "boxes:\n  - {name: tb1, ip: 10.0.0.1, action: fly}\n")
    write(tmp_path / "b.yaml", "boxes:\n  - {name: tb1, ip: 10.0.0.300}\n")
    problems = problems_of(tmp_path)
    assert problems == [
        f"{tmp_path}/a.yaml:10: boxes[0].action: 'fly': input should be 'none', 'backup', "
        "'backup-again', 'restore', 'refresh-info' or 'rescue'",
        f"{tmp_path}/b.yaml:2: boxes[0].ip: not a dotted-decimal IPv4 address: '10.0.0.300'",
        f"{tmp_path}/b.yaml:2: boxes[0].name: duplicate name 'tb1' "
        f"(also boxes[0].name at {tmp_path}/a.yaml:10)",
    ]


def test_missing_field_points_at_its_parent(tmp_path: Path) -> None:
    file = write(tmp_path / "x.yaml", SITE.replace("    nfs_server: 10.0.2.2\n", ""))
    assert problems_of(file) == [f"{file}:4: site.maintenance.nfs_server: required field missing"]


def test_unknown_top_level_key_and_wrong_boxes_type(tmp_path: Path) -> None:
    file = write(tmp_path / "x.yaml", SITE + "box:\n  - {}\nboxes: {tb1: 10.0.0.1}\n")
    assert problems_of(file) == [
        f"{file}:9: box: unknown top-level key (expected site, boxes)",
        f"{file}:11: boxes: must be a list of boxes",
    ]


def test_nonexistent_path_and_directory_without_yaml(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml") == [
        f"{tmp_path}/nope.yaml: no such file or directory"
    ]
    assert problems_of(tmp_path) == [f"{tmp_path}: no *.yaml files in this directory"]


def test_line_map_points_at_keys_and_list_items() -> None:
    doc = load_yaml("a:\n  b:\n    - x\n    - {c: 1}\n")
    assert doc.lines[("a",)] == 1
    assert doc.lines[("a", "b")] == 2
    assert doc.lines[("a", "b", 1)] == 4
    assert doc.line_of(("a", "b", 1, "c")) == 4
    assert doc.line_of(("a", "missing")) == 1


def test_duplicate_keys_are_found_at_every_depth() -> None:
    doc = load_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n")
    assert [(line, path) for line, path, _ in doc.duplicate_keys] == [(4, ("b", "c")), (5, ("a",))]


BOX_FIELDS = st.fixed_dictionaries(
    {"action": st.sampled_from(ACTIONS)},
    optional={
        "disks": st.lists(
            st.sampled_from(["sda", "sdb", "vda", "nvme0n1"]), min_size=1, unique=True
        ),
        "request": st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:+-]{0,20}", fullmatch=True),
        "max_attempts": st.integers(1, 100),
        "mac": st.binary(min_size=6, max_size=6).map(lambda b: b.hex(":")),
    },
)


@settings(max_examples=40, deadline=None)
@given(
    boxes=st.lists(BOX_FIELDS, max_size=12),
    bad=st.sampled_from(["ip", "name", "action", "disks"]),
    victim=st.integers(0, 11),
    data=st.data(),
)
def test_block_style_file_round_trips_and_a_bad_value_is_reported_at_its_line(
    tmp_path_factory: pytest.TempPathFactory,
    boxes: list[dict[str, Any]],
    bad: str,
    victim: int,
    data: st.DataObject,
) -> None:
    macs = [b["mac"] for b in boxes if "mac" in b]
    assume(len(set(macs)) == len(macs))
    lines = [*SITE.splitlines(), "boxes:"]
    where: list[dict[str, int]] = []
    entries = []
    for i, fields in enumerate(boxes):
        entry = {"name": f"tb-{i}", "ip": f"10.9.{i // 250}.{i % 250 + 1}", **fields}
        if entry["action"] == "restore" and data.draw(st.booleans()):
            entry["image"] = "latest"
        entries.append(entry)
        where.append({})
        for n, (key, value) in enumerate(entry.items()):
            where[-1][key] = len(lines) + 1
            text = yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()
            if load_yaml(f"v: {text}").data["v"] != value:
                # PyYAML writes YAML 1.1 and leaves `08` plain; the loader reads YAML 1.2,
                # where that is a number (and says to quote it). Quote what would not survive.
                text = json.dumps(value)
            lines.append(("  - " if n == 0 else "    ") + f"{key}: {text}")
    directory = tmp_path_factory.mktemp("roundtrip")
    good = write(directory / "good.yaml", "\n".join(lines) + "\n")
    state = load_desired(good).state
    assert state.boxes == [Box.model_validate(entry) for entry in entries]

    if not boxes:
        return
    i = victim % len(boxes)
    value = {"ip": "10.9.0.256", "name": "tb_bad", "action": "explode", "disks": "[sda1]"}[bad]
    if bad not in where[i]:  # only disks may be absent: add it as the box's last line
        assert bad == "disks"
        where[i][bad] = max(where[i].values()) + 1
        lines.insert(where[i][bad] - 1, f"    disks: {value}")
        for later in where[i + 1 :]:
            for key in later:
                later[key] += 1
    else:
        lines[where[i][bad] - 1] = lines[where[i][bad] - 1].split(":")[0] + f": {value}"
    broken = write(directory / "bad.yaml", "\n".join(lines) + "\n")
    problems = problems_of(broken)
    field = f"boxes[{i}].{bad}" + ("[0]" if bad == "disks" else "")
    assert f"{broken}:{where[i][bad]}: {field}: " in "\n".join(problems), problems
