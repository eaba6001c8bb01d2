"""The pure pieces of issue 8 in the core: future-dated images, saved-plan check, arm counting,
temp-file sweep selection. Facts in, decisions out; no shares needed."""

from datetime import UTC, datetime, timedelta

from controller.core.requeststate import decide
from controller.core.retention import future_images
from controller.core.savedplan import check_saved_plan
from controller.core.sweep import dead_temp_files
from schema.image import ImageInfo
from schema.observed import Observed, ObservedBox, ObservedResult
from schema.plan import Operation, Plan
from tests.lab_builder import desired

NOW = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
BOX = {"name": "tb1", "ip": "10.0.2.15", "action": "backup", "max_attempts": 2}


def test_future_images_beyond_the_skew_only() -> None:
    def img(iid: str, created: datetime, kind: str = "chunked") -> ImageInfo:
        return ImageInfo(id=iid, box_ip="10.0.2.15", created=created, kind=kind)  # type: ignore[arg-type]

    images = [
        img("past", NOW - timedelta(days=1)),
        img("drift", NOW + timedelta(minutes=30)),
        img("future", NOW + timedelta(days=2)),
        img("legacy", NOW + timedelta(days=2), "legacy"),
    ]
    assert future_images(images, NOW) == ["future"]


def test_arms_stall_only_once_the_config_is_gone() -> None:
    box = desired(BOX).effective_boxes()[0]
    assert decide(box, "r1", None, arms=2, config_in_place=True).armed  # mid-attempt
    stalled = decide(box, "r1", None, arms=2, config_in_place=False)
    assert not stalled.armed and stalled.state == "stalled"
    assert decide(box, "r1", None, arms=1, config_in_place=False).armed
    failed = ObservedResult(request_id="r1", outcome="failure", attempt=1)
    assert decide(box, "r1", failed, arms=2, config_in_place=False).state == "stalled"
    done = ObservedResult(request_id="r1", outcome="success", attempt=1)
    assert decide(box, "r1", done, arms=9, config_in_place=False).state == "done"


def _plan(*ops: Operation, tftp: str = "/t") -> Plan:
    return Plan(
        tftp_root=tftp, backup_root="/b", observed_at=NOW, fingerprint="0", operations=list(ops)
    )


def _op(path: str, content: str = "x") -> Operation:
    return Operation(kind="write-config", share="tftp", path=path, reason="r", content=content)


def test_saved_plan_must_equal_the_fresh_plan() -> None:
    a, b = _op("pxelinux.cfg/0A000001"), _op("pxelinux.cfg/0A000002")
    assert check_saved_plan(_plan(a, b), _plan(a, b), tftp_root="/t", backup_root="/b") == []
    assert check_saved_plan(_plan(a, _op("pxelinux.cfg/0A000002", "evil")), _plan(a, b)) == [
        "write-config tftp:pxelinux.cfg/0A000002: not an operation the planner derives now",
        "write-config tftp:pxelinux.cfg/0A000002: the planner derives it now, the plan lacks it",
    ]
    assert check_saved_plan(_plan(b, a), _plan(a, b)) == [
        "the operations are not in the order the planner runs them"
    ]
    assert check_saved_plan(_plan(a, a), _plan(a)) == [
        "the operations are not in the order the planner runs them"
    ]
    many = [_op(f"pxelinux.cfg/0A0000{n:02X}") for n in range(9)]
    problems = check_saved_plan(_plan(*many), _plan())
    assert len(problems) == 6 and problems[-1] == "... and 4 more difference(s)"
    assert check_saved_plan(_plan(tftp="/etc"), _plan(), tftp_root="/t") == [
        "the plan's TFTP share /etc is not the desired state's (/t)"
    ]


def test_only_our_dead_temp_files_are_swept() -> None:
    old, young = NOW.timestamp() - 3600, NOW.timestamp() - 10
    box = ObservedBox(
        ip="10.0.2.15",
        temp_files={
            ".request.json.aaaaaaaaaaaa.tmp": old,
            ".tb1.aaaaaaaaaaaa.tmp": old,
            ".disk-devices.lst.aaaaaaaaaaaa.tmp": young,
            ".inventory.json.aaaaaaaaaaaa.tmp": old,  # the service's
        },
    )
    observed = Observed(
        tftp_root="/t",
        backup_root="/b",
        observed_at=NOW,
        boxes={"10.0.2.15": box},
        config_temp_files={".0A00020F.aaaaaaaaaaaa.tmp": old, ".default.bbbbbbbbbbbb.tmp": young},
    )
    assert dead_temp_files(desired(BOX), observed, NOW) == [
        ("tftp", "pxelinux.cfg/.0A00020F.aaaaaaaaaaaa.tmp"),
        ("backup", "10.0.2.15/.request.json.aaaaaaaaaaaa.tmp"),
        ("backup", "10.0.2.15/.tb1.aaaaaaaaaaaa.tmp"),
    ]
