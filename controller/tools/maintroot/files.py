"""Files the builder writes into the maintenance root, as text.

They are the seed's manual steps (TestBoxImaging.txt, "Debian NFS root") turned into data:
initramfs settings for a network root, the overlayfs init-bottom script that replaces the seed's
aufs one (aufs is gone from current kernels), getty without clearing the screen, fstab for the
two shares, and the hooks that let the test harness hand the same root to a QEMU guest over 9p
instead of NFS. Kept as Python strings (not package data) so the builder is one importable unit
and the cache key can hash exactly what ends up in the root.
"""

# --- initramfs-tools -------------------------------------------------------------------------

# conf.d overrides initramfs.conf. The seed switched MODULES from `most` to `netboot`: NIC drivers
# and NFS only, which keeps the initrd small (PXELINUX fetches it over TFTP).
INITRAMFS_CONF = """\
# Written by testboxctl build-maintenance-root: a network-booted, NFS-rooted initrd.
MODULES=netboot
BOOT=nfs
COMPRESS=zstd
"""

# Loaded in the initramfs before the root is mounted. overlay: the read-only root (below);
# 9p/9pnet_virtio/virtio_pci: the test harness's root transport (testbox.transport=9p).
INITRAMFS_MODULES = """\
# Written by testboxctl build-maintenance-root.
overlay
virtio_pci
9pnet_virtio
9p
"""

# The seed's 00_aufs_init with overlayfs: the NFS root stays read-only, writes go to a tmpfs.
# The lower and upper layers stay reachable under /ro and /rw, as with the seed's aufs.
OVERLAY_INIT_BOTTOM = """\
#!/bin/sh
# Written by testboxctl build-maintenance-root.
# A read-only network root with a tmpfs on top, so the maintenance system can write
# (/var, /tmp, /etc/mtab, ...) while the export stays read-only and shared by all boxes.
case "$1" in
    prereqs) exit 0 ;;
esac

. /scripts/functions

modprobe overlay || panic "testbox: overlay module missing"
mkdir -p /ro /rw
mount -t tmpfs tmpfs /rw -o noatime,mode=0755
mkdir -p /rw/upper /rw/work
mount --move "${rootmnt}" /ro
mount -t overlay overlay -o "lowerdir=/ro,upperdir=/rw/upper,workdir=/rw/work" "${rootmnt}" \\
    || panic "testbox: overlay mount failed"
mkdir -p "${rootmnt}/ro" "${rootmnt}/rw"
mount --move /ro "${rootmnt}/ro"
mount --move /rw "${rootmnt}/rw"
exit 0
"""

# mkinitramfs hook. With `testbox.transport=9p` on the kernel command line the root comes from
# the virtio 9p tag `testbox-root` instead of NFS. Everything else on the command line
# (boot=nfs root=/dev/nfs nfsroot=... ip=...) is what testboxctl renders for a real lab, so the
# harness boots the exact same config; only the transport of the root differs. The override is
# appended to /scripts/nfs, so it replaces nfs_mount_root_impl after the original definition and
# keeps initramfs-tools' own retry loop and networking (ip=) around it.
NINEP_ROOT_HOOK = """\
#!/bin/sh
# Written by testboxctl build-maintenance-root.
case "$1" in
    prereqs) exit 0 ;;
esac
. /usr/share/initramfs-tools/hook-functions
manual_add_modules 9p 9pnet_virtio virtio_pci overlay
cat >>"${DESTDIR}/scripts/nfs" <<'EOF'

# testboxctl: optional 9p root for virtual machines (kernel argument testbox.transport=9p).
if grep -qw 'testbox.transport=9p' /proc/cmdline; then
nfs_mount_root_impl()
{
	configure_networking
	modprobe 9pnet_virtio
	modprobe 9p
	log_begin_msg "testbox: mounting root from 9p tag testbox-root"
	mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose \\
		testbox-root "${rootmnt?}"
	ret=$?
	log_end_msg
	return $ret
}
fi
EOF
"""

# --- systemd ---------------------------------------------------------------------------------

# The seed: "This stops getty from clearing VT1 and let us see the tail of the boot up messages,
# which includes messages from the testbox-maintenance service."
GETTY_NOCLEAR = """\
[Service]
TTYVTDisallocate=no
"""

# The disks must exist before the service images them. Their drivers (ahci, nvme, virtio_blk,
# ...) are not in a `netboot` initramfs; udev loads them during coldplug after the switch to the
# real root. The service starts once coldplug has been *triggered* and then waits (bounded,
# `--disk-wait`) only for the disks its request lists. Not systemd-udev-settle: settling waits
# for every device of the machine, and under a loaded TCG guest it took over a minute (all four
# e2e scenarios hit their limit, issue 13.6); it is masked below.
SERVICE_DISKS_DROPIN = """\
# Written by testboxctl build-maintenance-root.
[Unit]
After=systemd-udev-trigger.service
"""

# A systemd generator: with testbox.transport=9p (root and shares) or testbox.shares=9p (shares
# only, the root still over NFS) the two shares come from 9p tags `testbox-tftp` and
# `testbox-backup`. Units in the generator's "early" directory take precedence over those
# systemd-fstab-generator makes from /etc/fstab.
NINEP_SHARES_GENERATOR = r"""#!/bin/sh
# Written by testboxctl build-maintenance-root.
grep -qwE 'testbox.transport=9p|testbox.shares=9p' /proc/cmdline || exit 0
early="$2"
for share in tftp backup; do
    unit="$early/mnt-testbox\\x2d$share.mount"
    cat >"$unit" <<EOF
[Unit]
Description=testbox $share share (9p)
DefaultDependencies=no
Before=local-fs.target remote-fs.target
[Mount]
What=testbox-$share
Where=/mnt/testbox-$share
Type=9p
Options=trans=virtio,version=9p2000.L,msize=262144,cache=none
EOF
done
"""

# Units a maintenance boot does not need; masking them shortens the boot (measured under TCG:
# rpc_pipefs alone held the service back ~15 s, udev-settle 13 s on a quiet machine and over a
# minute on a loaded one). The shares are NFSv3 with `nolock`, which needs neither a local
# rpcbind nor statd, and no NFSv4/GSS daemons. getty-static starts gettys on tty2-6 because
# minbase has no logind; tty1 (the seed's noclear console) and the serial console keep theirs.
# The rest is what a one-shot root on a tmpfs overlay never uses: kernel debug/trace/config
# file systems, FUSE, hugepages, POSIX queues, binfmt, a random seed and utmp that die with
# the tmpfs, a journal flush to a /var/log that is RAM anyway, and the modules of those.
# systemd-user-sessions stays: without it the console refuses logins (rescue).
MASKED_UNITS = (
    "rpcbind.service",
    "rpcbind.socket",
    "rpc-statd.service",
    "rpc-statd-notify.service",
    "run-rpc_pipefs.mount",
    "rpc-gssd.service",
    "rpc-svcgssd.service",
    "nfs-idmapd.service",
    "auth-rpcgss-module.service",
    "getty-static.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "systemd-timesyncd.service",
    "man-db.timer",
    # lean boot (issue 13.6)
    "systemd-udev-settle.service",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
    "dev-hugepages.mount",
    "dev-mqueue.mount",
    "proc-sys-fs-binfmt_misc.automount",
    "systemd-binfmt.service",
    "modprobe@configfs.service",
    "modprobe@dm_mod.service",
    "modprobe@efi_pstore.service",
    "modprobe@fuse.service",
    "modprobe@loop.service",
    "systemd-random-seed.service",
    "systemd-update-utmp.service",
    "systemd-update-utmp-runlevel.service",
    "systemd-journal-flush.service",
    "systemd-tmpfiles-clean.timer",
    "systemd-ask-password-console.path",
    "systemd-ask-password-wall.path",
    "systemd-pstore.service",
    "systemd-sysusers.service",
)


def fstab(nfs_server: str, tftp_export: str, backup_export: str) -> str:
    """The seed's fstab: proc, and the two shares over NFSv3/TCP, mounted on demand."""
    opts = "tcp,nfsvers=3,nolock,_netdev,noauto"
    return (
        "# Written by testboxctl build-maintenance-root. The root is the NFS export itself\n"
        "# (kernel command line), made writable by an overlay in the initramfs.\n"
        "proc  /proc  proc  defaults  0 0\n"
        f"{nfs_server}:{tftp_export}  /mnt/testbox-tftp  nfs  {opts}  0 0\n"
        f"{nfs_server}:{backup_export}  /mnt/testbox-backup  nfs  {opts}  0 0\n"
    )


def all_texts() -> tuple[str, ...]:
    """Every static text above, for the builder's cache key."""
    return (
        INITRAMFS_CONF,
        INITRAMFS_MODULES,
        OVERLAY_INIT_BOTTOM,
        NINEP_ROOT_HOOK,
        GETTY_NOCLEAR,
        SERVICE_DISKS_DROPIN,
        NINEP_SHARES_GENERATOR,
        *MASKED_UNITS,
    )
