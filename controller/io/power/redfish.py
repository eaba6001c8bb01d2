"""Redfish power driver: one-time PXE boot override, then `ForceRestart` (or `On` when off).

Client: plain `httpx`, not `sushy`. Power-cycling needs three calls (GET the system, PATCH its
`Boot`, POST `ComputerSystem.Reset`); sushy (Ironic's library) models the whole Redfish tree
and pulls in requests, pbr, stevedore and oslo-style dependencies for that, while httpx is one
well-kept HTTP client with timeouts, TLS verification and connection reuse built in, and keeps
the retry policy visible here:
- every request has a timeout (`power.timeout`);
- connection errors, timeouts and 5xx answers are retried with exponential backoff (3 tries:
  0.5 s, then 1 s between them); a 4xx answer (bad credentials, unknown system) is not;
- TLS certificates are verified unless the box says `verify_tls: false` (self-signed BMCs).
"""

import time
from typing import Any, Literal

import httpx

from controller.io.power import CycleResult, PowerError, PowerState
from controller.io.power.credentials import Credentials
from schema.power import PowerTarget
from schema.schedule import duration_seconds

TRIES = 3
BACKOFF = 0.5
_SYSTEMS = "/redfish/v1/Systems"


class RedfishDriver:
    def __init__(self, credentials: Credentials, *, backoff: float = BACKOFF) -> None:
        self.credentials = credentials
        self.backoff = backoff

    def _client(self, box: PowerTarget) -> httpx.Client:
        power = box.power
        return httpx.Client(
            base_url=(power.address or "").rstrip("/"),
            auth=(self.credentials.username, self.credentials.password),
            verify=power.verify_tls,
            timeout=float(duration_seconds(power.timeout)),
            headers={"Accept": "application/json", "OData-Version": "4.0"},
        )

    def _call(
        self, client: httpx.Client, box: PowerTarget, method: str, path: str, body: Any = None
    ) -> httpx.Response:
        where = f"{box.name} ({box.ip}): BMC {box.power.address}"
        problem = ""
        for attempt in range(TRIES):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = client.request(method, path, json=body)
            except httpx.TransportError as exc:
                if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                    # Not transient: retrying cannot make the certificate trusted.
                    raise PowerError(
                        f"{where}: TLS certificate not trusted ({exc}); install the BMC's CA, "
                        "or set verify_tls: false for this box"
                    ) from None
                problem = f"unreachable ({type(exc).__name__}: {exc or 'no answer'})"
                continue
            if response.status_code >= 500:
                problem = f"{method} {path}: HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise PowerError(
                    f"{where}: {method} {path}: HTTP {response.status_code} "
                    f"{response.reason_phrase}"
                )
            return response
        raise PowerError(
            f"{where}: {problem} after {TRIES} tries", unreachable=problem.startswith("unreachable")
        )

    def _json(self, response: httpx.Response, box: PowerTarget) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise PowerError(f"{box.name} ({box.ip}): BMC {box.power.address}: answer is not JSON")
        return data

    def _system(self, client: httpx.Client, box: PowerTarget) -> tuple[str, dict[str, Any]]:
        path = box.power.system
        if path is None:
            # No system named: the first member, as a single-system BMC has.
            members = self._json(self._call(client, box, "GET", _SYSTEMS), box).get("Members")
            first = members[0] if isinstance(members, list) and members else None
            path = first.get("@odata.id") if isinstance(first, dict) else None
            if not isinstance(path, str) or not path.startswith(_SYSTEMS + "/"):
                raise PowerError(f"{box.name} ({box.ip}): BMC {box.power.address}: no system")
        return path, self._json(self._call(client, box, "GET", path), box)

    @staticmethod
    def _state(system: dict[str, Any]) -> PowerState | None:
        value = system.get("PowerState")
        if value in ("On", "PoweringOn"):
            return "on"
        if value in ("Off", "PoweringOff"):
            return "off"
        return None

    def state(self, box: PowerTarget) -> PowerState | None:
        with self._client(box) as client:
            return self._state(self._system(client, box)[1])

    def power_cycle(self, box: PowerTarget, request: str) -> CycleResult:
        with self._client(box) as client:
            path, system = self._system(client, box)
            boot = {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}
            self._call(client, box, "PATCH", path, {"Boot": boot})
            state = self._state(system)
            actions = system.get("Actions")
            reset = actions.get("#ComputerSystem.Reset") if isinstance(actions, dict) else None
            target = reset.get("target") if isinstance(reset, dict) else None
            if not isinstance(target, str) or not target.startswith(path):
                target = f"{path}/Actions/ComputerSystem.Reset"
            kind: Literal["on", "reset"] = "on" if state == "off" else "reset"
            reset_type = "On" if kind == "on" else "ForceRestart"
            self._call(client, box, "POST", target, {"ResetType": reset_type})
            return CycleResult(power_state=state, action=kind)
