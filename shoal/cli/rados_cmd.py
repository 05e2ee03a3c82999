"""`rados`: object-level access to a pool, with Ceph's arguments, outputs, errors and exit codes.

Like Ceph's tool, it prints data on stdout and failures on stderr as
`error <doing> <pool>/<object>: (<errno>) <strerror>`, and exits 1 on any failure
(the few option-parsing failures Ceph returns -EINVAL from exit 234, as Ceph's do).
Commands run over the client core (`RadosClient`) on the shared loop thread; `bench`
and `cleanup` live in `rados_bench.py`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NoReturn

from shoal.cli import rados_render
from shoal.client.loop_thread import LoopThread
from shoal.client.objecter import OpReply
from shoal.client.rados_client import RadosClient
from shoal.config.cli_args import ArgvError, build_config
from shoal.config.config import Config
from shoal.errors import ShoalError
from shoal.placement.osdmap import Pool
from shoal.wire.osd_op import OpBuilder

EXIT_FAIL = 1
EXIT_EINVAL = 256 - errno.EINVAL  # Ceph's rados returns -EINVAL from main for bad option values
DEFAULT_OP_SIZE = 1 << 22
OMAP_PAGE = 1 << 10  # keys per omap request (Ceph's MAX_OMAP_BYTES_PER_REQUEST)
ALL_NSPACES = "\x01"

USAGE = """\
usage: rados [options] [commands]
POOL COMMANDS
   lspools                          list pools
   df                               show per-pool and total usage
   ls                               list objects in pool

OBJECT COMMANDS
   get <obj-name> <outfile>         fetch object
   put <obj-name> <infile> [--offset offset]
                                    write object with start offset (default:0)
   append <obj-name> <infile>       append object
   truncate <obj-name> length       truncate object
   create <obj-name>                create object
   rm <obj-name> ...                remove object(s)
   listxattr <obj-name>
   getxattr <obj-name> attr
   setxattr <obj-name> attr val
   rmxattr <obj-name> attr
   stat <obj-name>                  stat the named object
   stat2 <obj-name>                 stat the named object, with high precision time
   bench <seconds> write|seq|rand [-t concurrent_operations] [--no-cleanup] [--run-name run_name]
                                    default is 16 concurrent IOs and 4 MB ops
                                    default is to clean up after write benchmark
                                    default run-name is 'benchmark_last_metadata'
   cleanup [--run-name run_name] [--prefix prefix]
                                    clean up a previous benchmark operation
   listomapkeys <obj-name>          list the keys in the object map
   listomapvals <obj-name>          list the keys and vals in the object map
   getomapval <obj-name> <key> [file] show the value for the specified key
                                    in the object's object map
   setomapval <obj-name> <key> <val | -i file>
   rmomapkey <obj-name> <key>
   clearomap <obj-name> [obj-name2 obj-name3...] clear all the omap keys for the specified objects
   getomapheader <obj-name> [file]
   setomapheader <obj-name> <val>

GLOBAL OPTIONS:
   -p pool, --pool=pool             select the pool by name
   -N namespace, --namespace=namespace
                                    the namespace of the objects
   --all                            with ls: list objects of all namespaces
   --default                        with ls: only the default namespace (wins over --all)
   -f [--format plain|json|json-pretty]
   -b op_size                       block size for put/get and for write benchmarking
   -O object_size                   object size for write benchmarking
   --max-objects                    the most objects a write benchmark writes
   -t N, --concurrent-ios=N         operations in flight in bench and cleanup
   -o file, --output=file           with ls: write the listing to a file
   -i file, --input-file=file       with setxattr/setomapval: take the value from a file
   --omap-key-file file             read the omap key from a file
   -c conf, --conf conf             ceph.conf to use
   --id id, -n type.id              who to authenticate as
   -m mon_host, -k keyring          monitors and keyring, overriding ceph.conf
"""

# rados' own options: name -> (key in opts, takes a value)
_OPTIONS: dict[str, tuple[str, bool]] = {
    "--force-full": ("force-full", False), "-d": ("delete-after", False), "--delete-after": ("delete-after", False),
    "-C": ("create", False), "--create": ("create", False), "--create-pool": ("create", False),
    "--pretty-format": ("pretty-format", False), "--show-time": ("show-time", False),
    "--no-cleanup": ("no-cleanup", False), "--no-hints": ("no-hints", False), "--reuse-bench": ("reuse-bench", False),
    "--no-verify": ("no-verify", False), "--all": ("all", False), "--default": ("default", False),
    "--write-omap": ("write-dest-omap", False), "--write-object": ("write-dest-obj", False),
    "--write-xattr": ("write-dest-xattr", False), "--with-clones": ("with-clones", False),
    "--with-reference": ("with-reference", False), "--striper": ("striper", False),
    "--run-name": ("run-name", True), "--prefix": ("prefix", True), "-p": ("pool", True), "--pool": ("pool", True),
    "--target-pool": ("target_pool", True), "--object-locator": ("object_locator", True),
    "--target-locator": ("target_locator", True), "--target-nspace": ("target_nspace", True),
    "-t": ("concurrent-ios", True), "--concurrent-ios": ("concurrent-ios", True),
    "--block-size": ("block-size", True), "-b": ("block-size", True), "--object-size": ("object-size", True),
    "-O": ("object-size", True), "--max-objects": ("max-objects", True), "--offset": ("offset", True),
    "-s": ("snap", True), "--snap": ("snap", True), "-S": ("snapid", True), "--snapid": ("snapid", True),
    "-f": ("format", True), "--format": ("format", True), "-N": ("namespace", True),
    "--namespace": ("namespace", True), "-o": ("output", True), "--output": ("output", True),
    "--omap-key-file": ("omap-key-file", True), "--pgid": ("pgid", True),
    "-i": ("input-file", True), "--input-file": ("input-file", True),
}


class Fail(Exception):
    """A failure already described on stderr; carries the exit status."""

    def __init__(self, code: int = EXIT_FAIL) -> None:
        super().__init__(code)
        self.code = code


def strerror(err: int) -> str:
    """Ceph's cpp_strerror: "(2) No such file or directory"."""
    err = abs(err)
    return f"({err}) {os.strerror(err)}"


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def usage_fail() -> Fail:
    sys.stderr.write(USAGE)
    return Fail(EXIT_FAIL)


# -- argument parsing ---------------------------------------------------------------------------------

@dataclass
class Options:
    opts: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def has(self, key: str) -> bool:
        return key in self.opts

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.opts.get(key, default)


def _option_name(token: str) -> str:
    """`--run_name` and `--run-name` are the same option (Ceph's argparse treats _ and - alike)."""
    if token.startswith("--"):
        return "--" + token[2:].replace("_", "-")
    return token


def parse_options(words: list[str]) -> Options:
    out = Options()
    i = 0
    while i < len(words):
        token = words[i]
        if token == "--":
            out.args.extend(words[i + 1:])
            break
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        spec = _OPTIONS.get(_option_name(name))
        if spec is None or (eq and not spec[1]):
            out.args.append(token)  # positional (Ceph's rados does not reject unknown dashes here)
        elif spec[1]:
            if eq:
                out.opts[spec[0]] = inline
            elif i + 1 < len(words):
                i += 1
                out.opts[spec[0]] = words[i]
            else:
                out.args.append(token)  # a trailing option without its value is left as a word
        else:
            out.opts[spec[0]] = "true"
        i += 1
    return out


_IEC = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50, "E": 1 << 60}


def parse_iec(text: str) -> int:
    """Ceph's strict_iecstrtoll: "4096", "4K", "4M", "1Gi", "2MiB" -> bytes."""
    m = re.fullmatch(r"\s*([+-]?\d+)\s*([KMGTPE]?)(i?B?)\s*", text)
    if not m or (m.group(3) and not m.group(2)):
        raise ValueError(f"strict_iecstrtoll: expected integer, got: '{text}'")
    return int(m.group(1)) * _IEC[m.group(2)]


def int_opt(o: Options, key: str, default: int, minimum: int = 0) -> int:
    text = o.get(key)
    if text is None:
        return default
    try:
        value = parse_iec(text)
    except ValueError as exc:
        err(f"Invalid value for {key}: {exc}")
        raise Fail(EXIT_EINVAL) from None
    if value < minimum:
        err(f"Invalid value for {key}: must be at least {minimum}, got '{text}'")
        raise Fail(EXIT_EINVAL)
    return value


def strtoll(text: str) -> int | None:
    """C strtoll with base 10 that must consume the whole word (rados' size/timestamp checks)."""
    m = re.fullmatch(r"\s*([+-]?\d+)", text)
    return int(m.group(1)) if m else None


# -- output formats ---------------------------------------------------------------------------------------

def dump_json(data: Any, fmt: str) -> bytes:
    """Ceph's JSONFormatter: compact without a final newline; json-pretty indents 4 and ends in one."""
    if fmt == "json-pretty":
        return (json.dumps(data, indent=4) + "\n").encode()
    return json.dumps(data, separators=(",", ":")).encode()


def hexdump(data: bytes) -> str:
    """bufferlist::hexdump as rados prints values: `hexdump -C` rows, repeated rows as "*", then the length."""
    if not data:
        return ""
    per, rows = 16, []
    last = data[0]
    was_same = did_star = False
    for o in range(0, len(data), per):
        row = data[o:o + per]
        if o + per < len(data):
            same = True
            for i, c in enumerate(row):
                if c != last:
                    if i == 0:
                        last, was_same, did_star = c, False, False
                    else:
                        same = False
            if same:
                if was_same:
                    if not did_star:
                        rows.append("*")
                        did_star = True
                    continue
                was_same = True
            else:
                was_same = did_star = False
        hexes = "".join((" " if i == 8 else "") + f" {c:02x}" for i, c in enumerate(row))
        hexes += "".join((" " if i == 8 else "") + "   " for i in range(len(row), per))
        text = "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in row)
        rows.append(f"{o:08x} {hexes}  |{text}|")
    return "\n".join(rows) + f"\n{len(data):08x}\n"


def is_printable(text: str) -> bool:
    return all(0x20 <= b < 0x7F for b in text.encode())


# -- the connected tool --------------------------------------------------------------------------------------

class Tool:
    """One connected client plus what the command line selected (pool, namespace, format)."""

    def __init__(self, conf: Config, o: Options) -> None:
        self.conf = conf
        self.o = o
        self.loop = LoopThread.shared()
        self.client = RadosClient(conf, conf.entity_name)
        self.pool: Pool | None = None
        self.pool_name: str | None = o.get("pool")
        self.nspace = o.get("namespace") or ""
        self.fmt = o.get("format")
        self.op_size = DEFAULT_OP_SIZE

    def run(self, coro: Any) -> Any:
        return self.loop.run(coro)

    def connect(self) -> None:
        timeout = float(self.conf.get("client_mount_timeout") or 300)
        try:
            self.run(self.client.connect(timeout))
        except ShoalError as exc:
            err(f"couldn't connect to cluster: {strerror(exc.errno)}")
            raise Fail(EXIT_FAIL) from None
        except ValueError as exc:  # a malformed key in the config (shoal/auth/keyring.py)
            err(f"{exc}\ncouldn't connect to cluster: {strerror(errno.EINVAL)}")
            raise Fail(EXIT_FAIL) from None

    def close(self) -> None:
        try:
            self.run(self.client.shutdown())
        except ShoalError:
            pass

    def open_pool(self) -> None:
        name = self.pool_name
        if name is None:
            return
        pool = self.client.pool_by_name(name)
        if pool is None:
            try:
                self.run(self.client.wait_for_latest_map())
            except ShoalError:
                pass
            pool = self.client.pool_by_name(name)
        if pool is None:
            err(f"error opening pool {name}: {strerror(errno.ENOENT)}")
            raise Fail(EXIT_FAIL)
        self.pool = pool

    def op(self, oid: str, builder: OpBuilder, nspace: str | None = None) -> OpReply:
        """Run an op vector; a client-side failure comes back as a negative result too."""
        assert self.pool is not None
        try:
            return self.run(self.client.operate(self.pool.id, oid, builder, self.nspace if nspace is None else nspace))
        except ShoalError as exc:
            return OpReply(-(exc.errno or errno.EIO), [], b"")

    def one(self, oid: str, op: str, payload: bytes | None = None, **args: Any) -> OpReply:
        b = OpBuilder()
        b.add(op, payload, **args)
        return self.op(oid, b)

    def mon(self, cmd: dict[str, Any]) -> tuple[int, bytes, str]:
        try:
            return self.run(self.client.mon_command(cmd))
        except ShoalError as exc:
            return -(exc.errno or errno.EIO), b"", str(exc)


def _stdout() -> BinaryIO:
    return sys.stdout.buffer


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as f:
        return f.read()


# -- commands -----------------------------------------------------------------------------------------------

def cmd_lspools(t: Tool) -> None:
    _stdout().write(rados_render.render_lspools(p.name for p in t.client.pools()).encode())


def cmd_df(t: Tool) -> None:
    ret, outbuf, _ = t.mon({"prefix": "df", "format": "json"})
    if ret < 0:
        err(f"error fetching pool stats: {strerror(ret)}")
        raise Fail()
    doc = json.loads(outbuf)
    pools_by_name = {p.name: p for p in t.client.pools()}
    entries = []
    for entry in doc.get("pools", []):
        if t.pool_name is not None and entry["name"] != t.pool_name:
            continue
        st = entry.get("stats", {})
        used, objects = int(st.get("bytes_used", 0)), int(st.get("objects", 0))
        pool = pools_by_name.get(entry["name"])
        entries.append({
            "name": entry["name"], "id": entry.get("id", pool.id if pool else -1),
            "size_bytes": used, "size_kb": (used + 1023) // 1024, "num_objects": objects,
            "num_object_clones": 0, "num_object_copies": objects * (pool.size if pool else 1),
            "num_objects_missing_on_primary": 0, "num_objects_unfound": 0, "num_objects_degraded": 0,
            "read_ops": 0, "read_bytes": 0, "write_ops": 0, "write_bytes": 0,
            "compress_bytes_used": 0, "compress_under_bytes": 0,
        })
    entries.sort(key=lambda e: e["name"])  # rados keeps its pool stats in a map by name
    stats = doc.get("stats", {})
    total_kb = int(stats.get("total_bytes", 0)) // 1024
    avail_kb = int(stats.get("total_avail_bytes", 0)) // 1024
    total_objects = sum(int(p.get("stats", {}).get("objects", 0)) for p in doc.get("pools", []))
    data = {"pools": entries, "total_objects": total_objects, "total_used": total_kb - avail_kb,
            "total_avail": avail_kb, "total_space": total_kb}
    if t.fmt:
        _stdout().write(dump_json(data, t.fmt))
    else:
        _stdout().write(rados_render.render_df(data).encode())


def cmd_ls(t: Tool) -> None:
    if t.pool is None:
        err("either pool name or pg id needs to be specified")
        raise Fail()
    args, output = t.o.args, t.o.get("output")
    use_stdout = output is None and (len(args) < 2 or args[1] == "-")
    if not use_stdout and output is None:
        err("Please use --output to specify the output file name")
        raise Fail()
    wildcard = t.o.has("all") and not t.o.has("default") and not t.o.has("namespace")
    nspace = None if wildcard or t.nspace == ALL_NSPACES else t.nspace

    async def collect() -> list[tuple[str, str]]:
        assert t.pool is not None
        return [item async for item in t.client.list_objects(t.pool.id, nspace)]

    try:
        objects = t.run(collect())
    except ShoalError as exc:
        err(f"rados_nobjects_list_next2: {os.strerror(exc.errno or errno.EIO)}")
        raise Fail() from None
    if t.fmt:
        body = dump_json([{"namespace": ns, "name": name} for ns, name in objects], t.fmt)
    else:
        body = "".join(f"{ns}\t{name}\n" if wildcard else f"{name}\n" for ns, name in objects).encode()
    if use_stdout:
        _stdout().write(body)
    else:
        assert output is not None
        with open(output, "wb") as f:
            f.write(body)


def _need(t: Tool, nargs: int, most: int | None = None) -> list[str]:
    args = t.o.args
    if t.pool is None or len(args) < nargs or (most is not None and len(args) > most):
        raise usage_fail()
    return args


def cmd_stat(t: Tool, precise: bool = False) -> None:
    oid = _need(t, 2)[1]
    assert t.pool_name is not None
    reply = t.one(oid, "stat")
    if reply.result < 0:
        sys.stderr.write(rados_render.render_stat_error(t.pool_name, oid, -reply.result,
                                                        os.strerror(-reply.result)))
        raise Fail()
    out = reply.outs[0]
    _stdout().write(rados_render.render_stat(t.pool_name, oid, float(out["mtime"]), int(out["size"]),
                                             precise=precise).encode())


def cmd_get(t: Tool) -> None:
    args = _need(t, 3)
    oid, outfile = args[1], args[2]
    try:
        # As Ceph, the output file is opened (and truncated) before the object is read.
        out = _stdout() if outfile == "-" else open(outfile, "wb")  # noqa: SIM115 - closed below
    except OSError as exc:
        err(f"failed to open file: {os.strerror(exc.errno or errno.EIO)}")
        err(f"error getting {t.pool_name}/{oid}: {strerror(exc.errno or errno.EIO)}")
        raise Fail() from None
    try:
        offset = 0
        while True:
            reply = t.one(oid, "read", off=offset, len=t.op_size)
            if reply.result < 0:
                err(f"error getting {t.pool_name}/{oid}: {strerror(reply.result)}")
                raise Fail()
            chunk = reply.out_data(0)
            out.write(chunk)
            if len(chunk) < t.op_size:
                break
            offset += len(chunk)
    finally:
        if out is not _stdout():
            out.close()
        else:
            out.flush()


def cmd_put(t: Tool, append: bool = False) -> None:
    args = _need(t, 3)
    oid, infile = args[1], args[2]
    offset_given = t.o.has("offset")
    start = int_opt(t.o, "offset", 0) if not append else 0
    try:
        src = sys.stdin.buffer if infile == "-" else open(infile, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        err(f"error reading input file {infile}: {strerror(exc.errno or errno.EIO)}")
        raise Fail() from None
    verb = "appending" if append else "putting"
    try:
        offset = start
        while True:
            chunk = src.read(t.op_size)
            if append:
                reply = t.one(oid, "append", chunk)
            elif not chunk:
                if offset != start:
                    break
                # An empty input still creates the object (and a hole up to --offset).
                b = OpBuilder()
                b.add("writefull", b"")
                if offset:
                    b.add("truncate", size=offset)
                reply = t.op(oid, b)
            elif offset == 0 and not offset_given:
                reply = t.one(oid, "writefull", chunk)
            else:
                reply = t.one(oid, "write", chunk, off=offset)
            if reply.result < 0:
                err(f"error {verb} {t.pool_name}/{oid}: {strerror(reply.result)}")
                raise Fail()
            offset += len(chunk)
            if len(chunk) < t.op_size:
                break
    finally:
        if src is not sys.stdin.buffer:
            src.close()


def cmd_truncate(t: Tool) -> None:
    args = _need(t, 3)
    oid, text = args[1], args[2]
    size = strtoll(text)
    if size is None:
        err(f"Invalid value for size: '{text}'")
        raise Fail()
    if size < 0:
        err("error, cannot truncate to negative value")
        raise usage_fail()
    reply = t.one(oid, "truncate", size=size)
    if reply.result < 0:
        err(f"error truncating oid {oid} to {size}: {strerror(reply.result)}")
        err(f"error {-reply.result}: {strerror(reply.result)}")
        raise Fail()


def cmd_create(t: Tool) -> None:
    oid = _need(t, 2)[1]
    reply = t.one(oid, "create", excl=True)
    if reply.result < 0:
        err(f"error creating {t.pool_name}/{oid}: {strerror(reply.result)}")
        raise Fail()


def cmd_rm(t: Tool) -> None:
    for oid in _need(t, 2)[1:]:
        reply = t.one(oid, "delete")
        if reply.result < 0:
            name = f"{t.nspace}/{oid}" if t.nspace else oid
            err(f"error removing {t.pool_name}>{name}: {strerror(reply.result)}")
            raise Fail()


def _value_arg(t: Tool, args: list[str], index: int) -> bytes:
    """The value at args[index], else the -i/--input-file file, else stdin."""
    if len(args) > index:
        return args[index].encode()
    path = t.o.get("input-file")
    try:
        return _read_input(path if path is not None else "-")
    except OSError as exc:
        err(f"error reading input file {path}: {strerror(exc.errno or errno.EIO)}")
        raise Fail() from None


def cmd_setxattr(t: Tool) -> None:
    args = _need(t, 3, 4)
    oid, name = args[1], args[2]
    reply = t.one(oid, "setxattr", _value_arg(t, args, 3), name=name)
    if reply.result < 0:
        err(f"error setting xattr {t.pool_name}/{oid}/{name}: {strerror(reply.result)}")
        raise Fail()


def cmd_getxattr(t: Tool) -> None:
    args = _need(t, 3)
    oid, name = args[1], args[2]
    reply = t.one(oid, "getxattr", name=name)
    if reply.result < 0:
        err(f"error getting xattr {t.pool_name}/{oid}/{name}: {strerror(reply.result)}")
        raise Fail()
    _stdout().write(reply.out_data(0))


def cmd_rmxattr(t: Tool) -> None:
    args = _need(t, 3)
    oid, name = args[1], args[2]
    reply = t.one(oid, "rmxattr", name=name)
    if reply.result < 0:
        err(f"error removing xattr {t.pool_name}/{oid}/{name}: {strerror(reply.result)}")
        raise Fail()


def cmd_listxattr(t: Tool) -> None:
    oid = _need(t, 2)[1]
    reply = t.one(oid, "getxattrs")
    if reply.result < 0:
        err(f"error getting xattr set {t.pool_name}/{oid}: {strerror(reply.result)}")
        raise Fail()
    names = sorted(reply.outs[0]["attrs"], key=lambda s: str(s).encode())
    _stdout().write("".join(f"{n}\n" for n in names).encode())


def _omap_key(t: Tool, args: list[str]) -> tuple[str, str, int]:
    """(key, key as printed, number of words the key took) from --omap-key-file or the arguments."""
    path = t.o.get("omap-key-file")
    if path is None:
        if len(args) < 3:
            raise usage_fail()
        return args[2], args[2], 1
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        err(f"error reading {path}: {os.strerror(exc.errno or errno.EIO)}")
        raise Fail() from None
    key = raw.decode("utf-8", errors="surrogateescape")
    return key, key if is_printable(key) else "(binary key)", 0


def cmd_setomapval(t: Tool) -> None:
    args = t.o.args
    key, pretty, used = _omap_key(t, args)
    first_value = 2 + used
    _need(t, first_value, first_value + 1)
    oid = args[1]
    reply = t.one(oid, "omap_setkeys", kv={key: _value_arg(t, args, first_value)})
    if reply.result < 0:
        err(f"error setting omap value {t.pool_name}/{oid}/{pretty}: {strerror(reply.result)}")
        raise Fail()


def cmd_getomapval(t: Tool) -> None:
    args = t.o.args
    key, pretty, used = _omap_key(t, args)
    _need(t, 2 + used, 3 + used)
    oid = args[1]
    outfile = args[2 + used] if len(args) > 2 + used else None
    reply = t.one(oid, "omap_get_vals_by_keys", keys=[key])
    if reply.result < 0:
        err(f"error getting omap value {t.pool_name}/{oid}/{pretty}: {strerror(reply.result)}")
        raise Fail()
    vals = reply.outs[0].get("vals", {})
    if key not in vals:
        _stdout().write(f"No such key: {t.pool_name}/{oid}/{pretty}\n".encode())
        raise Fail()
    value = bytes(vals[key])
    if outfile:
        err(f"Writing to {outfile}")
        _dump_data(outfile, value)
    else:
        _stdout().write(f"value ({len(value)} bytes) :\n{hexdump(value)}\n".encode())


def _dump_data(path: str, data: bytes) -> None:
    if path == "-":
        _stdout().write(data)
        return
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        err(f"failed to open file: {os.strerror(exc.errno or errno.EIO)}")
        raise Fail() from None


def cmd_rmomapkey(t: Tool) -> None:
    args = t.o.args
    key, pretty, used = _omap_key(t, args)
    _need(t, 2 + used, 2 + used)
    oid = args[1]
    reply = t.one(oid, "omap_rmkeys", keys=[key])
    if reply.result < 0:
        err(f"error removing omap key {t.pool_name}/{oid}/{pretty}: {strerror(reply.result)}")
        raise Fail()


def cmd_clearomap(t: Tool) -> None:
    for oid in _need(t, 2)[1:]:
        reply = t.one(oid, "omap_clear")
        if reply.result < 0:
            err(f"error clearing omap keys {t.pool_name}/{oid}/{strerror(reply.result)}")
            raise Fail()


def _omap_pages(t: Tool, oid: str, op: str) -> Any:
    """Yield pages of an omap listing ("keys" or "vals" outs), OMAP_PAGE entries each."""
    start = ""
    while True:
        reply = t.one(oid, op, start_after=start, filter_prefix="", max_return=OMAP_PAGE)
        if reply.result < 0:
            yield reply.result
            return
        out = reply.outs[0]
        yield out
        entries = out.get("keys") if op == "omap_get_keys" else [k for k, _ in out.get("vals", [])]
        if not out.get("more") or not entries:
            return
        start = str(entries[-1])


def cmd_listomapkeys(t: Tool) -> None:
    oid = _need(t, 2)[1]
    for page in _omap_pages(t, oid, "omap_get_keys"):
        if isinstance(page, int):
            err(f"error getting omap key set {t.pool_name}/{oid}: {strerror(page)}")
            raise Fail()
        _stdout().write("".join(f"{k}\n" for k in page.get("keys", [])).encode())


def cmd_listomapvals(t: Tool) -> None:
    oid = _need(t, 2)[1]
    for page in _omap_pages(t, oid, "omap_get_vals"):
        if isinstance(page, int):
            err(f"error getting omap keys {t.pool_name}/{oid}: {strerror(page)}")
            raise Fail()
        parts = []
        for k, v in page.get("vals", []):
            key, value = str(k), bytes(v)
            if is_printable(key):
                parts.append(f"{key}\n")
            else:  # a key with unprintable bytes is dumped in hex too
                raw = key.encode("utf-8", errors="surrogateescape")
                parts.append(f"key ({len(raw)} bytes):\n{hexdump(raw)}\n")
            parts.append(f"value ({len(value)} bytes) :\n{hexdump(value)}\n")
        _stdout().write("".join(parts).encode("utf-8", errors="surrogateescape"))


def cmd_getomapheader(t: Tool) -> None:
    args = _need(t, 2)
    oid = args[1]
    reply = t.one(oid, "omap_get_header")
    if reply.result < 0:
        err(f"error getting omap header {t.pool_name}/{oid}: {strerror(reply.result)}")
        raise Fail()
    header = reply.out_data(0)
    if len(args) >= 3:
        err(f"Writing to {args[2]}")
        _dump_data(args[2], header)
    else:
        _stdout().write(f"header ({len(header)} bytes) :\n{hexdump(header)}\n".encode())


def cmd_setomapheader(t: Tool) -> None:
    args = _need(t, 3)
    oid = args[1]
    reply = t.one(oid, "omap_setheader", args[2].encode())
    if reply.result < 0:
        err(f"error setting omap value {t.pool_name}/{oid}: {strerror(reply.result)}")
        raise Fail()


def cmd_bench(t: Tool) -> None:
    from shoal.cli.rados_bench import run_bench

    run_bench(t)


def cmd_cleanup(t: Tool) -> None:
    from shoal.cli.rados_bench import run_cleanup

    run_cleanup(t)


COMMANDS: dict[str, Callable[[Tool], None]] = {
    "lspools": cmd_lspools, "df": cmd_df, "ls": cmd_ls, "stat": cmd_stat,
    "stat2": lambda t: cmd_stat(t, precise=True), "get": cmd_get, "put": cmd_put,
    "append": lambda t: cmd_put(t, append=True), "truncate": cmd_truncate, "create": cmd_create, "rm": cmd_rm,
    "setxattr": cmd_setxattr, "getxattr": cmd_getxattr, "rmxattr": cmd_rmxattr, "listxattr": cmd_listxattr,
    "setomapval": cmd_setomapval, "getomapval": cmd_getomapval, "rmomapkey": cmd_rmomapkey,
    "clearomap": cmd_clearomap, "listomapkeys": cmd_listomapkeys, "listomapvals": cmd_listomapvals,
    "getomapheader": cmd_getomapheader, "setomapheader": cmd_setomapheader,
    "bench": cmd_bench, "cleanup": cmd_cleanup,
}


def run(argv: list[str]) -> int:
    if not argv:
        err("rados: -h or --help for usage")
        return EXIT_FAIL
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(USAGE)
        return 0
    try:
        conf, rest = build_config("client", argv, os.environ)
    except (ArgvError, FileNotFoundError, ShoalError) as exc:
        err(f"rados: {exc}")
        return EXIT_FAIL
    o = parse_options(rest)
    if not o.args:
        err("rados: you must give an action. Try --help")
        return EXIT_FAIL
    t = Tool(conf, o)
    fmt = o.get("format")
    if fmt is not None and fmt not in ("json", "json-pretty", "plain"):
        err(f"unrecognized format: {fmt}")
        return EXIT_EINVAL
    t.fmt = None if fmt in (None, "plain") else fmt
    try:
        op_size = int_opt(o, "block-size", DEFAULT_OP_SIZE, minimum=1)
        for key in ("concurrent-ios", "object-size", "max-objects", "offset"):
            int_opt(o, key, 0)
    except Fail as exc:
        return exc.code
    t.op_size = op_size
    try:
        t.connect()
    except Fail as exc:
        return exc.code
    try:
        return _dispatch(t)
    except Fail as exc:
        return exc.code
    finally:
        t.close()


def _dispatch(t: Tool) -> int:
    o = t.o
    if o.has("create"):
        if t.pool_name is None:
            err("--create-pool requested but pool_name was not specified!")
            sys.stderr.write(USAGE)
            return EXIT_FAIL
        if t.client.pool_by_name(t.pool_name) is None:
            ret, _, _ = t.mon({"prefix": "osd pool create", "pool": t.pool_name})
            if ret < 0:
                err(f"error creating pool {t.pool_name}: {strerror(ret)}")
                return EXIT_FAIL
    t.open_pool()
    if o.has("snap") or o.has("snapid"):
        if t.pool_name is None:
            err("pool name must be specified with --snap")
            return EXIT_FAIL
        err(f"error looking up snap '{o.get('snap') or o.get('snapid')}': {strerror(errno.ENOENT)}")
        return EXIT_FAIL
    if o.has("namespace") and t.pool_name is None:
        err("pool name must be specified with --namespace")
        return EXIT_FAIL
    name = o.args[0]
    handler = COMMANDS.get(name)
    if handler is None:
        err(f"unrecognized command {name}; -h or --help for usage")
        err(f"error {errno.EINVAL}: {strerror(errno.EINVAL)}")
        return EXIT_FAIL
    handler(t)
    sys.stdout.flush()
    return 0


def exit_with(run_tool: Callable[[list[str]], int], argv: list[str] | None, broken_pipe: int) -> NoReturn:
    """Run a CLI and exit with its code: 130 on ^C, `broken_pipe` when stdout's reader went away."""
    try:
        code = run_tool(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = broken_pipe
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = code or broken_pipe
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    exit_with(run, argv, EXIT_FAIL)


if __name__ == "__main__":
    # Run the module under its package name, so rados_bench (which imports it) shares its classes.
    from shoal.cli import rados_cmd

    rados_cmd.main()
