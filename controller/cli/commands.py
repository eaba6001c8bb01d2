"""Imports every command module so its commands register on the app (one line per module)."""

from controller.cli import basic as _basic  # noqa: F401
from controller.cli import images as _images  # noqa: F401
from controller.cli import maintroot as _maintroot  # noqa: F401
from controller.cli import reconcile as _reconcile  # noqa: F401
