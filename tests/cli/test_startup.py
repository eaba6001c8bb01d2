"""`testboxctl` start-up stays cheap: importing the CLI does not load what only one command needs.

Every run of `testboxctl` (and every `reconcile --dry-run` of a CI job or timer) pays the
imports of every command module: ~0.38 s of them made `benchmarks.reconcile` miss its target
(at most 3 times a plain walk of the shares). The heavy parts are imported inside the commands
that need them (docs/architecture.md, "Start-up"); this test keeps them there.
"""

import json
import subprocess
import sys

# What a command imports inside its function, and the command (or flag) that needs it.
LAZY = {
    "controller.tools.maintroot.build": "build-maintenance-root",
    "controller.tools.pxe_conf": "pxe-conf",
    "controller.tools.status_page": "status --html",
    "jinja2": "status --html",
    "controller.core.status_view": "status --html / --prometheus",
    "controller.core.render_markdown": "reconcile --markdown",
    "onbox.imaging.verify": "verify",
    "onbox.imaging.legacy": "import-legacy",
    "onbox.imaging.backup": "import-legacy",
    "zstandard": "verify, import-legacy",
    "httpx": "a redfish power cycle",
    "click": "an error (typer vendors its own click)",
    "rich.table": "status, images",
}


def test_importing_the_cli_loads_no_single_command_dependency() -> None:
    probe = (
        "import json, sys\n"
        "from controller.cli import main\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    eager = {name: need for name, need in LAZY.items() if name in loaded}
    assert not eager, f"imported at start-up, needed only by: {eager}"
