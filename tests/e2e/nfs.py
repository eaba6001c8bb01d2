"""A real NFSv3 server for one test: NFS-Ganesha (userspace, Debian's `nfs-ganesha`).

It exports the three shares of the seed under the paths a lab uses (`/export/testbox-nfsroot`
read-only without root squashing, `/export/testbox-tftp` and `/export/testbox-backup`
read-write), so the guest boots exactly what `testboxctl` renders: `nfsroot=10.0.2.2:...`.
QEMU's user network maps the guest's 10.0.2.2 to the host's loopback, where Ganesha listens
on 2049 (NFS) and 20048 (mountd) and registers both with rpcbind on 111. Client ports are
unprivileged there (QEMU makes the connections), hence `PrivilegedPort = false` — the
`insecure` of a kernel NFS server. The kernel NFS server is not an option in CI containers.
"""

import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

GANESHA = "ganesha.nfsd"
RPCBIND = "rpcbind"
RPCINFO = "rpcinfo"

CONFIG = """\
NFS_CORE_PARAM {{
    Protocols = 3;
    NFS_Port = 2049;
    MNT_Port = 20048;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    # NFSv3 clients mount the pseudo paths below (/export/...), like a kernel server's exports.
    Mount_Path_Pseudo = true;
}}
EXPORT_DEFAULTS {{
    Squash = No_Root_Squash;
    Transports = TCP;
    Protocols = 3;
    SecType = sys;
    PrivilegedPort = false;
}}
EXPORT {{
    Export_Id = 1; Path = {root}; Pseudo = /export/testbox-nfsroot; Access_Type = RO;
    FSAL {{ Name = VFS; }}
}}
EXPORT {{
    Export_Id = 2; Path = {tftp}; Pseudo = /export/testbox-tftp; Access_Type = RW;
    FSAL {{ Name = VFS; }}
}}
EXPORT {{
    Export_Id = 3; Path = {backup}; Pseudo = /export/testbox-backup; Access_Type = RW;
    FSAL {{ Name = VFS; }}
}}
LOG {{ Default_Log_Level = EVENT; }}
"""


def missing() -> list[str]:
    return [
        f"{tool} (Debian packages nfs-ganesha nfs-ganesha-vfs rpcbind)"
        for tool in (GANESHA, RPCBIND, RPCINFO)
        if shutil.which(tool) is None
    ]


def _registered(program: str) -> bool:
    done = subprocess.run(
        [RPCINFO, "-t", "127.0.0.1", program, "3"], capture_output=True, check=False
    )
    return done.returncode == 0


def ensure_rpcbind() -> None:
    """rpcbind is a system daemon others may share: started if missing, left running."""
    if subprocess.run([RPCINFO, "-p", "127.0.0.1"], capture_output=True, check=False).returncode:
        subprocess.run([RPCBIND, "-w"], check=True)


# NFS-Ganesha binds the fixed ports above (the guest's rendered `nfsroot=` names no port), so
# only one test on the machine can serve at a time: a second server fails to bind ("Address
# already in use"), and its guest would silently mount the *first* test's root. Seen with two
# checkouts' e2e runs side by side. Every test holds this lock while it serves.
LOCK = Path("/tmp/testboxctl-e2e-nfs.lock")
FOREIGN_SERVER_WAIT = 1200.0


@contextmanager
def _machine_lock() -> Iterator[None]:
    with LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"\nwaiting for {LOCK}: another e2e test serves NFS on this machine")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def nfs_exports(root: Path, tftp: Path, backup: Path, workdir: Path) -> Iterator[Path]:
    """Serve the three exports while the block runs; yields Ganesha's log file."""
    with _machine_lock():
        ensure_rpcbind()
        # A server that does not take the lock (an older checkout's tests) may still be up.
        waited = time.monotonic()
        while _registered("nfs") and time.monotonic() - waited < FOREIGN_SERVER_WAIT:
            time.sleep(2)
        conf = workdir / "ganesha.conf"
        log = workdir / "ganesha.log"
        conf.write_text(CONFIG.format(root=root, tftp=tftp, backup=backup))
        proc = subprocess.Popen(
            [GANESHA, "-F", "-f", str(conf), "-L", str(log), "-p", str(workdir / "ganesha.pid"),
             "-N", "NIV_EVENT"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while not (_registered("nfs") and _registered("mountd")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"NFS-Ganesha did not come up; see {log}")
                time.sleep(0.2)
            # Registered is not enough: a server left over from elsewhere may be the one that
            # answers. Ours must still be running, and must not have failed to bind.
            time.sleep(1)
            text = log.read_text(errors="replace") if log.exists() else ""
            if proc.poll() is not None or ":FATAL :" in text:
                raise RuntimeError(
                    f"NFS-Ganesha exited (another NFS server on port 2049?); see {log}"
                )
            yield log
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
