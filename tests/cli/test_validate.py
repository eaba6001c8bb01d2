"""`testboxctl validate` through the real entry point: bad desired files are refused precisely.

The table of bad files lives in tests/data/bad/: each file (or directory of files) starts with
`# expect: <text the reason must name>` (the field path, or the problem for whole-file cases)
and marks the offending line with `# <-` (line 1 when unmarked). For every one, the real
`testboxctl` must exit 1, name `file:line` and the field, print no traceback — and commands
that would change the shares must leave both trees byte-identical.
"""

import json
from pathlib import Path

import pytest

from tests.cli.runner import run_cli

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "data" / "bad"

SPEC_EXAMPLE = """\
site:
  tftp_root: /mnt/testbox-tftp
  backup_root: /mnt/testbox-backup
  maintenance:
    kernel: maintenance-boot/vmlinuz-amd64
    initrd: maintenance-boot/initrd.img-amd64
    nfs_server: 10.165.98.101
    nfsroot: /export/testbox-nfsroot
    network: {mode: static, gateway: 10.165.98.1, netmask: 255.255.254.0, device: eth0}
  defaults: {disks: [sda], retention: {keep_last: 3}, max_attempts: 3}
boxes:
  - {name: tb-w10-01, ip: 10.165.98.220, action: backup}
  - {name: tb-lnx-07, ip: 10.165.98.221, disks: [sda, sdb], action: restore, image: latest, request: "2026-11-25"}
"""  # noqa: E501  (contract §6, verbatim)


def _expectation(case: Path) -> tuple[Path, int, str]:
    """(file, line, text) the error must name, read from the case's own comments."""
    files = sorted(case.glob("*.yaml")) if case.is_dir() else [case]
    expect = ""
    for file in files:
        lines = file.read_bytes().decode("utf-8", errors="replace").splitlines()
        expect = lines[0].removeprefix("# expect: ").strip() if lines else expect
        for number, line in enumerate(lines, start=1):
            if line.rstrip().endswith("# <-") or "# <-" in line:
                return file, number, expect
    return files[-1], 1, expect


CASES = sorted(p for p in BAD.iterdir() if p.suffix == ".yaml" or p.is_dir())


def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab") / "lab"
    assert run_cli("init", "--lab", root).returncode == 0
    return root


def test_the_table_covers_every_kind_of_bad_value() -> None:
    names = {p.stem for p in CASES}
    for kind in (
        "ip-out-of-range",
        "hostname-underscore",
        "disk-partition",
        "mac-short",
        "image-on-backup",
        "kernel-dotdot",
        "kernel-absolute",
        "initrd-newline-append",
        "kernel-newline-label",
        "nfsroot-newline-kernel",
        "extra-arg-space",
        "extra-arg-reserved-root",
        "duplicate-name",
        "duplicate-ip",
        "duplicate-mac",
        "duplicate-key",
        "not-yaml",
        "empty",
        "unknown-field-box",
        "two-sites",
    ):
        assert kind in names


@pytest.mark.parametrize("case", CASES, ids=[p.stem for p in CASES])
def test_bad_desired_file_is_refused_naming_file_line_and_field(case: Path) -> None:
    file, line, expect = _expectation(case)
    run = run_cli("validate", "-f", case)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    problems = run.stderr.splitlines()
    assert problems, "no reason printed"
    assert all(p.startswith("testboxctl: error: ") for p in problems), problems
    hits = [p for p in problems if f"{file}:{line}: " in p]
    assert hits, f"no problem names {file}:{line}: {problems}"
    assert any(expect in p for p in hits), f"{expect!r} not named in {hits}"


@pytest.mark.parametrize(
    "case", [BAD / "kernel-newline-label.yaml", BAD / "duplicate-key.yaml", BAD / "two-sites"]
)
def test_bad_desired_file_changes_no_share(case: Path, lab: Path) -> None:
    before = (_snapshot(lab / "tftp"), _snapshot(lab / "backup"))
    shares = ("--tftp-root", lab / "tftp", "--backup-root", lab / "backup")
    run = run_cli("pxe-conf", "10.0.2.15", "backup", "-f", case, *shares)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    reconcile = run_cli("reconcile", "-f", case, *shares)
    assert reconcile.returncode == 1 and "Traceback" not in reconcile.stderr
    assert (_snapshot(lab / "tftp"), _snapshot(lab / "backup")) == before


def test_every_problem_is_reported_in_one_run(tmp_path: Path) -> None:
    text = (BAD / "duplicate-ip.yaml").read_text()
    text = text.replace("kernel: maintenance-boot/vmlinuz", "kernel: ../vmlinuz")
    text = text.replace("device: eth0", 'device: "eth0 x"')
    bad = tmp_path / "many.yaml"
    bad.write_text(text)
    run = run_cli("validate", "-f", bad)
    assert run.returncode == 1
    problems = run.stderr.splitlines()
    assert len(problems) == 3, problems
    assert [p.split(": ")[3] for p in problems] == [
        "site.maintenance.kernel",
        "site.maintenance.network.device",
        "boxes[1].ip",
    ]


@pytest.mark.parametrize(
    "source", ["repo-desired-dir", "spec-example", "lab-desired", "split-directory"]
)
def test_valid_desired_states_validate(source: str, tmp_path: Path, lab: Path) -> None:
    if source == "repo-desired-dir":
        run = run_cli("validate", cwd=REPO)  # default -f desired/
    elif source == "spec-example":
        (tmp_path / "site.yaml").write_text(SPEC_EXAMPLE)
        run = run_cli("validate", "-f", tmp_path / "site.yaml")
    elif source == "lab-desired":
        run = run_cli("validate", "-f", lab / "desired.yaml")
    else:
        site, boxes = SPEC_EXAMPLE.split("boxes:\n")
        (tmp_path / "00-site.yaml").write_text(site)
        (tmp_path / "10-team-a.yaml").write_text("boxes:\n" + boxes)
        (tmp_path / "20-team-b.yaml").write_text("boxes:\n  - {name: tb-b-01, ip: 10.165.98.230}\n")
        (tmp_path / "notes.txt").write_text("not read: only *.yaml\n")
        run = run_cli("validate", "-f", tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("valid: ")
    if source == "split-directory":
        assert "3 boxes" in run.stdout


def test_missing_default_directory_says_how_to_fix(tmp_path: Path) -> None:
    run = run_cli("validate", cwd=tmp_path)
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "testboxctl: error: desired: no such file or directory "
        "(run from the project directory or give -f FILE)"
    )


def test_schema_is_json_schema_of_the_desired_state() -> None:
    run = run_cli("schema")
    assert run.returncode == 0
    schema = json.loads(run.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"site", "boxes"}
    assert schema["additionalProperties"] is False


def test_values_are_quoted_verbatim_in_problems(tmp_path: Path) -> None:
    """Nothing in the output layer rewrites what the operator wrote (rich emoji codes, markup)."""
    text = (BAD / "extra-arg-space.yaml").read_text()
    bad = tmp_path / "verbatim.yaml"
    bad.write_text(text.replace('"quiet splash"', '"a:fire:b [bold]c[/bold]"'))
    run = run_cli("validate", "-f", bad)
    assert run.returncode == 1
    assert "'a:fire:b [bold]c[/bold]'" in run.stderr
