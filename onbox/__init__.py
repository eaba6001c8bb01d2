"""Code that runs on the box, in the maintenance Linux: the service, the imaging engine, the store.

The controller may use the image store (listing, retention, verify, gc); nothing here imports
the controller.
"""

__version__ = "0.1.0"
