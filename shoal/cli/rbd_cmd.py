"""`rbd`: manage RBD images with Ceph's commands, arguments, outputs, errors and exit codes.

The command table lives here; the commands themselves are in `rbd_image_cmd` (whole images),
`rbd_snap_cmd`, `rbd_trash_cmd`, `rbd_meta_cmd` (image-meta, locks, watch), `rbd_streams_cmd`
(export, export-diff, merge-diff), `rbd_import_cmd` and `rbd_bench`. Like Ceph's rbd
(`src/tools/rbd/Shell.cc`), the tool takes the global connection options anywhere
(`build_config`), finds the command among the remaining words, parses that command's own
options, runs it on python-rados / python-rbd and exits with 0, 1 for a usage error, or the
positive errno of the failure.
"""

from __future__ import annotations

import errno
import os
import textwrap

from shoal.cli.rados_cmd import err, exit_with
from shoal.cli.rbd_args import (
    CREATE,
    DEST_SPEC,
    FORMAT,
    FORMATTED_CREATE,
    OPTIONS,
    SNAP_SPEC,
    SPEC,
    ArgError,
    Command,
    command_words,
    find_command,
    parse,
)
from shoal.cli.rbd_bench import cmd_bench
from shoal.cli.rbd_device_cmd import cmd_device_list, cmd_device_map, cmd_device_unmap
from shoal.cli.rbd_image_cmd import (
    cmd_children,
    cmd_clone,
    cmd_copy,
    cmd_create,
    cmd_diff,
    cmd_du,
    cmd_feature_disable,
    cmd_feature_enable,
    cmd_flatten,
    cmd_info,
    cmd_ls,
    cmd_pool_init,
    cmd_remove,
    cmd_rename,
    cmd_resize,
    cmd_status,
)
from shoal.cli.rbd_import_cmd import cmd_import, cmd_import_diff
from shoal.cli.rbd_meta_cmd import (
    cmd_lock_add,
    cmd_lock_ls,
    cmd_lock_rm,
    cmd_meta_get,
    cmd_meta_list,
    cmd_meta_remove,
    cmd_meta_set,
    cmd_watch,
)
from shoal.cli.rbd_session import Exit, Session, out
from shoal.cli.rbd_snap_cmd import (
    cmd_snap_create,
    cmd_snap_limit_clear,
    cmd_snap_limit_set,
    cmd_snap_ls,
    cmd_snap_protect,
    cmd_snap_purge,
    cmd_snap_rename,
    cmd_snap_rm,
    cmd_snap_rollback,
    cmd_snap_unprotect,
)
from shoal.cli.rbd_streams_cmd import cmd_export, cmd_export_diff, cmd_merge_diff
from shoal.cli.rbd_trash_cmd import (
    cmd_trash_ls,
    cmd_trash_mv,
    cmd_trash_purge,
    cmd_trash_restore,
    cmd_trash_rm,
)
from shoal.config.cli_args import ArgvError, build_config
from shoal.errors import ShoalError

DEVICE = ("device-type", "options", "read-only", "exclusive")

COMMANDS: tuple[Command, ...] = (
    Command(("bench",), None, cmd_bench, (*SNAP_SPEC, "io-type", "io-size", "io-threads", "io-total",
                                          "io-pattern", "rw-mix-read"), 1, "Simple benchmark."),
    Command(("children",), None, cmd_children, (*SNAP_SPEC, "all", *FORMAT), 1,
            "Display children of an image or its snapshot."),
    Command(("clone",), None, cmd_clone, (*SNAP_SPEC, *DEST_SPEC, *CREATE), 2,
            "Clone a snapshot into a CoW child image."),
    Command(("copy",), ("cp",), cmd_copy, (*SNAP_SPEC, *DEST_SPEC, *CREATE, "no-progress"), 2,
            "Copy src image to dest."),
    Command(("create",), None, cmd_create, (*SPEC, *FORMATTED_CREATE, "size", "no-progress"), 1,
            "Create an empty image."),
    Command(("device", "list"), ("showmapped",), cmd_device_list, ("device-type", *FORMAT), 0,
            "List mapped rbd images."),
    Command(("device", "map"), ("map",), cmd_device_map, (*SNAP_SPEC, *DEVICE), 1,
            "Map an image to a block device."),
    Command(("device", "unmap"), ("unmap",), cmd_device_unmap, (*SNAP_SPEC, *DEVICE), 1, "Unmap a rbd device."),
    Command(("diff",), None, cmd_diff, (*SNAP_SPEC, "from-snap", "whole-object", *FORMAT), 1,
            "Print extents that differ since a previous snap, or image creation."),
    Command(("disk-usage",), ("du",), cmd_du, (*SNAP_SPEC, "from-snap", "exact", "merge-snapshots", *FORMAT), 1,
            "Show disk usage stats for pool, image or snapshot."),
    Command(("export",), None, cmd_export, (*SNAP_SPEC, "path", "no-progress", "export-format"), 2,
            "Export image to file."),
    Command(("export-diff",), None, cmd_export_diff, (*SNAP_SPEC, "path", "from-snap", "whole-object",
                                                      "no-progress"), 2, "Export incremental diff to file."),
    Command(("feature", "disable"), None, cmd_feature_disable, SPEC, -1, "Disable the specified image feature."),
    Command(("feature", "enable"), None, cmd_feature_enable, SPEC, -1, "Enable the specified image feature."),
    Command(("flatten",), None, cmd_flatten, (*SPEC, "no-progress"), 1, "Fill clone with parent data (make it"
            " independent)."),
    Command(("image-meta", "get"), None, cmd_meta_get, SPEC, 2, "Image metadata get the value associated with"
            " the key."),
    Command(("image-meta", "list"), ("image-meta", "ls"), cmd_meta_list, (*SPEC, *FORMAT), 1,
            "Image metadata list keys with values."),
    Command(("image-meta", "remove"), ("image-meta", "rm"), cmd_meta_remove, SPEC, 2,
            "Image metadata remove the key and value associated."),
    Command(("image-meta", "set"), None, cmd_meta_set, SPEC, 3, "Image metadata set key with value."),
    Command(("import",), None, cmd_import, ("path", *DEST_SPEC, *FORMATTED_CREATE, "sparse-size", "no-progress",
                                            "export-format", "pool", "image"), 2, "Import image from file.",
            deprecated=(("pool", "dest-pool"), ("image", "dest"))),
    Command(("import-diff",), None, cmd_import_diff, ("path", *SPEC, "sparse-size", "no-progress"), 2,
            "Apply an incremental diff to image HEAD, then create a snapshot."),
    Command(("info",), None, cmd_info, (*SNAP_SPEC, *FORMAT), 1, "Show information about image size, striping,"
            " etc."),
    Command(("list",), ("ls",), cmd_ls, ("long", "pool", "namespace", *FORMAT), 1, "List rbd images."),
    Command(("lock", "add"), None, cmd_lock_add, (*SPEC, "shared"), 2, "Take a lock on an image."),
    Command(("lock", "list"), ("lock", "ls"), cmd_lock_ls, (*SPEC, *FORMAT), 1, "Show locks held on an image."),
    Command(("lock", "remove"), ("lock", "rm"), cmd_lock_rm, SPEC, 3, "Release a lock on an image."),
    Command(("merge-diff",), None, cmd_merge_diff, ("path", "no-progress"), 3,
            "Merge two diff exports together."),
    Command(("pool", "init"), None, cmd_pool_init, ("pool", "force"), 1, "Initialize pool for use by RBD."),
    Command(("remove",), ("rm",), cmd_remove, (*SPEC, "no-progress"), 1, "Delete an image."),
    Command(("rename",), ("mv",), cmd_rename, (*SPEC, *DEST_SPEC), 2, "Rename image within pool."),
    Command(("resize",), None, cmd_resize, (*SPEC, "size", "allow-shrink", "no-progress"), 1,
            "Resize (expand or shrink) image."),
    Command(("snap", "create"), ("snap", "add"), cmd_snap_create, (*SNAP_SPEC, "no-progress"), 1,
            "Create a snapshot."),
    Command(("snap", "limit", "clear"), None, cmd_snap_limit_clear, SPEC, 1, "Remove snapshot limit."),
    Command(("snap", "limit", "set"), None, cmd_snap_limit_set, (*SPEC, "limit"), 1,
            "Limit the number of snapshots."),
    Command(("snap", "list"), ("snap", "ls"), cmd_snap_ls, (*SPEC, *FORMAT), 1, "Dump list of image snapshots."),
    Command(("snap", "protect"), None, cmd_snap_protect, SNAP_SPEC, 1, "Prevent a snapshot from being deleted."),
    Command(("snap", "purge"), None, cmd_snap_purge, (*SPEC, "no-progress"), 1, "Delete all unprotected"
            " snapshots."),
    Command(("snap", "remove"), ("snap", "rm"), cmd_snap_rm, (*SNAP_SPEC, "no-progress", "force"), 1,
            "Delete a snapshot."),
    Command(("snap", "rename"), None, cmd_snap_rename, (*SNAP_SPEC, *DEST_SPEC, "dest-snap"), 2,
            "Rename a snapshot."),
    Command(("snap", "rollback"), ("snap", "revert"), cmd_snap_rollback, (*SNAP_SPEC, "no-progress"), 1,
            "Rollback image to snapshot."),
    Command(("snap", "unprotect"), None, cmd_snap_unprotect, SNAP_SPEC, 1, "Allow a snapshot to be deleted."),
    Command(("status",), None, cmd_status, (*SPEC, *FORMAT), 1, "Show the status of this image."),
    Command(("trash", "list"), ("trash", "ls"), cmd_trash_ls, ("pool", "namespace", "all", "long", *FORMAT), 1,
            "List trash images."),
    Command(("trash", "move"), ("trash", "mv"), cmd_trash_mv, (*SPEC, "expires-at"), 1,
            "Move an image to the trash."),
    Command(("trash", "purge"), None, cmd_trash_purge, ("pool", "namespace", "no-progress", "expired-before",
                                                         "threshold"), 1, "Remove all expired images from trash."),
    Command(("trash", "remove"), ("trash", "rm"), cmd_trash_rm, ("pool", "namespace", "image-id", "no-progress",
                                                                  "force"), 1, "Remove an image from trash."),
    Command(("trash", "restore"), None, cmd_trash_restore, ("pool", "namespace", "image-id", "image"), 1,
            "Restore an image from trash."),
    Command(("watch",), None, cmd_watch, SPEC, 1, "Watch events on image."),
)

_GLOBAL_HELP = """\
Optional arguments:
  -c [ --conf ] arg     path to cluster configuration
  --cluster arg         cluster name
  --id arg              client id (without 'client.' prefix)
  -n [ --name ] arg     client name
  -m [ --mon_host ] arg monitor host
  -K [ --keyfile ] arg  path to secret key
  -k [ --keyring ] arg  path to keyring
"""


def _name(cmd: Command) -> str:
    name = " ".join(cmd.spec)
    if cmd.alias:
        shared = len(cmd.spec) > 1 and cmd.alias[:-1] == cmd.spec[:-1]
        name += f" ({'... ' + cmd.alias[-1] if shared else ' '.join(cmd.alias)})"
    return name


def usage() -> str:
    """`rbd` / `rbd help`: the commands, as Shell::print_help lays them out."""
    lines = ["usage: rbd <command> ...", "", "Command-line interface for managing Ceph RBD images.", "",
             "Positional arguments:", "  <command>"]
    width = 38
    for cmd in COMMANDS:
        head = f"    {_name(cmd)}"
        text = textwrap.wrap(cmd.description, 79 - width) or [""]
        lines.append(head.ljust(width) + text[0] if len(head) < width else head)
        lines += [" " * width + t for t in (text[1:] if len(head) < width else text)]
    return "\n".join(lines) + "\n\n" + _GLOBAL_HELP + "\nSee 'rbd help <command>' for help on a specific command.\n"


def command_help(cmd: Command) -> str:
    """`rbd help <command>`: its description and options."""
    opts = []
    for name in cmd.options:
        opt = OPTIONS[name]
        opts.append(f"  {opt.display}{' arg' if opt.takes_value else ''}")
    return (f"usage: rbd {' '.join(cmd.spec)} [options]\n\n{cmd.description}\n\n"
            + ("Optional arguments\n" + "\n".join(opts) + "\n" if opts else ""))


def run(argv: list[str]) -> int:
    try:
        conf, rest = build_config("client", argv, os.environ)
    except (ArgvError, FileNotFoundError, ShoalError) as exc:
        err(f"rbd: {exc}")
        return 1
    words = command_words(rest)
    if any(t in ("-h", "--help") for t in rest) or words[:1] == ["help"]:
        wanted = [w for w in words if w != "help"]
        found = find_command(wanted, COMMANDS) if wanted else None
        if wanted and found is None:
            err(f"error: unknown option '{' '.join(wanted)}'\n")
            out(usage())
            return 1
        out(command_help(found[0]) if found else usage())
        return 0
    if not words:
        out(usage())
        return 0
    found = find_command(words, COMMANDS)
    if found is None:
        err(f"error: unknown option '{' '.join(words)}'\n")
        out(usage())
        return 1
    command, spec_len = found
    try:
        args = parse(rest, command, spec_len)
    except ArgError as exc:
        err(str(exc))
        return exc.code
    session = Session(conf, argv)
    try:
        code = command.handler(session, args)
    except ArgError as exc:
        err(str(exc))
        code = exc.code
    except Exit as exc:
        code = exc.code
    finally:
        session.close()
    # Shell.cc warns about deprecated options after the command ran.
    for warning in args.deprecation_warnings():
        err(warning)
    return code


def main(argv: list[str] | None = None) -> None:
    exit_with(run, argv, errno.EPIPE)


if __name__ == "__main__":
    main()
