"""Code that runs on the box, in the maintenance Linux: the service, the imaging engine, the store.

The controller may use the image store (listing, retention, verify, gc); nothing here imports
the controller.
"""

from importlib.metadata import PackageNotFoundError, version

# One source for the version: pyproject.toml, through the installed distribution's metadata
# (the maintenance root installs the project into its venv, so it has the metadata too).
try:
    __version__ = version("testboxctl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
