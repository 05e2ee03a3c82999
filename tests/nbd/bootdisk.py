"""A tiny, genuinely bootable x86 disk built from Debian packages, for the boot-from-volume test.

The disk is a raw MBR image that SeaBIOS boots by itself: syslinux's MBR code, a FAT boot
partition holding syslinux (ldlinux.sys), Debian's kernel and a busybox initramfs, a small raw
"marker" partition and an ext4 data partition. Nothing is loop-mounted: mkfs.fat, mtools,
syslinux's mtools installer and mkfs.ext4 all work on plain files, and Python stitches them in.

The initramfs `/init` (see INIT) talks to the test through the disk and the serial console:
it reads a nonce the test wrote into the marker partition, writes a marker sector back, writes
a file on the ext4 partition and a bigger fill file, optionally waits for "go" on the console
(so the test can look at the cluster while the fill is there), deletes the fill, runs fstrim,
and powers off. Every step prints a `SHOAL-BOOT: ...` line on ttyS0.

Built disks are cached under $SHOAL_BOOTDISK_CACHE (default ~/.cache/shoal/bootdisk), keyed by
the package versions and this file's source, so a CI run builds one at most once.

`python -m tests.nbd.bootdisk [--out PATH] [--boot DRIVE]` builds (or finds) the disk, prints
its path or copies it out, and can boot qemu on a drive holding it (for a walkthrough).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

MiB = 1 << 20
SECTOR = 512

# Disk layout (bytes). The data partition starts on a 4 MiB boundary so that RBD objects
# (4 MiB by default) map onto it cleanly and a trimmed range frees whole objects.
BOOT_START, BOOT_SIZE = 1 * MiB, 24 * MiB
MARKER_START, MARKER_SIZE = 28 * MiB, 4 * MiB
DATA_START, DATA_SIZE = 32 * MiB, 64 * MiB
DISK_SIZE = DATA_START + DATA_SIZE

# In the marker partition: sector 0 is the guest's marker, sector 1 the test's nonce.
MARKER_OFFSET = MARKER_START
NONCE_OFFSET = MARKER_START + SECTOR
MARKER_PREFIX = b"SHOAL-BOOT-MARKER "
NONCE_PREFIX = b"SHOAL-NONCE "
FILL_MIB = 16  # what the guest writes, then deletes and trims

# The apt packages the build and the boot need installed, one per line (install.sh installs
# them); their versions key the cache. The kernel package is only downloaded and unpacked
# here, so the host's own kernel and /boot are never touched.
PACKAGES_FILE = Path(__file__).with_name("boot-packages.txt")
KERNEL_META = "linux-image-amd64"


def boot_packages() -> list[str]:
    return PACKAGES_FILE.read_text().split()

# Modules the guest loads (with their dependencies, found in the .ko files): Debian builds
# virtio and ext4 as modules. crc32c is only a soft dependency of ext4 (metadata_csum).
GUEST_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")

SYSLINUX_CFG = """\
SERIAL 0 115200
DEFAULT shoal
PROMPT 0
TIMEOUT 0
LABEL shoal
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND console=ttyS0,115200 panic=-1 loglevel=4
"""

INIT = r"""#!/bin/busybox sh
# Shoal boot-from-volume guest: see tests/nbd/bootdisk.py.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
exec </dev/console >/dev/console 2>&1
say() { echo "SHOAL-BOOT: $*"; }
die() { say "FAIL $*"; sync; poweroff -f; sleep 60; }
say "init up=$(cut -d' ' -f1 /proc/uptime)"
for m in $(cat /modules.order); do insmod "/lib/modules/$m.ko" || die "insmod $m"; done
n=0
while [ ! -b /dev/vda3 ]; do
  n=$((n + 1)); [ "$n" -gt 300 ] && die "no /dev/vda3"; usleep 100000
done
say "disk $(cat /sys/block/vda/size) sectors, discard_max=$(cat /sys/block/vda/queue/discard_max_bytes)"
set -- $(dd if=/dev/vda2 bs=512 skip=1 count=1 2>/dev/null | head -n 1)
nonce=none; pause=
[ "$1" = SHOAL-NONCE ] && nonce="$2" && pause="$3"
printf '%-511s\n' "SHOAL-BOOT-MARKER $nonce" | dd of=/dev/vda2 bs=512 count=1 conv=notrunc,fsync 2>/dev/null \
  || die "marker write"
say "marker written nonce=$nonce"
mkdir -p /mnt
mount -t ext4 /dev/vda3 /mnt || die "mount /dev/vda3"
echo "SHOAL-BOOT-MARKER $nonce" > /mnt/marker.txt
dd if=/dev/urandom of=/mnt/fill bs=1M count=@FILL_MIB@ 2>/dev/null || die "fill write"
sync
say "fill written $(du -k /mnt/fill | cut -f1) KiB"
if [ "$pause" = pause ]; then
  say "paused"
  read -t 600 -r go || die "no go"
  say "resumed $go"
fi
rm /mnt/fill
sync
say "$(fstrim -v /mnt 2>&1 || echo 'fstrim failed')"
umount /mnt || die "umount"
sync
say "done up=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
""".replace("@FILL_MIB@", str(FILL_MIB))


class BootDiskUnavailable(Exception):
    """The build tools or the kernel package are missing (the message says which)."""


@dataclass(frozen=True)
class Inputs:
    kernel_package: str
    kernel_version: str
    versions: dict[str, str]

    def key(self) -> str:
        h = hashlib.sha256()
        h.update(Path(__file__).read_bytes())  # a changed builder must not reuse old disks
        h.update(f"{self.kernel_package}={self.kernel_version}\n".encode())
        for name, ver in sorted(self.versions.items()):
            h.update(f"{name}={ver}\n".encode())
        return h.hexdigest()[:16]


def _run(*argv: str, cwd: str | None = None) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def installed_version(package: str) -> str | None:
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Status} ${Version}", package],
                          capture_output=True, text=True)
    words = proc.stdout.split()
    if proc.returncode != 0 or words[:3] != ["install", "ok", "installed"] or len(words) < 4:
        return None
    return words[3]


def kernel_package() -> tuple[str, str]:
    """The versioned kernel package the linux-image-amd64 metapackage points at, and its version."""
    if not shutil.which("apt-cache"):
        raise BootDiskUnavailable("apt-cache not found: the boot disk is built from Debian packages")
    out = subprocess.run(["apt-cache", "depends", "--important", KERNEL_META],
                         capture_output=True, text=True).stdout
    names = [ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.strip().startswith("Depends:")]
    names = [n for n in names if n.startswith("linux-image-")]
    if not names:
        raise BootDiskUnavailable(f"apt knows no {KERNEL_META} (run apt-get update)")
    show = subprocess.run(["apt-cache", "show", "--no-all-versions", names[0]],
                          capture_output=True, text=True).stdout
    versions = [ln.split(":", 1)[1].strip() for ln in show.splitlines() if ln.startswith("Version:")]
    if not versions:
        raise BootDiskUnavailable(f"apt-cache show {names[0]} gave no version")
    return names[0], versions[0]


def gather_inputs() -> Inputs:
    versions = {}
    missing = []
    for pkg in boot_packages():
        ver = installed_version(pkg)
        if ver is None:
            missing.append(pkg)
        else:
            versions[pkg] = ver
    if missing:
        raise BootDiskUnavailable(f"missing Debian packages: {' '.join(missing)} "
                                  f"(apt-get install --no-install-recommends $(cat {PACKAGES_FILE}))")
    name, ver = kernel_package()
    return Inputs(name, ver, versions)


def cache_dir() -> Path:
    env = os.environ.get("SHOAL_BOOTDISK_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "shoal" / "bootdisk"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One builder per cache dir at a time (parallel test runs would otherwise both build)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def ensure_disk(log: Callable[[str], None] = lambda msg: None) -> Path:
    """The path of a built boot disk (read-only: copy or import it, never boot it in place)."""
    inputs = gather_inputs()
    root = cache_dir()
    disk = root / f"disk-{inputs.key()}.img"
    if disk.exists():
        return disk
    with _locked(root / ".lock"):
        if disk.exists():
            return disk
        with tempfile.TemporaryDirectory(dir=root, prefix="build-") as work:
            log(f"building boot disk {disk.name} ({inputs.kernel_package} {inputs.kernel_version})")
            tmp = Path(work) / "disk.img"
            build_disk(tmp, Path(work), inputs)
            os.chmod(tmp, 0o444)
            os.replace(tmp, disk)  # atomic: a reader sees no disk or a whole one
        _prune(root, keep={disk.name, f"{inputs.kernel_package}_{inputs.kernel_version}.deb"})
        return disk


def _prune(root: Path, keep: set[str]) -> None:
    """Drop disks and kernel packages of older inputs: each is ~10 MB / 70 MB."""
    for p in [*root.glob("disk-*.img"), *root.glob("linux-image-*.deb")]:
        if p.name not in keep:
            p.unlink(missing_ok=True)


# --- building ---------------------------------------------------------------------------


def build_disk(out: Path, work: Path, inputs: Inputs) -> None:
    kernel_tree = work / "kernel"
    deb = _download_kernel(inputs, work)
    _extract_kernel(deb, kernel_tree)
    vmlinuz = next((kernel_tree / "boot").glob("vmlinuz-*"))
    initrd = work / "initrd.gz"
    initrd.write_bytes(build_initramfs(kernel_tree))

    boot = work / "boot.img"
    _run("mkfs.fat", "-C", "-F", "16", "-n", "SHOALBOOT", "-i", "5400A1B0", "--invariant",
         "-h", str(BOOT_START // SECTOR), str(boot), str(BOOT_SIZE // 1024))
    (work / "syslinux.cfg").write_text(SYSLINUX_CFG)
    env = dict(os.environ, MTOOLS_SKIP_CHECK="1")
    for src, name in ((vmlinuz, "vmlinuz"), (initrd, "initrd.gz"), (work / "syslinux.cfg", "syslinux.cfg")):
        subprocess.run(["mcopy", "-i", str(boot), str(src), f"::{name}"], check=True, env=env,
                       capture_output=True)
    # syslinux's installer works through mtools on the image file: writes ldlinux.sys and
    # ldlinux.c32 and patches the FAT boot sector to load them.
    _run("syslinux", "--install", str(boot))

    data = work / "data.img"
    _run("mkfs.ext4", "-q", "-F", "-b", "4096", "-L", "shoaldata", "-U", "5a4f4a11-0000-4000-8000-0000b0075a4f",
         "-E", "lazy_itable_init=0,lazy_journal_init=0", str(data), f"{DATA_SIZE // 1024}k")

    with open(out, "wb") as f:
        f.truncate(DISK_SIZE)
        f.seek(0)
        f.write(build_mbr(_mbr_code()))
        _copy_sparse(boot, f, BOOT_START, BOOT_SIZE)
        _copy_sparse(data, f, DATA_START, DATA_SIZE)


def _download_kernel(inputs: Inputs, work: Path) -> Path:
    """The kernel .deb, kept beside the disks (it is the slow part to fetch again)."""
    cached = cache_dir() / f"{inputs.kernel_package}_{inputs.kernel_version}.deb"
    if cached.exists():
        return cached
    dl = work / "dl"
    dl.mkdir()
    proc = subprocess.run(["apt-get", "download", f"{inputs.kernel_package}={inputs.kernel_version}"],
                          cwd=dl, capture_output=True, text=True)
    debs = list(dl.glob("*.deb"))
    if proc.returncode != 0 or not debs:
        raise BootDiskUnavailable(f"apt-get download {inputs.kernel_package} failed: {proc.stderr.strip()}")
    os.replace(debs[0], cached)
    return cached


# Members of the kernel package the guest may need: the kernel and the module directories
# virtio, the block driver, ext4 and their dependencies live in. Modules are under /lib or,
# on merged-/usr releases, /usr/lib; newer releases compress them.
_KERNEL_MEMBER = re.compile(r"\./(boot/vmlinuz-[^/]+|(usr/)?lib/modules/[^/]+/kernel/"
                            r"(drivers/virtio|drivers/block|fs|lib|crypto)/.*\.ko(\.xz|\.gz)?)")


def _extract_kernel(deb: Path, dest: Path) -> None:
    """The kernel image as boot/vmlinuz-* and the modules, uncompressed, as modules/*.ko:
    a few MB instead of unpacking the whole 400 MB package."""
    (dest / "boot").mkdir(parents=True)
    (dest / "modules").mkdir()
    dpkg = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert dpkg.stdout is not None
    with tarfile.open(fileobj=dpkg.stdout, mode="r|") as tar:
        for member in tar:
            m = _KERNEL_MEMBER.fullmatch(member.name)
            if not m or not member.isfile():
                continue
            f = tar.extractfile(member)
            assert f is not None
            data = f.read()
            name = member.name.rsplit("/", 1)[1]
            if name.startswith("vmlinuz-"):
                (dest / "boot" / name).write_bytes(data)
                continue
            if name.endswith(".xz"):
                data, name = lzma.decompress(data), name.removesuffix(".xz")
            elif name.endswith(".gz"):
                data, name = gzip.decompress(data), name.removesuffix(".gz")
            (dest / "modules" / name).write_bytes(data)
    dpkg.stdout.close()
    if dpkg.wait() != 0:
        raise RuntimeError(f"dpkg-deb --fsys-tarfile {deb.name} failed")
    if not list((dest / "boot").glob("vmlinuz-*")):
        raise RuntimeError(f"{deb.name} holds no /boot/vmlinuz-*")


def module_depends(ko: bytes) -> list[str]:
    """`depends=` of a kernel module, from its ELF .modinfo section (what modinfo reads)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise ValueError("not a 64-bit ELF module")
    shoff, = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, off, size = struct.unpack_from("<IIQQQQ", ko, shoff + i * shentsize)
        return name, off, size

    _, stroff, _ = section(shstrndx)
    for i in range(shnum):
        name, off, size = section(i)
        if ko[stroff + name:ko.index(b"\0", stroff + name)] == b".modinfo":
            for field in ko[off:off + size].split(b"\0"):
                if field.startswith(b"depends="):
                    return [d for d in field[8:].decode().split(",") if d]
            return []
    raise ValueError("no .modinfo section")


def module_load_order(kernel_tree: Path, wanted: tuple[str, ...] = GUEST_MODULES) -> list[Path]:
    """The wanted modules and their dependencies, dependencies first."""
    by_name = {p.name.removesuffix(".ko").replace("-", "_"): p
               for p in (kernel_tree / "modules").glob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen:
            return
        seen.add(name)
        if name not in by_name:
            raise RuntimeError(f"kernel module {name} not found in the kernel package")
        for dep in module_depends(by_name[name].read_bytes()):
            visit(dep)
        order.append(by_name[name])

    for name in wanted:
        visit(name)
    return order


class Cpio:
    """A newc ("070701") archive writer: lets the initramfs hold device nodes without root."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0)) -> None:
        encoded = name.encode() + b"\0"
        fields = (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(encoded), 0)
        self.ino += 1
        self.buf.write(b"070701" + b"".join(b"%08X" % v for v in fields) + encoded)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-self.buf.tell() % 4))

    def dir(self, name: str) -> None:
        self._entry(name, 0o040755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name: str, major: int, minor: int) -> None:
        self._entry(name, 0o020600, rdev=(major, minor))

    def finish(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _busybox() -> Path:
    out = _run("dpkg-query", "-L", "busybox-static")
    for line in out.splitlines():
        if line.endswith("/busybox") and os.path.isfile(line):
            return Path(line)
    raise BootDiskUnavailable("busybox-static installs no busybox binary?")


def build_initramfs(kernel_tree: Path) -> bytes:
    cpio = Cpio()
    for d in ("bin", "dev", "proc", "sys", "mnt", "lib", "lib/modules"):
        cpio.dir(d)
    # The kernel opens /dev/console for init before our script can mount devtmpfs.
    cpio.chardev("dev/console", 5, 1)
    cpio.file("bin/busybox", _busybox().read_bytes(), 0o755)
    names = []
    for ko in module_load_order(kernel_tree):
        name = ko.name.removesuffix(".ko")
        cpio.file(f"lib/modules/{name}.ko", ko.read_bytes())
        names.append(name)
    cpio.file("modules.order", ("\n".join(names) + "\n").encode())
    cpio.file("init", INIT.encode(), 0o755)
    return gzip.compress(cpio.finish(), compresslevel=9, mtime=0)


def _mbr_code() -> bytes:
    for path in ("/usr/lib/syslinux/mbr/mbr.bin", "/usr/lib/SYSLINUX/mbr.bin"):
        if os.path.exists(path):
            code = Path(path).read_bytes()
            if len(code) > 440:
                raise RuntimeError(f"{path} is {len(code)} bytes, more than an MBR's 440")
            return code
    raise BootDiskUnavailable("syslinux's mbr.bin not found (install syslinux-common)")


def _chs(lba: int) -> bytes:
    """CHS for a 255-head, 63-sector geometry, saturated as fdisk does past cylinder 1023."""
    cyl, rem = divmod(lba, 255 * 63)
    head, sec = divmod(rem, 63)
    if cyl > 1023:
        cyl, head, sec = 1023, 254, 62
    return bytes((head, (sec + 1) | ((cyl >> 2) & 0xC0), cyl & 0xFF))


def build_mbr(code: bytes) -> bytes:
    """Sector 0: boot code, disk signature, the partition table and 55 AA."""
    mbr = bytearray(SECTOR)
    mbr[:len(code)] = code
    mbr[440:444] = struct.pack("<I", 0x5A4F4A11)
    parts = [(0x80, 0x0E, BOOT_START, BOOT_SIZE),  # active FAT16 (LBA): syslinux lives here
             (0x00, 0xDA, MARKER_START, MARKER_SIZE),  # raw "non-fs data"
             (0x00, 0x83, DATA_START, DATA_SIZE)]
    for i, (flag, ptype, start, size) in enumerate(parts):
        first, count = start // SECTOR, size // SECTOR
        entry = bytes((flag,)) + _chs(first) + bytes((ptype,)) + _chs(first + count - 1) + \
            struct.pack("<II", first, count)
        mbr[446 + 16 * i:446 + 16 * (i + 1)] = entry
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def _copy_sparse(src: Path, dst: io.BufferedWriter, offset: int, limit: int) -> None:
    """Copy a filesystem image into the disk, skipping zero blocks so the disk stays sparse."""
    size = src.stat().st_size
    if size > limit:
        raise RuntimeError(f"{src.name} is {size} bytes, more than its {limit}-byte partition")
    block = 64 * 1024
    zero = bytes(block)
    with open(src, "rb") as f:
        pos = 0
        while chunk := f.read(block):
            if chunk != zero[:len(chunk)]:
                dst.seek(offset + pos)
                dst.write(chunk)
            pos += len(chunk)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.nbd.bootdisk",
                                description="Build (or find in the cache) the tiny bootable disk; "
                                            "optionally copy it out or boot a drive with it.")
    p.add_argument("--out", help="copy the disk here (sparse, writable) instead of printing its path")
    p.add_argument("--boot", metavar="DRIVE",
                   help="then boot qemu on DRIVE (e.g. nbd:unix:SOCK:exportname=POOL/IMAGE) and "
                        "print the guest's serial console")
    args = p.parse_args(argv)
    try:
        disk = ensure_disk(log=lambda m: print(m, file=sys.stderr))
    except BootDiskUnavailable as e:
        print(f"bootdisk: {e}", file=sys.stderr)
        return 1
    if args.out:
        with open(args.out, "wb") as f:
            f.truncate(DISK_SIZE)
            _copy_sparse(disk, f, 0, DISK_SIZE)
    print(args.out or disk)
    if args.boot:
        from tests.nbd.bootdisk_qemu import boot_guest  # it imports this module

        run = boot_guest(args.boot)
        print("\n".join(run.lines))
        print(f"qemu exited {run.returncode} after {run.seconds:.1f}s", file=sys.stderr)
        return 0 if run.returncode == 0 and run.events()[-1:] and run.events()[-1].startswith("done") else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
