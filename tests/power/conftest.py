"""Real BMCs on loopback for the power-driver tests, started and stopped by the fixtures.

- Redfish: `sushy-emulator --fake` (sushy-tools, PyPI): a real Redfish server with one fake
  system; it applies power changes after a random 1-11 s delay, so tests poll.
- IPMI: pyghmi's fakebmc (tests/power/fake_ipmi_bmc.py records what it was asked), driven by
  Debian's real `ipmitool` client.
Each fixture picks a free port, waits until the server answers, and kills it afterwards. A
missing tool skips, unless TESTBOX_E2E_REQUIRED=1 (CI), where it fails.
"""

import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_UNVERIFIED = ssl._create_unverified_context()
REQUIRED = os.environ.get("TESTBOX_E2E_REQUIRED") == "1"
ROOT = Path(__file__).resolve().parents[2]


def need(tool: str) -> str:
    path = shutil.which(tool) or str(Path(sys.executable).parent / tool)
    if not Path(path).exists():
        message = f"{tool} is not installed"
        if REQUIRED:
            pytest.fail(message + " (TESTBOX_E2E_REQUIRED=1: a skip would hide this)")
        pytest.skip(message)
    return path


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Redfish:
    url: str
    log: Path

    def get(self, path: str) -> dict[str, Any]:
        # The test itself trusts the fake's self-signed certificate; testboxctl must not.
        with urllib.request.urlopen(self.url + path, timeout=10, context=_UNVERIFIED) as answer:
            data: dict[str, Any] = json.load(answer)
            return data

    def post(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10, context=_UNVERIFIED).close()

    @property
    def system_path(self) -> str:
        path: str = self.get("/redfish/v1/Systems")["Members"][0]["@odata.id"]
        return path

    def system(self) -> dict[str, Any]:
        return self.get(self.system_path)

    def wait_power(self, state: str, timeout: float = 40) -> None:
        """The fake applies power changes after a delay: poll."""
        deadline = time.monotonic() + timeout
        while self.system()["PowerState"] != state:
            if time.monotonic() > deadline:
                raise AssertionError(f"Redfish system never reached PowerState {state}")
            time.sleep(0.3)

    def force(self, state: str) -> None:
        """Put the fake system into PowerState `state` ("On"/"Off") and wait until it is."""
        if self.system()["PowerState"] != state:
            reset = "On" if state == "On" else "ForceOff"
            self.post(self.system_path + "/Actions/ComputerSystem.Reset", {"ResetType": reset})
            self.wait_power(state)

    def resets(self) -> int:
        """POSTs to the Reset action the server logged (its request log is the proof)."""
        return sum(
            "POST " in line and "ComputerSystem.Reset" in line
            for line in self.log.read_text(errors="replace").splitlines()
        )


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (what many BMCs ship with)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bmc.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "bmc.crt", directory / "bmc.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def redfish(tmp_path: Path) -> Iterator[Redfish]:
    yield from _redfish(tmp_path, tls=False)


@pytest.fixture
def redfish_tls(tmp_path: Path) -> Iterator[Redfish]:
    yield from _redfish(tmp_path, tls=True)


def _redfish(tmp_path: Path, *, tls: bool) -> Iterator[Redfish]:
    exe = need("sushy-emulator")
    port = free_port()
    log = tmp_path / "sushy.log"
    argv = [exe, "--fake", "-i", "127.0.0.1", "-p", str(port)]
    if tls:
        cert, key = self_signed(tmp_path)
        argv += ["--ssl-certificate", str(cert), "--ssl-key", str(key)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Redfish(f"{'https' if tls else 'http'}://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                server.get("/redfish/v1/Systems")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"sushy-emulator did not start: {log.read_text()}"
                    ) from None
                time.sleep(0.2)
        yield server
    finally:
        _stop(process)


@dataclass
class Ipmi:
    port: int
    record: Path
    user: str
    password: str

    def calls(self) -> list[str]:
        return self.record.read_text().splitlines() if self.record.exists() else []


def start_ipmi(tmp_path: Path, state: str) -> tuple[Ipmi, subprocess.Popen[bytes]]:
    tool = need("ipmitool")
    port = free_port(socket.SOCK_DGRAM)
    bmc = Ipmi(port, tmp_path / f"ipmi-{port}.calls", "tbadmin", "s3cret-pw")
    script = [sys.executable, "-m", "tests.power.fake_ipmi_bmc", str(port), str(bmc.record)]
    process = subprocess.Popen(
        [*script, bmc.user, bmc.password, state],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    argv = [tool, "-I", "lanplus", "-H", "127.0.0.1", "-p", str(port), "-U", bmc.user, "-E"]
    env = {**os.environ, "IPMI_PASSWORD": bmc.password}
    while True:
        done = subprocess.run(
            [*argv, "-N", "1", "-R", "1", "chassis", "power", "status"],
            capture_output=True,
            env=env,
            check=False,
            timeout=30,
        )
        if done.returncode == 0:
            return bmc, process
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            raise AssertionError(f"fakebmc did not answer: {done.stderr!r}")
        time.sleep(0.3)


@pytest.fixture
def ipmi_bmc(tmp_path: Path) -> Iterator[Ipmi]:
    bmc, process = start_ipmi(tmp_path, "on")
    try:
        yield bmc
    finally:
        _stop(process)


@pytest.fixture
def ipmi_bmc_off(tmp_path: Path) -> Iterator[Ipmi]:
    bmc, process = start_ipmi(tmp_path, "off")
    try:
        yield bmc
    finally:
        _stop(process)
