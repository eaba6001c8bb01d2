"""The pure core: desired + observed → plan, request states, renderings, retention policy.

Nothing here touches a file, a socket, a process or the clock: every fact arrives as an
argument. import-linter forbids `os`, `pathlib`, `subprocess`, `socket`, `shutil`, `tempfile`,
the image store and the I/O layer here (contracts in pyproject.toml), so purity cannot be lost
by accident.
"""
