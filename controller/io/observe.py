"""Reads the two shares into `schema.observed.Observed`, where all the planner's facts come from.

Rules (contract §2, §9, issues 2 and 8):
- the markers are checked first (`testbox-backup` in the backup root, `pxelinux.cfg/default`
  on the TFTP share); a share without them is not mounted, and acting on an empty mount point
  would disarm the whole lab, so that is a ShareError before anything else happens;
- every read goes through `onbox.shareio.Share`: no symbolic link below a share root is ever
  followed, only regular files are opened (a FIFO cannot hang a run), every read is bounded;
- whatever a box can write is hostile input: a link, a FIFO, a directory where a file belongs,
  malformed or oversized JSON of any shape is a *problem of that box* (one line naming the
  path), never a stop for the whole lab and never a traceback. Content behind a link is never
  read, so it can never reach a plan diff or a saved plan;
- a share root or `pxelinux.cfg/` that cannot be listed is an error, never "empty";
- it is fast: one listing per directory, one bounded read per file, plain `json` and a few
  field checks instead of pydantic validation; image listing goes through the image store,
  and only for boxes that have an `images/` directory or a legacy `*.gz` file.
"""

from datetime import UTC, datetime
from pathlib import Path

from controller.core.fingerprint import fingerprint
from controller.errors import ShareError
from controller.io.shares import Shares
from onbox.errors import OnboxError
from onbox.shareio import (
    RECORD_LIMIT,
    TEMP_SUFFIX,
    TEXT_LIMIT,
    Entry,
    Share,
    ShareAccessError,
    ShareMissing,
)
from onbox.store import open_store
from onbox.store.base import ImageStore
from onbox.store.legacy import legacy_disk
from schema.image import ImageInfo
from schema.layout import (
    ARM_RECORD,
    BACKUP_MARKER,
    DEFAULT_CONFIG,
    DISK_LIST,
    GLOBAL_LOG,
    IMAGES_DIR,
    POWER_FILE,
    PXE_CFG_DIR,
    REQUEST_FILE,
    RESULTS_DIR,
    parse_managed_header,
)
from schema.observed import Observed, ObservedBox, ObservedConfig, ObservedResult
from schema.types import is_ipv4

_OUTCOMES = ("success", "failure", "rescue-ready")
# Names in a box directory that must be regular files or directories as the layout says.
_OWN_FILES = (REQUEST_FILE, DISK_LIST, ARM_RECORD, POWER_FILE, RESULTS_DIR, IMAGES_DIR)
_KIND_WORDS = {
    "symlink": "is a symbolic link (never followed)",
    "dir": "is a directory where a file belongs",
    "other": "is not a regular file (FIFO, socket or device)",
    "file": "is a file where a directory belongs",
}


def _open_root(path: str, what: str) -> Share:
    try:
        return Share(path)
    except ShareMissing:
        raise ShareError(f"{path}: {what} missing (share not mounted?); nothing changed") from None
    except ShareAccessError as exc:
        raise ShareError(f"{exc.path}: cannot read: {exc.problem}") from None


def _require_file(share: Share, rel: str, what: str) -> None:
    kind = share.kind(rel)
    if kind == "missing":
        raise ShareError(f"{share.path(rel)}: {what} missing (share not mounted?); nothing changed")
    if kind != "file":
        raise ShareError(f"{share.path(rel)}: {what} {_KIND_WORDS[kind]}; nothing changed")


def _check(tftp: Share, backup: Share) -> None:
    _require_file(backup, BACKUP_MARKER, f"backup share marker {BACKUP_MARKER}")
    cfg_kind = tftp.kind(PXE_CFG_DIR)
    if cfg_kind not in ("dir", "missing"):
        raise ShareError(f"{tftp.path(PXE_CFG_DIR)}: {_KIND_WORDS[cfg_kind]}; nothing changed")
    _require_file(
        tftp, f"{PXE_CFG_DIR}/{DEFAULT_CONFIG}", f"TFTP share marker {PXE_CFG_DIR}/{DEFAULT_CONFIG}"
    )


def check_markers(shares: Shares) -> None:
    """Refuse to go on unless both shares look mounted. Reads only; changes nothing."""
    with (
        _open_root(str(shares.backup), "backup share") as backup,
        _open_root(str(shares.tftp), "TFTP share") as tftp,
    ):
        _check(tftp, backup)


def check_backup_marker(backup: Path) -> None:
    """The backup share's marker alone, for the commands that use only that share (`images`,
    `verify`, `gc`, `import-legacy`): the same check as `check_markers`, in one place."""
    with _open_root(str(backup), "backup share") as share:
        _require_file(share, BACKUP_MARKER, f"backup share marker {BACKUP_MARKER}")


def _list(share: Share, rel: str = "") -> list[Entry]:
    """A directory the run cannot do without (a share root, pxelinux.cfg/): errors stop it."""
    try:
        return share.entries(rel, stat=False)
    except ShareAccessError as exc:
        raise ShareError(f"{exc.path}: cannot read: {exc.problem}") from None


def _is_ipv4(name: str) -> bool:
    """Canonical dotted decimal (the seed's box directory names): schema.types' one rule."""
    return is_ipv4(name)


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def observe_configs(tftp: Share) -> tuple[dict[str, ObservedConfig], dict[str, float]]:
    """(configs by name, temp files with their mtimes) of `pxelinux.cfg/`."""
    configs: dict[str, ObservedConfig] = {}
    temps: dict[str, float] = {}
    for entry in _list(tftp, PXE_CFG_DIR):
        # `default` is the share's marker; dot files are temp files of an atomic write.
        if entry.name == DEFAULT_CONFIG:
            continue
        if entry.name.startswith("."):
            if entry.kind == "file" and _is_temp(entry.name):
                _note_temp(tftp, f"{PXE_CFG_DIR}/{entry.name}", entry.name, temps)
            continue
        rel = f"{PXE_CFG_DIR}/{entry.name}"
        problem: str | None = None
        content = ""
        if entry.kind == "dir":
            continue  # PXELINUX never loads a directory; not a config
        if entry.kind != "file":
            problem = _KIND_WORDS[entry.kind]
        else:
            try:
                content = tftp.read_bytes(rel, TEXT_LIMIT).decode("utf-8", errors="replace")
            except ShareAccessError as exc:
                problem = exc.problem
        if problem is not None:
            # Never read (a link's target may be any host file): foreign, shown by its problem.
            configs[entry.name] = ObservedConfig.model_construct(
                name=entry.name, managed=False, request_id=None, content="", problem=problem
            )
            continue
        managed, rid = parse_managed_header(content)
        configs[entry.name] = ObservedConfig.model_construct(
            name=entry.name, managed=managed, request_id=rid, content=content, problem=None
        )
    return configs, temps


def _note_temp(share: Share, rel: str, name: str, temps: dict[str, float]) -> None:
    """A temp file's mtime (listings carry none: one lstat for the rare temp file)."""
    st = share.lstat(rel)
    if st is not None:
        temps[name] = st.st_mtime


def _parse_time(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{field} {value!r} has no time zone")
    return parsed


def _optional_str(data: dict[str, object], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{field} is a {type(value).__name__}, not a string")
    return value


def parse_result(data: object) -> ObservedResult:
    """The fields of a result the controller acts on, checked by hand (fast); ValueError if bad."""
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an object")
    rid, outcome, attempt = data.get("request_id"), data.get("outcome"), data.get("attempt")
    if not isinstance(rid, str):
        raise ValueError("request_id missing or not a string")
    if outcome not in _OUTCOMES:
        raise ValueError(f"outcome {outcome!r} is not one of {', '.join(_OUTCOMES)}")
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        raise ValueError(f"attempt {attempt!r} is not a non-negative integer")
    return ObservedResult.model_construct(
        request_id=rid,
        outcome=outcome,
        attempt=attempt,
        finished=_parse_time(data.get("finished"), "finished"),
        error=_optional_str(data, "error"),
        image_id=_optional_str(data, "image_id"),
    )


def _read_record(box: Share, rel: str, label: str, problems: list[str]) -> object | None:
    try:
        return box.read_json(rel, RECORD_LIMIT)
    except ShareAccessError as exc:
        problems.append(f"{label}: {exc.problem}")
        return None


def _observe_results(box: Share, ip: str, problems: list[str]) -> dict[str, ObservedResult]:
    results: dict[str, ObservedResult] = {}
    try:
        folder = box.sub(RESULTS_DIR)
        entries = folder.entries(stat=False)
    except ShareAccessError as exc:
        problems.append(f"{ip}/{RESULTS_DIR}: {exc.problem}")
        return results
    with folder:
        for entry in entries:
            _observe_result(folder, ip, entry, problems, results)
    return results


def _observe_result(
    folder: Share,
    ip: str,
    entry: Entry,
    problems: list[str],
    results: dict[str, ObservedResult],
) -> None:
    name = entry.name
    if not name.endswith(".json") or name.startswith("."):
        return
    label = f"{ip}/{RESULTS_DIR}/{name}"
    if entry.kind != "file":
        problems.append(f"{label}: {_KIND_WORDS[entry.kind]}")
        return
    data = _read_record(folder, name, label, problems)
    if data is None:
        return
    try:
        result = parse_result(data)
    except ValueError as exc:
        problems.append(f"{label}: not a valid result file ({exc})")
        return
    if f"{result.request_id}.json" != name:
        problems.append(f"{label}: records request {result.request_id!r}, not its name")
    else:
        results[result.request_id] = result


def _observe_arm_record(box: Share, ip: str, problems: list[str]) -> tuple[str | None, int]:
    label = f"{ip}/{ARM_RECORD}"
    data = _read_record(box, ARM_RECORD, label, problems)
    if data is None:
        return None, 0
    if isinstance(data, dict):
        rid, arms = data.get("request_id"), data.get("arms")
        valid = isinstance(arms, int) and not isinstance(arms, bool) and arms >= 0
        if isinstance(rid, str) and valid:
            return rid, int(arms)  # type: ignore[arg-type]
    problems.append(f"{label}: not a valid arm record (request_id, arms)")
    return None, 0


def _read_owned_text(box: Share, rel: str, label: str, problems: list[str]) -> str | None:
    try:
        return box.read_text(rel, TEXT_LIMIT)
    except ShareAccessError as exc:
        problems.append(f"{label}: {exc.problem}")
        return None


def _list_images(
    store: ImageStore, ip: str, names: set[str], problems: list[str]
) -> list[ImageInfo]:
    """The box's usable images; damaged ones are left out and named in `problems`.

    `names`: `images` and the legacy image names of the box directory as observe just listed
    it (the only names of it the store looks at), so the store does not list it again.
    """
    try:
        listing = store.scan(ip, names=names)
    # The image store reads records a box wrote and reports damage itself; anything it still
    # raises is a problem of this box too, never a stop for the lab.
    except OnboxError as exc:
        problems.append(f"{ip}/{IMAGES_DIR}: cannot list images: {exc.message}")
        return []
    except (OSError, ValueError) as exc:
        problems.append(f"{ip}/{IMAGES_DIR}: cannot list images: {exc}")
        return []
    problems.extend(listing.problems)
    return listing.images


def observe_box(backup: Share, ip: str, store: ImageStore | None) -> ObservedBox:
    problems: list[str] = []
    try:
        box = backup.sub(ip)
        entries = box.entries(stat=False)
    except ShareAccessError as exc:
        return _broken_box(ip, f"{ip}: {exc.problem}")
    with box:
        files: set[str] = set()
        nonfiles: set[str] = set()
        temps: dict[str, float] = {}
        request_json = disk_list = power_json = None
        has_images = has_results = has_arms = False
        legacy: set[str] = set()  # legacy image files (`sda.gz`): the store looks at those
        for entry in entries:
            name, kind = entry.name, entry.kind
            if kind != "file":
                nonfiles.add(name)
                if name == RESULTS_DIR and kind == "dir":
                    has_results = True
                elif name == IMAGES_DIR and kind == "dir":
                    has_images = True
                elif name in _OWN_FILES or (legacy_disk(name) is not None):
                    problems.append(f"{ip}/{name}: {_KIND_WORDS[kind]}")
                continue
            files.add(name)
            if name == REQUEST_FILE:
                request_json = _read_owned_text(box, name, f"{ip}/{name}", problems)
            elif name == DISK_LIST:
                disk_list = _read_owned_text(box, name, f"{ip}/{name}", problems)
            elif name == POWER_FILE:
                power_json = _read_owned_text(box, name, f"{ip}/{name}", problems)
            elif name == ARM_RECORD:
                has_arms = True
            elif name in (RESULTS_DIR, IMAGES_DIR):
                problems.append(f"{ip}/{name}: {_KIND_WORDS['file']}")
            elif _is_temp(name):
                _note_temp(box, name, name, temps)
            elif legacy_disk(name) is not None:
                legacy.add(name)
        results = _observe_results(box, ip, problems) if has_results else {}
        arm_request, arms = _observe_arm_record(box, ip, problems) if has_arms else (None, 0)
    images: list[ImageInfo] = []
    image_problems: list[str] = []
    # A box whose directory already shows damage is not handed to the image store at all.
    if (has_images or legacy) and not problems and store is not None:
        # Of the listing, only `images` and legacy image names matter to the store (it looks
        # at nothing else of `names`): those alone are handed over, not every name again.
        names = legacy | {IMAGES_DIR} if has_images else legacy
        images = _list_images(store, ip, names, image_problems)
    return ObservedBox.model_construct(
        ip=ip,
        files=frozenset(files),
        nonfiles=frozenset(nonfiles),
        request_json=request_json,
        disk_list=disk_list,
        power_json=power_json,
        results=results,
        images=images,
        arm_request=arm_request,
        arms=arms,
        problems=problems,
        image_problems=image_problems,
        temp_files=temps,
    )


def _broken_box(ip: str, problem: str) -> ObservedBox:
    """A box directory that cannot be entered (a link, a FIFO, a file): nothing in it is read."""
    return ObservedBox.model_construct(
        ip=ip,
        files=frozenset(),
        nonfiles=frozenset(),
        request_json=None,
        disk_list=None,
        power_json=None,
        results={},
        images=[],
        arm_request=None,
        arms=0,
        problems=[problem],
        image_problems=[],
        temp_files={},
    )


def observe(shares: Shares, *, now: datetime | None = None) -> Observed:
    """Check the markers, then read both shares. Raises ShareError; never writes."""
    with _open_root(str(shares.backup), "backup share") as backup:
        with _open_root(str(shares.tftp), "TFTP share") as tftp:
            _check(tftp, backup)
            configs, config_temps = observe_configs(tftp)
        boxes: dict[str, ObservedBox] = {}
        lab_problems: list[str] = []
        store: ImageStore | None = None
        try:
            store = open_store(shares.backup)
        except OnboxError as exc:
            # The store is shared by all boxes: without it no box's images are listed (so none
            # is pruned), but requests are still armed and results still read.
            lab_problems.append(f"store: {exc.message}; images not listed, nothing pruned")
        for entry in _list(backup):
            if _is_ipv4(entry.name):
                if entry.kind == "dir":
                    boxes[entry.name] = observe_box(backup, entry.name, store)
                else:
                    boxes[entry.name] = _broken_box(
                        entry.name, f"{entry.name}: {_KIND_WORDS[entry.kind]}"
                    )
            elif entry.name == GLOBAL_LOG and entry.kind != "file":
                lab_problems.append(
                    f"{GLOBAL_LOG}: {_KIND_WORDS[entry.kind]}; changes are not logged there"
                )
    observed = Observed.model_construct(
        tftp_root=str(shares.tftp),
        backup_root=str(shares.backup),
        observed_at=now or datetime.now(UTC),
        configs=dict(sorted(configs.items())),
        boxes=dict(sorted(boxes.items())),
        problems=lab_problems,
        config_temp_files=config_temps,
        fingerprint="",
    )
    return observed.model_copy(update={"fingerprint": fingerprint(observed)})


__all__ = ["check_markers", "observe", "observe_box", "observe_configs", "parse_result"]
