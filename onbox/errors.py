"""Errors of the on-box part. Each carries the one-line message a user sees and an exit code."""


class OnboxError(Exception):
    """Base of every error the on-box code raises on purpose."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StoreError(OnboxError):
    """The image store cannot do what was asked (missing chunk, unreadable file, bad record)."""


class ImageNotFound(StoreError):
    """No committed image with that id for that box."""


class IntegrityError(StoreError):
    """A chunk is missing or its bytes do not hash to its name."""


class ImagingError(OnboxError):
    """Reading or writing a disk failed, or a target does not fit an image."""


class ServiceError(OnboxError):
    """The maintenance service cannot carry out the request (wrong IP, share missing, ...)."""


class DamagedImage(IntegrityError):
    """An image's records disagree with their names or each other: never restored from."""
