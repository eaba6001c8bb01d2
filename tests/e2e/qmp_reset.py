"""`python -m tests.e2e.qmp_reset SOCKET`: reset a QEMU VM through its QMP socket.

The `command` power driver of the unattended e2e test: what `ipmitool power reset` is to a real
box, `system_reset` is to the VM. Exit 0 when QEMU acknowledged it.
"""

import json
import socket
import sys


def main() -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(sys.argv[1])
        stream = sock.makefile("rw")
        json.loads(stream.readline())  # the greeting
        for command in ("qmp_capabilities", "system_reset"):
            stream.write(json.dumps({"execute": command}) + "\n")
            stream.flush()
            while True:
                answer = json.loads(stream.readline())
                if "return" in answer:
                    break
                if "error" in answer:
                    print(f"QMP {command}: {answer['error']}")
                    return 1
        print("QMP system_reset acknowledged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
