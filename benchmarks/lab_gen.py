"""Generates a large lab on disk for the controller benchmark: both shares and a desired file.

The files are what the real writers leave behind, in their formats: managed PXE configs from
`controller.core.render`, `request.json` / `disk-devices.lst` as apply writes them, results as the
on-box service records them (`schema.request.Result`), images as the image store commits them
(`store/chunks/<xx>/<sha256>.zst`, `<ip>/images/<id>/<disk>.manifest.json` + `commit.json`,
serialised by the store's own record models), legacy `sda.gz` files, info files and logs.

Files are written plainly (no fsync): the bytes and the layout are the store's, but generating
10,000 boxes through fsync'ed atomic writes would take many minutes and measure nothing.

Per box (box i, cycling through ten kinds): four in ten have action none (past backups, old
results), two are done backups, one is an armed backup, one an armed restore after a failed
attempt, one a done refresh-info, and one in twenty is a new request not armed yet, so a dry
run has real (5 %) work to show. Every box has 3 images of 1 or 2 disks of 256 MiB.
"""

import hashlib
import json
import random
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import zstandard

from controller.core.boxfiles import disk_list_text, request_json_text
from controller.core.render import render_box_config
from onbox.store.fs import CHUNK_SUFFIX
from onbox.store.records import (
    COMMIT_FILE,
    DEFAULT_CHUNK_SIZE,
    MANIFEST_SUFFIX,
    CommitDisk,
    CommitRecord,
    DiskManifest,
)
from schema.desired import DesiredState, EffectiveBox
from schema.layout import (
    BACKUP_MARKER,
    DEFAULT_CONFIG,
    DEFAULT_CONFIG_TEXT,
    DISK_LIST,
    GLOBAL_LOG,
    IMAGES_DIR,
    INFO_TXT,
    PXE_CFG_DIR,
    REQUEST_FILE,
    RESULTS_DIR,
    STORE_DIR,
    hex_ip,
    log_line,
)
from schema.request import Request, Result, request_id

GENERATOR_VERSION = 1
CHUNK_POOL = 256
DISK_SIZE = 256 * 1024 * 1024
IMAGES_PER_BOX = 3
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=UTC)

SITE = {
    "tftp_root": "tftp",
    "backup_root": "backup",
    "maintenance": {
        "kernel": "maintenance-boot/vmlinuz",
        "initrd": "maintenance-boot/initrd.img",
        "nfs_server": "10.0.0.2",
        "nfsroot": "/export/testbox-nfsroot",
        "network": {
            "mode": "static",
            "gateway": "10.0.0.1",
            "netmask": "255.255.0.0",
            "device": "eth0",
        },
    },
    "defaults": {"disks": ["sda"], "retention": {"keep_last": 3}, "max_attempts": 3},
}


@dataclass(frozen=True)
class LabFigures:
    boxes: int
    files: int
    bytes: int


def box_ip(i: int) -> str:
    return f"10.{1 + i // 65000}.{(i % 65000) // 250}.{1 + i % 250}"


def _box(i: int) -> dict[str, object]:
    kind = i % 10
    box: dict[str, object] = {"name": f"tb-{i:05d}", "ip": box_ip(i)}
    if i % 3 == 0:
        box["disks"] = ["sda", "sdb"]
    if kind in (4, 5, 6):
        box["action"] = "backup"
    elif kind == 7:
        box["action"] = "restore"
    elif kind == 8:
        box["action"] = "refresh-info"
    elif kind == 9:
        box["action"] = "backup-again" if i % 20 == 9 else "rescue"
        box["request"] = "2026-11-25"
    return box


def _write(path: Path, data: bytes | str, counter: list[int]) -> None:
    raw = data.encode() if isinstance(data, str) else data
    path.write_bytes(raw)
    counter[0] += 1
    counter[1] += len(raw)


def _chunk_pool(backup: Path, counter: list[int]) -> list[str]:
    rng = random.Random(7)
    ids = []
    compressor = zstandard.ZstdCompressor(level=3)
    for _ in range(CHUNK_POOL):
        data = rng.randbytes(4096) * (DEFAULT_CHUNK_SIZE // 4096)
        cid = hashlib.sha256(data).hexdigest()
        directory = backup / STORE_DIR / "chunks" / cid[:2]
        directory.mkdir(parents=True, exist_ok=True)
        _write(directory / f"{cid}{CHUNK_SUFFIX}", compressor.compress(data), counter)
        ids.append(cid)
    return ids


def _images(
    backup: Path, box: EffectiveBox, pool: list[str], rng: random.Random, counter: list[int]
) -> None:
    per_disk = DISK_SIZE // DEFAULT_CHUNK_SIZE
    for n in range(IMAGES_PER_BOX):
        created = T0 + timedelta(days=7 * n, minutes=rng.randrange(600))
        image_id = f"{created:%Y%m%dT%H%M%SZ}-{rng.randrange(16**6):06x}"
        directory = backup / box.ip / IMAGES_DIR / image_id
        directory.mkdir(parents=True)
        disks = []
        for disk in box.disks:
            chunks = [None if rng.random() < 0.5 else rng.choice(pool) for _ in range(per_disk)]
            manifest = DiskManifest(
                disk=disk, size=DISK_SIZE, chunk_size=DEFAULT_CHUNK_SIZE, chunks=chunks
            )
            data = manifest.model_dump_json().encode()
            _write(directory / f"{disk}{MANIFEST_SUFFIX}", data, counter)
            disks.append(
                CommitDisk(
                    disk=disk,
                    size=DISK_SIZE,
                    chunk_size=DEFAULT_CHUNK_SIZE,
                    chunks=per_disk,
                    zero_chunks=chunks.count(None),
                    stored_bytes=1200 * (per_disk - chunks.count(None)),
                    manifest_sha256=hashlib.sha256(data).hexdigest(),
                )
            )
        record = CommitRecord(id=image_id, box_ip=box.ip, created=created, disks=disks)
        _write(directory / COMMIT_FILE, record.model_dump_json(indent=1), counter)


def _result(box: EffectiveBox, rid: str, outcome: str, attempt: int) -> str:
    finished = T0 + timedelta(days=20, minutes=attempt)
    return Result.model_validate(
        {
            "request_id": rid,
            "action": box.action if box.action != "none" else "backup",
            "ip": box.ip,
            "hostname": box.name,
            "outcome": outcome,
            "attempt": attempt,
            "started": finished - timedelta(minutes=9),
            "finished": finished,
            "service_version": "bench",
            "error": "disk read error" if outcome == "failure" else None,
        }
    ).model_dump_json(indent=2)


def generate(root: Path, boxes: int) -> LabFigures:
    """Write the lab under `root` (tftp/, backup/, desired.yaml)."""
    counter = [0, 0]
    tftp, backup = root / "tftp", root / "backup"
    (tftp / PXE_CFG_DIR).mkdir(parents=True)
    backup.mkdir(parents=True)
    _write(tftp / PXE_CFG_DIR / DEFAULT_CONFIG, DEFAULT_CONFIG_TEXT, counter)
    _write(backup / BACKUP_MARKER, b"", counter)
    state = DesiredState.model_validate({"site": SITE, "boxes": [_box(i) for i in range(boxes)]})
    lines = ["site: " + json.dumps(SITE), "boxes:"]
    lines += [f"  - {json.dumps(_box(i))}" for i in range(boxes)]
    _write(root / "desired.yaml", "\n".join(lines) + "\n", counter)

    pool = _chunk_pool(backup, counter)
    rng = random.Random(boxes)
    global_log = []
    for i, box in enumerate(state.effective_boxes()):
        kind = i % 10
        box_dir = backup / box.ip
        (box_dir / RESULTS_DIR).mkdir(parents=True)
        _write(box_dir / box.name, b"", counter)
        _write(box_dir / INFO_TXT, f"{box.name}\n{box.ip}\n{hex_ip(box.ip)}\n" * 20, counter)
        log = [
            log_line(f"2026-11-{d:02d}T03:00:00Z", box.ip, "info", "backup done")
            for d in range(1, 21)
        ]
        _write(box_dir / "maintenance.log", "".join(log), counter)
        global_log += log[:2]
        for _old in range(2):  # results of requests long done
            old_rid = f"{rng.randrange(16**12):012x}"
            _write(
                box_dir / RESULTS_DIR / f"{old_rid}.json",
                _result(box, old_rid, "success", 1),
                counter,
            )
        _images(backup, box, pool, rng, counter)
        if i % 10 == 0:
            _write(box_dir / "sda.gz", b"\x1f\x8b" + rng.randbytes(2000), counter)
        rid = request_id(box)
        if rid is None or (kind == 9 and i % 20 == 9):
            continue  # action none, or a new request the dry run will arm
        if kind in (4, 5, 8):  # done: result recorded, config removed by the service
            _write(box_dir / RESULTS_DIR / f"{rid}.json", _result(box, rid, "success", 1), counter)
            continue
        if kind == 7:
            _write(box_dir / RESULTS_DIR / f"{rid}.json", _result(box, rid, "failure", 1), counter)
        _write(box_dir / DISK_LIST, disk_list_text(box.disks), counter)
        _write(box_dir / REQUEST_FILE, request_json_text(Request.for_box(box)), counter)
        _write(
            tftp / PXE_CFG_DIR / hex_ip(box.ip), render_box_config(state.site, box, rid), counter
        )
    for n in range(max(1, boxes // 100)):  # configs someone wrote by hand
        _write(tftp / PXE_CFG_DIR / f"C0A8{n:04X}", "DEFAULT local-boot\n", counter)
    _write(backup / GLOBAL_LOG, "".join(global_log), counter)
    return LabFigures(boxes=boxes, files=counter[0], bytes=counter[1])


def main() -> None:
    """`python -m benchmarks.lab_gen ROOT BOXES`: generate, or keep a lab of this version."""
    root, boxes = Path(sys.argv[1]), int(sys.argv[2])
    stamp = root / ".generated"
    if stamp.is_file() and stamp.read_text() == f"{GENERATOR_VERSION} {boxes}\n":
        return
    if root.exists():
        shutil.rmtree(root)
    start = time.perf_counter()
    figures = generate(root, boxes)
    stamp.write_text(f"{GENERATOR_VERSION} {boxes}\n")
    print(
        f"generated {boxes} boxes: {figures.files} files, {figures.bytes / 2**20:.0f} MiB "
        f"in {time.perf_counter() - start:.0f} s ({root})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
