"""The Redfish client's retry policy, against a small HTTP server on loopback that fails first.

sushy-emulator cannot be made to answer 503, so this BMC is a stand-in at the socket: it answers
the first requests with HTTP 503 (a BMC busy rebooting its web server), then like a Redfish
system. 5xx is retried with backoff; 4xx (bad credentials) is not.
"""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from controller.io.power import PowerError
from controller.io.power.credentials import Credentials
from controller.io.power.redfish import TRIES, RedfishDriver
from schema.power import PowerConfig, PowerTarget

SYSTEM = "/redfish/v1/Systems/1"
BOOT = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}


class Bmc(ThreadingHTTPServer):
    fail_first = 0
    status = 503
    seen: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Bmc

    def _answer(self, code: int, body: dict[str, Any] | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.seen.append(f"{self.command} {self.path} {body}".strip())
        if self.server.fail_first > 0:
            self.server.fail_first -= 1
            self._answer(self.server.status, {"error": "busy"})
        elif self.command == "GET":
            self._answer(200, {"PowerState": "On", "Actions": {}})
        else:
            self._answer(204)

    def do_GET(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def bmc() -> Iterator[Bmc]:
    server = Bmc(("127.0.0.1", 0), Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def target(bmc: Bmc) -> PowerTarget:
    address = f"http://127.0.0.1:{bmc.server_address[1]}"
    power = PowerConfig(method="redfish", address=address, system=SYSTEM, credentials="c")
    return PowerTarget(name="tb1", ip="10.0.2.15", power=power, cycle=1, attempts_seen=0)


def test_5xx_is_retried_with_backoff(bmc: Bmc) -> None:
    bmc.fail_first = TRIES - 1
    result = RedfishDriver(Credentials("u", "p"), backoff=0.01).power_cycle(target(bmc), "r")
    assert result.action == "reset" and result.power_state == "on"
    assert bmc.seen[: TRIES - 1] == [f"GET {SYSTEM}"] * (TRIES - 1)
    assert bmc.seen[TRIES - 1 :] == [
        f"GET {SYSTEM}",
        f"PATCH {SYSTEM} " + json.dumps(BOOT, separators=(",", ":")),
        f'POST {SYSTEM}/Actions/ComputerSystem.Reset {{"ResetType":"ForceRestart"}}',
    ]


def test_persistent_5xx_gives_up_after_the_tries(bmc: Bmc) -> None:
    bmc.fail_first = 100
    with pytest.raises(PowerError, match=f"HTTP 503 after {TRIES} tries"):
        RedfishDriver(Credentials("u", "p"), backoff=0.01).power_cycle(target(bmc), "r")
    assert len(bmc.seen) == TRIES


def test_4xx_is_not_retried(bmc: Bmc) -> None:
    bmc.fail_first, bmc.status = 1, 401
    with pytest.raises(PowerError, match="HTTP 401"):
        RedfishDriver(Credentials("u", "wrong"), backoff=0.01).power_cycle(target(bmc), "r")
    assert len(bmc.seen) == 1
