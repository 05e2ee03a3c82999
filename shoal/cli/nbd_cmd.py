"""`shoal nbd serve` (the NBD gateway) and `shoal image import --from FORMAT` (qemu-img
convert through a private gateway).

`shoal nbd serve [--socket PATH | --bind HOST:PORT] [--id USER] [--read-only]
[--tls-psk FILE [--no-tls-required]] [EXPORT…]` prints the base NBD URI on stdout once it
listens (a line a supervisor or test can wait for), logs to stderr, and stops cleanly on
SIGTERM/SIGINT. Without --bind it listens on a Unix socket (default under the run dir);
--bind never defaults to anything but 127.0.0.1. --tls-psk offers TLS-PSK (STARTTLS) with
the keys of FILE (`username:hexkey` lines, as psktool writes them) and, unless
--no-tls-required, refuses clients that don't use it (the URI printed is then nbds://).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from typing import Any

from shoal.config.cli_args import ArgvError, build_config
from shoal.errors import ShoalError
from shoal.nbd.exports import RbdRegistry, parse_export
from shoal.nbd.gateway import Gateway, connected_client, default_socket, parse_bind
from shoal.nbd.tls import PskFileError, PskServerContext, TlsConfig, TlsUnavailable, load_psk_file


def _err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _config(argv: list[str], tool: str) -> tuple[Any, list[str]] | int:
    try:
        return build_config("client", argv, os.environ)
    except (ArgvError, FileNotFoundError, ShoalError) as exc:
        _err(f"{tool}: {exc}")
        return errno.EINVAL


def _run(coro: Any) -> int:
    try:
        import uvloop

        return int(uvloop.run(coro))
    except ImportError:
        return int(asyncio.run(coro))


# -- shoal nbd serve -------------------------------------------------------------------------------
def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shoal nbd serve", description="Serve RBD images over NBD.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", help=f"Unix socket to listen on (default {default_socket()})")
    where.add_argument("--bind", help="HOST:PORT to listen on over TCP (host defaults to 127.0.0.1)")
    p.add_argument("--read-only", action="store_true", help="serve every export read-only")
    p.add_argument("--pid-file", help="write the server's pid here once it listens")
    p.add_argument("--debug", action="store_true", help="log every rejected request")
    p.add_argument("--tls-psk", metavar="FILE",
                   help="offer TLS-PSK with the keys in FILE (username:hexkey lines, as psktool -p writes)")
    p.add_argument("--tls-required", action=argparse.BooleanOptionalAction, default=None,
                   help="refuse clients that don't start TLS (the default with --tls-psk)")
    p.add_argument("exports", nargs="*", metavar="EXPORT",
                   help="pool/image or pool/image@snap (default: any image the user may open)")
    return p


def cmd_serve(argv: list[str]) -> int:
    got = _config(argv, "shoal nbd serve")
    if isinstance(got, int):
        return got
    conf, rest = got
    args = serve_parser().parse_args(rest)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    for name in args.exports:
        try:
            parse_export(name)
        except ValueError as exc:
            _err(f"shoal nbd serve: {exc}")
            return errno.EINVAL
    bind = None
    if args.bind:
        try:
            bind = parse_bind(args.bind)
        except ValueError as exc:
            _err(f"shoal nbd serve: {exc}")
            return errno.EINVAL
    tls = _tls(args)
    if isinstance(tls, int):
        return tls
    return _run(_serve(conf, args, bind, tls))


def _tls(args: argparse.Namespace) -> PskServerContext | int | None:
    """The TLS context from --tls-psk, None without it, or an exit code."""
    if args.tls_psk is None:
        if args.tls_required is not None:
            _err("shoal nbd serve: --tls-required and --no-tls-required need --tls-psk FILE")
            return errno.EINVAL
        return None
    try:
        keys = load_psk_file(args.tls_psk)
        return PskServerContext(TlsConfig(keys, args.tls_required is not False, args.tls_psk))
    except PskFileError as exc:
        _err(f"shoal nbd serve: {exc}")
        return errno.EINVAL
    except TlsUnavailable as exc:
        _err(f"shoal nbd serve: {exc}")
        return errno.ENOTSUP


async def _serve(conf: Any, args: argparse.Namespace, bind: tuple[str, int] | None,
                 tls: PskServerContext | None) -> int:
    try:
        async with connected_client(conf) as client:
            gateway = Gateway(client, RbdRegistry(client, args.exports or None, args.read_only), tls)
            try:
                if bind is not None:
                    await gateway.listen_tcp(*bind)
                else:
                    await gateway.listen_unix(os.path.abspath(args.socket or default_socket()))
            except OSError as exc:
                _err(f"shoal nbd serve: cannot listen: {exc}")
                await gateway.stop()
                return exc.errno or errno.EADDRINUSE
            if args.pid_file:
                with open(args.pid_file, "w") as f:
                    f.write(f"{os.getpid()}\n")
            print(gateway.uri(), flush=True)
            logging.getLogger("shoal.nbd").info(
                "event=nbd_listening uri=%s entity=%s exports=%s tls=%s", gateway.uri(), conf.entity_name,
                ",".join(args.exports) or "*",
                "off" if tls is None else ("required" if tls.config.required else "optional"))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
            await gateway.stop()
            return 0
    except ShoalError as exc:
        _err(f"shoal nbd serve: error connecting to the cluster: {exc}")
        return exc.errno or errno.EIO


# -- shoal image import --from FORMAT --------------------------------------------------------------
def import_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="shoal image import",
                                description="Import a disk image file (qcow2, vmdk, …) as a raw RBD image.")
    p.add_argument("--from", dest="fmt", default="qcow2", help="format of SRC as qemu-img names it (default qcow2)")
    p.add_argument("src", metavar="SRC")
    p.add_argument("dest", metavar="POOL/IMAGE")
    return p


def cmd_import(argv: list[str]) -> int:
    got = _config(argv, "shoal image import")
    if isinstance(got, int):
        return got
    conf, rest = got
    args = import_parser().parse_args(rest)
    tool = "shoal image import"
    qemu_img = shutil.which("qemu-img")
    if qemu_img is None:
        _err(f"{tool}: qemu-img not found: install qemu-utils")
        return errno.ENOENT
    try:
        pool, nspace, image, snap = parse_export(args.dest)
    except ValueError:
        _err(f"{tool}: destination {args.dest!r} is not pool/image")
        return errno.EINVAL
    if snap is not None:
        _err(f"{tool}: destination {args.dest!r} may not name a snapshot")
        return errno.EINVAL
    if not os.path.exists(args.src):
        _err(f"{tool}: {args.src}: {os.strerror(errno.ENOENT)}")
        return errno.ENOENT
    info = _qemu_info(qemu_img, args.src, args.fmt)
    if isinstance(info, str):
        _err(f"{tool}: {args.src} is not a readable {args.fmt} image: {info}")
        return errno.EINVAL
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(message)s")
    return _run(_import(conf, qemu_img, args, (pool, nspace, image), int(info["virtual-size"])))


def _qemu_info(qemu_img: str, src: str, fmt: str) -> dict[str, Any] | str:
    import subprocess

    done = subprocess.run([qemu_img, "info", "--output=json", "-f", fmt, src], capture_output=True, text=True)
    if done.returncode != 0:
        return done.stderr.strip() or f"qemu-img info exited with {done.returncode}"
    return dict(json.loads(done.stdout))


async def _import(conf: Any, qemu_img: str, args: argparse.Namespace, dest: tuple[str, str, str], size: int) -> int:
    from shoal.rbd.create import CreateOptions, create_image
    from shoal.rbd.ioctx import IoCtx
    from shoal.rbd.pool_ops import remove_image

    tool = "shoal image import"
    pool_name, nspace, image = dest
    try:
        async with connected_client(conf) as client:
            await client.wait_for_latest_map()
            pool = client.pool_by_name(pool_name)
            if pool is None:
                _err(f"{tool}: pool {pool_name!r} does not exist")
                return errno.ENOENT
            ioc = IoCtx(client, pool.id, nspace)
            try:
                await create_image(ioc, image, size, CreateOptions())
            except ShoalError as exc:
                _err(f"{tool}: cannot create {args.dest}: {exc}")
                return exc.errno
            name = args.dest
            with tempfile.TemporaryDirectory(prefix="shoal-import-") as tmp:
                gateway = Gateway(client, RbdRegistry(client, [name]))
                await gateway.listen_unix(os.path.join(tmp, "nbd.sock"))
                try:
                    code, errors = await _convert(qemu_img, args.fmt, args.src, gateway.uri(name))
                finally:
                    await gateway.stop()
            if code != 0:
                _err(f"{tool}: qemu-img convert failed ({code}): {errors.strip()}")
                try:
                    await remove_image(ioc, image)
                except ShoalError as exc:
                    _err(f"{tool}: could not remove the partial image {args.dest}: {exc}")
                return errno.EIO
            print(f"imported {args.src} ({args.fmt}, {size} bytes) as {args.dest}", file=sys.stderr)
            return 0
    except ShoalError as exc:
        _err(f"{tool}: {exc}")
        return exc.errno or errno.EIO


async def _convert(qemu_img: str, fmt: str, src: str, uri: str) -> tuple[int, str]:
    # -n: the target exists (sized from `qemu-img info`); --target-is-zero: a new image reads
    # as zeros, so zero runs of the source are skipped; -W: writes may complete out of order.
    proc = await asyncio.create_subprocess_exec(
        qemu_img, "convert", "-n", "--target-is-zero", "-W", "-f", fmt, "-O", "raw", src, uri,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, errors = await proc.communicate()
    return int(proc.returncode or 0), errors.decode(errors="replace")


def main_nbd(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: shoal nbd serve [--socket PATH | --bind HOST:PORT] [--id USER] [--read-only]"
              " [--tls-psk FILE [--no-tls-required]] [EXPORT...]")
        return 0 if argv else 1
    if argv[0] != "serve":
        _err(f"shoal nbd: unknown command {argv[0]!r} (try: serve)")
        return 1
    return cmd_serve(argv[1:])


def main_image(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: shoal image import [--from FORMAT] SRC POOL/IMAGE")
        return 0 if argv else 1
    if argv[0] != "import":
        _err(f"shoal image: unknown command {argv[0]!r} (try: import)")
        return 1
    return cmd_import(argv[1:])
