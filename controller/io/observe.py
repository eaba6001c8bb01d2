"""Reads the two shares into `schema.observed.Observed`, where all the planner's facts come from.

Rules (SPEC §2, issue 2):
- the markers are checked first (`testbox-backup` in the backup root, `pxelinux.cfg/default`
  on the TFTP share); a share without them is not mounted, and acting on an empty mount point
  would disarm the whole lab, so that is a ShareError before anything else happens;
- a path that exists but cannot be read is an error, never "empty";
- it is fast: one `os.scandir` per directory, plain `json` for results, models built with
  `model_construct`; image listing goes through the image store, and only for boxes that have
  an `images/` directory or a legacy `*.gz` file.
"""

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from controller.core.fingerprint import fingerprint
from controller.errors import ShareError
from controller.io.shares import Shares
from onbox.errors import OnboxError
from onbox.store import open_store
from onbox.store.base import ImageStore
from onbox.store.legacy import legacy_disk
from schema.layout import (
    BACKUP_MARKER,
    DEFAULT_CONFIG,
    DISK_LIST,
    IMAGES_DIR,
    POWER_FILE,
    PXE_CFG_DIR,
    REQUEST_FILE,
    RESULTS_DIR,
    parse_managed_header,
)
from schema.observed import Observed, ObservedBox, ObservedConfig, ObservedResult

_OUTCOMES = ("success", "failure", "rescue-ready")


def _stat_error(path: Path | str, exc: OSError) -> ShareError:
    return ShareError(f"{path}: cannot read: {exc.strerror or exc}")


def _require(path: Path, what: str, *, directory: bool) -> None:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ShareError(f"{path}: {what} missing (share not mounted?); nothing changed") from None
    except OSError as exc:
        raise _stat_error(path, exc) from None
    if stat.S_ISDIR(mode) != directory:
        raise ShareError(f"{path}: {what} is not a {'directory' if directory else 'file'}")


def check_markers(shares: Shares) -> None:
    """Refuse to go on unless both shares look mounted. Reads only; changes nothing."""
    _require(shares.backup, "backup share", directory=True)
    _require(shares.backup / BACKUP_MARKER, f"backup share marker {BACKUP_MARKER}", directory=False)
    _require(shares.tftp, "TFTP share", directory=True)
    _require(
        shares.tftp / PXE_CFG_DIR / DEFAULT_CONFIG,
        f"TFTP share marker {PXE_CFG_DIR}/{DEFAULT_CONFIG}",
        directory=False,
    )


def _scandir(path: Path | str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except OSError as exc:
        raise _stat_error(path, exc) from None


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError as exc:
        raise _stat_error(entry.path, exc) from None


def _read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        raise _stat_error(path, exc) from None


def _is_ipv4(name: str) -> bool:
    """Canonical dotted decimal (the seed's box directory names), without ipaddress' cost."""
    parts = name.split(".")
    return len(parts) == 4 and all(
        p.isdigit() and len(p) <= 3 and int(p) <= 255 and str(int(p)) == p for p in parts
    )


def observe_configs(tftp: Path) -> dict[str, ObservedConfig]:
    configs: dict[str, ObservedConfig] = {}
    for entry in _scandir(tftp / PXE_CFG_DIR):
        # `default` is the share's marker; dot files are temp files of an atomic write.
        if entry.name == DEFAULT_CONFIG or entry.name.startswith(".") or _is_dir(entry):
            continue
        content = _read_text(entry.path)
        managed, rid = parse_managed_header(content)
        configs[entry.name] = ObservedConfig.model_construct(
            name=entry.name, managed=managed, request_id=rid, content=content
        )
    return configs


def _parse_result(path: str, problems: list[str], label: str) -> ObservedResult | None:
    try:
        data = json.loads(_read_text(path))
        rid, outcome, attempt = data["request_id"], data["outcome"], data["attempt"]
        if outcome not in _OUTCOMES or not isinstance(attempt, int) or not isinstance(rid, str):
            raise ValueError("bad outcome, attempt or request_id")
        finished = data.get("finished")
        return ObservedResult.model_construct(
            request_id=rid,
            outcome=outcome,
            attempt=attempt,
            finished=datetime.fromisoformat(finished) if isinstance(finished, str) else None,
            error=data.get("error"),
            image_id=data.get("image_id"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        problems.append(f"{label}: not a valid result file ({exc})")
        return None


def observe_box(backup: str, ip: str, store: ImageStore) -> ObservedBox:
    # Plain strings, not pathlib: this runs once per box, and Path joins cost more than scandir.
    box_dir = os.path.join(backup, ip)
    files: set[str] = set()
    dirs: set[str] = set()
    request_json = disk_list = power_json = None
    has_legacy = False
    for entry in _scandir(box_dir):
        if _is_dir(entry):
            dirs.add(entry.name)
            continue
        files.add(entry.name)
        if entry.name == REQUEST_FILE:
            request_json = _read_text(entry.path)
        elif entry.name == DISK_LIST:
            disk_list = _read_text(entry.path)
        elif entry.name == POWER_FILE:
            power_json = _read_text(entry.path)
        elif legacy_disk(entry.name) is not None:
            has_legacy = True
    results: dict[str, ObservedResult] = {}
    problems: list[str] = []
    if RESULTS_DIR in dirs:
        for entry in _scandir(os.path.join(box_dir, RESULTS_DIR)):
            if not entry.name.endswith(".json") or entry.name.startswith("."):
                continue
            label = f"{ip}/{RESULTS_DIR}/{entry.name}"
            result = _parse_result(entry.path, problems, label)
            if result is not None:
                if f"{result.request_id}.json" != entry.name:
                    problems.append(f"{label}: records request {result.request_id}")
                else:
                    results[result.request_id] = result
    images = []
    if IMAGES_DIR in dirs or has_legacy:
        try:
            images = store.list_images(ip)
        except OnboxError as exc:
            raise ShareError(f"{box_dir}: cannot list images: {exc.message}") from None
    return ObservedBox.model_construct(
        ip=ip,
        files=frozenset(files),
        request_json=request_json,
        disk_list=disk_list,
        power_json=power_json,
        results=results,
        images=images,
        problems=problems,
    )


def observe(shares: Shares, *, now: datetime | None = None) -> Observed:
    """Check the markers, then read both shares. Raises ShareError; never writes."""
    check_markers(shares)
    configs = observe_configs(shares.tftp)
    store = open_store(shares.backup)
    boxes: dict[str, ObservedBox] = {}
    backup = str(shares.backup)
    for entry in _scandir(backup):
        if _is_ipv4(entry.name) and _is_dir(entry):
            boxes[entry.name] = observe_box(backup, entry.name, store)
    observed = Observed.model_construct(
        tftp_root=str(shares.tftp),
        backup_root=str(shares.backup),
        observed_at=now or datetime.now(UTC),
        configs=dict(sorted(configs.items())),
        boxes=dict(sorted(boxes.items())),
        fingerprint="",
    )
    return observed.model_copy(update={"fingerprint": fingerprint(observed)})
