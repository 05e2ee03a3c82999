"""`rbd device map -t nbd` / `device list` (`showmapped`) / `device unmap` without a kernel.

Mapping an image starts a detached `shoal nbd serve` for that one export on a Unix socket
under the run dir (`$SHOAL_RUN_DIR`, see shoal/nbd/gateway.py) and prints its NBD URI
where rbd-nbd prints /dev/nbdN; qemu, nbdcopy or nbd-client take it from there. Each
mapping is a JSON record next to the socket; `list` drops records whose gateway is gone.
As for rbd-nbd, the id of a mapping is the gateway's pid.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from shoal.cli.rados_cmd import err
from shoal.cli.rbd_args import Args, image_spec
from shoal.cli.rbd_render import table
from shoal.cli.rbd_session import Exit, Session, emit, out
from shoal.nbd.gateway import default_run_dir
from shoal.rbd.naming import parse_image_spec

START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def _dir() -> str:
    return os.path.join(default_run_dir(), "rbd-nbd")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(ChildProcessError):  # our own child that exited: reap it
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    return True


def mappings() -> list[dict[str, Any]]:
    """Live mappings, oldest first; records of gateways that are gone are removed."""
    found = []
    try:
        names = sorted(os.listdir(_dir()))
    except FileNotFoundError:
        return []
    for entry in names:
        if not entry.endswith(".json"):
            continue
        path = os.path.join(_dir(), entry)
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError):
            continue
        if _alive(int(record.get("id", 0))):
            found.append(record)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
    return sorted(found, key=lambda r: r["slot"])


def cmd_device_list(_s: Session, a: Args) -> int:
    kind = a.get("device-type", "nbd")
    rows = mappings() if kind == "nbd" else []
    data = [{"id": r["id"], "pool": r["pool"], "namespace": r["namespace"], "name": r["name"],
             "snap": r["snap"] or "-", "device": r["device"]} for r in rows]
    plain = table([(h, "left") for h in ("id", "pool", "namespace", "image", "snap", "device")],
                  [[str(d["id"]), d["pool"], d["namespace"], d["name"], d["snap"], d["device"]] for d in data]
                  ) if data else ""
    emit(a, data, plain, "devices", {"devices": "device"})
    return 0


def _global_args(s: Session) -> list[str]:
    """The cluster options the gateway needs to act as this command's user."""
    conf = s.conf
    args = ["--name", conf.entity_name]
    if conf.conf_path:
        args += ["--conf", conf.conf_path]
    for option in ("keyring", "key", "keyfile", "mon_host"):
        if conf.has_option(option) and conf.source(option) in ("cmdline", "override"):
            args += [f"--{option.replace('_', '-')}", conf.get_str(option)]
    return args


def cmd_device_map(s: Session, a: Args) -> int:
    kind = a.get("device-type", "nbd")
    if kind != "nbd":
        err(f"rbd: device type '{kind}' is not supported: Shoal maps images to NBD exports (-t nbd) only")
        raise Exit(errno.EOPNOTSUPP)
    spec = image_spec(a)
    spec.pool = spec.pool or s.default_pool()
    # Fail here, with rbd's messages, if the image or snapshot does not exist.
    with s.image(spec, read_only=True, failing="rbd: map failed", at_snap=True):
        pass
    export = "/".join(p for p in (spec.pool, spec.namespace, spec.image) if p) + (f"@{spec.snap}" if spec.snap else "")
    taken = {r["slot"] for r in mappings()}
    slot = next(i for i in range(len(taken) + 1) if i not in taken)
    os.makedirs(_dir(), mode=0o700, exist_ok=True)
    sock = os.path.join(_dir(), f"nbd{slot}.sock")
    log_path = os.path.join(_dir(), f"nbd{slot}.log")
    argv = [sys.executable, "-m", "shoal.cli.shoal_cmd", "nbd", "serve", *_global_args(s), "--socket", sock,
            *(["--read-only"] if a.flag("read-only") else []), export]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                start_new_session=True)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
    line = proc.stdout.readline().decode().strip() if ready else ""
    proc.stdout.close()
    if not line:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        proc.wait(STOP_TIMEOUT)
        with open(log_path, errors="replace") as f:
            tail = f.read()[-2000:].strip()
        err(f"rbd: the NBD gateway for {export} did not start{': ' + tail if tail else ''}")
        err(f"rbd: map failed: ({errno.EIO}) {os.strerror(errno.EIO)}")
        raise Exit(errno.EIO)
    uri = line.replace("nbd+unix:///?", f"nbd+unix:///{export}?", 1)
    record = {"id": proc.pid, "slot": slot, "pool": spec.pool, "namespace": spec.namespace, "name": spec.image,
              "snap": spec.snap, "device": uri, "socket": sock, "log": log_path}
    tmp = os.path.join(_dir(), f".nbd{slot}.json.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(_dir(), f"nbd{slot}.json"))
    out(uri + "\n")
    return 0


def _matches(record: dict[str, Any], target: str) -> bool:
    if target in (record["device"], record["socket"], str(record["id"])):
        return True
    try:
        pool, nspace, image, snap = parse_image_spec(target, validate=False)
    except Exception:  # noqa: BLE001 - not an image spec: matched nothing
        return False
    return ((pool or record["pool"]) == record["pool"] and nspace == record["namespace"]
            and image == record["name"] and (snap or "") == record["snap"])


def cmd_device_unmap(_s: Session, a: Args) -> int:
    target = a.get("image") or (a.positional[0] if a.positional else "")
    if not target:
        err("rbd: unmap requires either image name or device path")
        raise Exit(errno.EINVAL)
    found = [r for r in mappings() if _matches(r, target)]
    if not found:
        err(f"rbd: {target}: not mapped")
        err(f"rbd: unmap failed: ({errno.ENOENT}) {os.strerror(errno.ENOENT)}")
        raise Exit(errno.ENOENT)
    record = found[0]
    pid = int(record["id"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        err(f"rbd: the NBD gateway (pid {pid}) for {record['device']} did not stop")
        raise Exit(errno.EBUSY)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(_dir(), f"nbd{record['slot']}.json"))
    return 0
