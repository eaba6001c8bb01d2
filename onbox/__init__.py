"""Code that runs on the box, in the maintenance Linux: the service, the imaging engine, the store.

The controller may use the image store (listing, retention, verify, gc); nothing here imports
the controller.
"""

# The one source of the version: pyproject.toml reads it from here (setuptools' dynamic `attr`,
# read from this file's text, nothing imported). Not importlib.metadata at run time: finding the
# installed distribution costs 25-40 ms of every `testbox-maintenance` start, a fixed cost of
# every maintenance boot (docs/images.md, "A box's view").
__version__ = "0.1.0"
