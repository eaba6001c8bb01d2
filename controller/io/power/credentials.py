"""BMC credentials (contract §7): never in the desired file, looked up by name at run time.

`credentials: NAME` is found in the environment (`TESTBOX_CREDENTIALS_<NAME>_USERNAME` /
`_PASSWORD`, NAME upper-cased, `-` → `_`) or in the YAML file named by `--credentials FILE` or
env `TESTBOX_CREDENTIALS_FILE` (`NAME: {username, password}`). The environment wins, so a CI
secret can override one entry of a shared file. A missing name is found before anything is
changed (`missing`), so `reconcile` fails at validation time, not halfway through a run.
"""

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.errors import ControllerError
from schema.desired import EffectiveBox

CREDENTIALS_FILE_ENV = "TESTBOX_CREDENTIALS_FILE"
_FILE_LIMIT = 1 << 20


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print a password, not even in a debugger's repr
        return f"Credentials(username={self.username!r}, password=***)"


def env_prefix(name: str) -> str:
    return "TESTBOX_CREDENTIALS_" + name.upper().replace("-", "_")


def _load_file(path: Path) -> dict[str, Credentials]:
    try:
        with open(path, "rb") as f:
            raw = f.read(_FILE_LIMIT + 1)
    except OSError as exc:
        raise ControllerError(f"{path}: cannot read credentials: {exc.strerror or exc}") from None
    if len(raw) > _FILE_LIMIT:
        raise ControllerError(f"{path}: credentials file larger than 1 MiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ControllerError(f"{path}{line}: not YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ControllerError(f"{path}: expected a mapping NAME: {{username, password}}")
    found: dict[str, Credentials] = {}
    for name, entry in data.items():
        ok = (
            isinstance(entry, dict)
            and set(entry) == {"username", "password"}
            and all(isinstance(v, str) and v for v in entry.values())
        )
        if not ok:
            raise ControllerError(
                f"{path}: {name}: expected {{username: TEXT, password: TEXT}} (both, nothing else)"
            )
        found[str(name)] = Credentials(entry["username"], entry["password"])
    return found


class CredentialSource:
    """Where credentials come from for one run: the environment, then the file (if any)."""

    def __init__(self, file: Path | None = None, env: Mapping[str, str] | None = None) -> None:
        self.env = dict(os.environ if env is None else env)
        path = file or (
            Path(self.env[CREDENTIALS_FILE_ENV]) if self.env.get(CREDENTIALS_FILE_ENV) else None
        )
        self.file = path
        self._from_file = _load_file(path) if path is not None else {}

    def lookup(self, name: str) -> Credentials | None:
        prefix = env_prefix(name)
        user, password = self.env.get(f"{prefix}_USERNAME"), self.env.get(f"{prefix}_PASSWORD")
        if user and password:
            return Credentials(user, password)
        return self._from_file.get(name)

    def get(self, name: str) -> Credentials:
        found = self.lookup(name)
        if found is None:
            raise ControllerError(self.missing_text([name]))
        return found

    def missing(self, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if self.lookup(n) is None})

    def missing_text(self, names: list[str]) -> str:
        where = f" or in {self.file}" if self.file is not None else " (or give --credentials FILE)"
        return "; ".join(
            f"credentials {n!r} not found: set {env_prefix(n)}_USERNAME and _PASSWORD{where}"
            for n in names
        )


def desired_credential_names(boxes: Iterable[EffectiveBox]) -> list[str]:
    """Every credential name the desired boxes' power configs use."""
    names = {box.power.credentials for box in boxes if box.power is not None}
    return sorted(n for n in names if n is not None)


def require_credentials(source: CredentialSource, names: list[str]) -> None:
    """Raise one ControllerError listing every missing name (before anything is changed)."""
    missing = source.missing(names)
    if missing:
        raise ControllerError(source.missing_text(missing) + "; nothing changed")
