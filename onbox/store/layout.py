"""The store's names on the backup share (contract §2, §4), built in one place from checked parts.

    store/config.json                           format version (checked on open)
    store/chunks/<first two hex>/<sha256>.zst   compressed chunk, named by its uncompressed hash
    store/leases/<lease-id>.lease               chunk ids a running backup (will) reference
    store/trash/<gc-id>/<sha256>.zst            chunks a gc run has taken out (reversible)
    store/verify/<writer>.json                  what verify (or a restore) found bad, and when
    <ip>/images/<image-id>/<disk>.manifest.json one per disk
    <ip>/images/<image-id>/commit.json          written last; its presence makes the image
    <ip>/sda.gz, <ip>/sda.raw.gz                the seed's images

A box address, image id, chunk id or disk name becomes part of a name only after it matched
its pattern here, so `committed_ids('../etc')` is a StoreError on every backend.
"""

import functools
import ipaddress
import re

from onbox.errors import ImageNotFound, StoreError
from onbox.store.records import CHUNK_ID
from schema.layout import IMAGES_DIR, STORE_DIR
from schema.types import DISK_NAME_PATTERN, IMAGE_ID_PATTERN

CHUNK_SUFFIX = ".zst"
LEASE_SUFFIX = ".lease"
COMMIT_FILE = "commit.json"
MANIFEST_SUFFIX = ".manifest.json"
CONFIG = f"{STORE_DIR}/config.json"
CHUNKS = f"{STORE_DIR}/chunks"
LEASES = f"{STORE_DIR}/leases"
TRASH = f"{STORE_DIR}/trash"
VERIFY = f"{STORE_DIR}/verify"

IMAGE_DIR_NAME = re.compile(IMAGE_ID_PATTERN)  # schema.types.ImageId
TOKEN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,95}$")  # gc ids, lease ids, writers
DISK = re.compile(DISK_NAME_PATTERN)


@functools.lru_cache(maxsize=65536)
def is_box_ip(name: str) -> bool:
    """Only a canonical dotted-decimal IPv4 address names a box directory (cached: every name
    of a box's records is built through here, thousands of times in a listing)."""
    try:
        return str(ipaddress.IPv4Address(name)) == name
    except ValueError:
        return False


def box(box_ip: str) -> str:
    if not isinstance(box_ip, str) or not is_box_ip(box_ip):
        raise StoreError(f"not a box IP address: {box_ip!r}")
    return box_ip


def chunk(chunk_id: str) -> str:
    if not isinstance(chunk_id, str) or not CHUNK_ID.fullmatch(chunk_id):
        raise StoreError(f"not a chunk id: {chunk_id!r}")
    return f"{CHUNKS}/{chunk_id[:2]}/{chunk_id}{CHUNK_SUFFIX}"


def token(value: str, what: str) -> str:
    if not isinstance(value, str) or not TOKEN.fullmatch(value):
        raise StoreError(f"not a valid {what}: {value!r}")
    return value


def trash_dir(gc_id: str) -> str:
    return f"{TRASH}/{token(gc_id, 'gc id')}"


def trash_chunk(gc_id: str, chunk_id: str) -> str:
    return f"{trash_dir(gc_id)}/{chunk(chunk_id).rpartition('/')[2]}"


def lease(lease_id: str) -> str:
    return f"{LEASES}/{token(lease_id, 'lease id')}{LEASE_SUFFIX}"


def verify_record(writer: str) -> str:
    return f"{VERIFY}/{token(writer, 'verify record name')}.json"


def images_dir(box_ip: str) -> str:
    return f"{box(box_ip)}/{IMAGES_DIR}"


def image_dir(box_ip: str, image_id: str) -> str:
    if not isinstance(image_id, str) or not IMAGE_DIR_NAME.fullmatch(image_id):
        raise ImageNotFound(f"box {box(box_ip)} has no image {image_id!r}")
    return f"{images_dir(box_ip)}/{image_id}"


def commit(box_ip: str, image_id: str) -> str:
    return f"{image_dir(box_ip, image_id)}/{COMMIT_FILE}"


def manifest(box_ip: str, image_id: str, disk: str) -> str:
    if not isinstance(disk, str) or not DISK.fullmatch(disk):
        raise StoreError(f"not a disk name: {disk!r}")
    return f"{image_dir(box_ip, image_id)}/{disk}{MANIFEST_SUFFIX}"


def legacy_name(box_ip: str, name: str) -> str:
    from onbox.store.legacy import legacy_disk

    if legacy_disk(name) is None and not (
        name.endswith(".imported") and legacy_disk(name[: -len(".imported")])
    ):
        raise StoreError(f"not a legacy image name: {name!r}")
    return f"{box(box_ip)}/{name}"
