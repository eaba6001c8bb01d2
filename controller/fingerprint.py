"""A fingerprint of what a plan was computed from, so a saved plan is never applied to other facts.

SHA-256 over exactly the observed values the planner reads: every config's name and content,
and per box directory its file names (logs and info files excluded: boxes append to those all
the time and the planner never looks at them), request.json, disk-devices.lst, each result's
request id, outcome and attempt, the image ids and any problems. `apply PLAN` re-observes and
refuses when this differs.
"""

import hashlib

from schema.layout import BOX_LOG, BOX_OUTPUT_LOG, INFO_TXT, INFO_ZIP, INVENTORY
from schema.observed import Observed

_IGNORED_FILES = frozenset({BOX_LOG, BOX_OUTPUT_LOG, INFO_TXT, INFO_ZIP, INVENTORY})


def fingerprint(observed: Observed) -> str:
    h = hashlib.sha256()

    def put(*parts: object) -> None:
        for part in parts:
            data = str(part).encode("utf-8", errors="replace")
            # Length-prefixed, so no two different sequences hash the same bytes.
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)

    put("tftp", observed.tftp_root, "backup", observed.backup_root)
    for name in sorted(observed.configs):
        cfg = observed.configs[name]
        put("config", name, cfg.managed, cfg.content)
    for ip in sorted(observed.boxes):
        box = observed.boxes[ip]
        put("box", ip, *sorted(box.files - _IGNORED_FILES))
        put("request", box.request_json, "disks", box.disk_list)
        for rid in sorted(box.results):
            r = box.results[rid]
            put("result", rid, r.outcome, r.attempt)
        put("images", *(image.id for image in box.images))
        put("problems", *box.problems)
    return h.hexdigest()
