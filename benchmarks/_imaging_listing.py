"""How long listing images takes for a lab of 10,000 boxes (the controller does it every run).

    python -m benchmarks._imaging_listing [--dir /var/tmp]

Builds 10,000 box directories (every fifth with 3 committed images) with the store API in a
temporary directory, times `list_images()` and `list_images(ip)` for every box, deletes it all.
"""

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from onbox.store import open_store
from onbox.store.records import CommitDisk, CommitRecord, DiskManifest, new_image_id

BOXES = 10_000


def build(root: Path) -> list[str]:
    (root / "testbox-backup").touch()
    store = open_store(root)
    ips = [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(BOXES)]
    for n, ip in enumerate(ips):
        (root / ip).mkdir()
        (root / ip / f"tb-{n}").touch()
        if n % 5:
            continue
        for day in range(1, 4):
            created = datetime(2026, 11, day, tzinfo=UTC)
            image_id = new_image_id(created)
            manifest = DiskManifest(
                disk="sda", size=4 << 30, chunk_size=4 << 20, chunks=[None] * 1024
            )
            digest = store.write_manifest(ip, image_id, manifest)
            disk = CommitDisk(
                disk="sda",
                size=manifest.size,
                chunk_size=manifest.chunk_size,
                chunks=1024,
                zero_chunks=1024,
                stored_bytes=0,
                manifest_sha256=digest,
            )
            store.commit(CommitRecord(id=image_id, box_ip=ip, created=created, disks=[disk]))
    return ips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="imaging-listing-", dir=args.dir))
    try:
        ips = build(root)
        store = open_store(root)
        for _ in range(2):
            t0 = time.perf_counter()
            images = store.list_images()
            print(
                f"list_images() over {BOXES} boxes ({BOXES // 5} with 3 images): "
                f"{len(images)} images in {time.perf_counter() - t0:.2f} s"
            )
        t0 = time.perf_counter()
        for ip in ips:
            store.list_images(ip)
        print(f"list_images(ip) for each of the {BOXES} boxes: {time.perf_counter() - t0:.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
