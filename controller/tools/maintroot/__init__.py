"""The maintenance root: the Debian system a box network-boots into for imaging (seed's NFS root).

`build.build_maintenance_root` automates the seed's manual steps; `files` holds what it writes.
"""
