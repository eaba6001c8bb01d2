"""One backup or restore in a process of its own, so the benchmark can read its peak RSS.

    python -m benchmarks._imaging_child backup ROOT DISK [--level N] [--chunk-size B] [--workers N]
    python -m benchmarks._imaging_child restore ROOT DISK [--image ID] [--no-precheck] [--ip IP]

Prints one JSON object: seconds spent in the engine (imports excluded), the report's figures
and `maxrss_kib`: this process's peak resident memory, VmHWM from /proc/self/status. (Not
ru_maxrss: on Linux that carries over the parent's peak across fork/vfork + exec.)
"""

import argparse
import json
import resource
import time
from pathlib import Path

from onbox.imaging.backup import backup_disks
from onbox.imaging.restore import restore_image
from onbox.store import open_store

IP = "10.0.0.99"


def _vm_hwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["backup", "restore"])
    parser.add_argument("root", type=Path)
    parser.add_argument("disk", type=Path)
    parser.add_argument("--level", type=int, default=None)
    parser.add_argument("--chunk-size", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--image", default="latest")
    parser.add_argument("--no-precheck", action="store_true")
    parser.add_argument("--no-verify-dedup", action="store_true")
    parser.add_argument("--ip", default=IP, help="the box whose images to back up or restore")
    args = parser.parse_args()
    store = open_store(args.root)
    t0 = time.perf_counter()
    figures: dict[str, object]
    if args.op == "backup":
        extra = {} if args.level is None else {"level": args.level}
        report = backup_disks(
            store,
            args.ip,
            {"sda": args.disk},
            chunk_size=args.chunk_size,
            workers=args.workers,
            verify_dedup=not args.no_verify_dedup,
            **extra,
        )
        figures = {"image_id": report.image_id, **report.disks[0].model_dump()}
    else:
        restored = restore_image(
            store,
            args.ip,
            args.image,
            {"sda": args.disk},
            precheck=not args.no_precheck,
            workers=args.workers,
        )
        figures = {"image_id": restored.image_id, **restored.disks[0].model_dump()}
    seconds = time.perf_counter() - t0
    maxrss = _vm_hwm_kib()
    print(json.dumps({"seconds": seconds, "maxrss_kib": maxrss, **figures}))


if __name__ == "__main__":
    main()
