"""A fingerprint of what a plan was computed from, so a saved plan is never applied to other facts.

SHA-256 over exactly the observed values the planner reads: every config's name and content,
and per box directory its file names (logs and info files excluded: boxes append to those all
the time and the planner never looks at them), request.json, disk-devices.lst, each result's
request id, outcome and attempt, the image ids, the arm record and any problems
(temp files are not facts the planner reads). `apply PLAN` re-observes and
refuses when this differs.
"""

import hashlib
import json

from schema.layout import BOX_LOG, BOX_OUTPUT_LOG, INFO_TXT, INFO_ZIP, INVENTORY
from schema.observed import Observed

_IGNORED_FILES = frozenset({BOX_LOG, BOX_OUTPUT_LOG, INFO_TXT, INFO_ZIP, INVENTORY})


def fingerprint(observed: Observed) -> str:
    # One JSON document (unambiguous, and the C encoder is fast), hashed once.
    records: list[object] = [observed.tftp_root, observed.backup_root]
    for name in sorted(observed.configs):
        cfg = observed.configs[name]
        records.append(["config", name, cfg.managed, cfg.content, cfg.problem])
    for ip in sorted(observed.boxes):
        box = observed.boxes[ip]
        records.append(
            [
                "box",
                ip,
                sorted(box.files - _IGNORED_FILES),
                box.request_json,
                box.disk_list,
                [
                    [rid, box.results[rid].outcome, box.results[rid].attempt]
                    for rid in sorted(box.results)
                ],
                [image.id for image in box.images],
                box.problems,
                box.image_problems,
                sorted(box.nonfiles),
                box.arm_request,
                box.arms,
            ]
        )
        if box.power_json is not None:
            # Appended only when present, so fingerprints of labs without power control stay.
            records.append(["power", ip, box.power_json])
    records.append(["lab", observed.problems])
    return hashlib.sha256(json.dumps(records).encode("utf-8", errors="replace")).hexdigest()
