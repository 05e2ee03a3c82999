"""The `rbd` object class (cls_rbd work-alike): importing this registers every method.

Split by the object each group works on: rbd_header (image header basics, metadata),
rbd_snap (snapshots, protection, parent, clone-v2 children), rbd_directory (rbd_directory,
rbd_id.<name>, rbd_children, rbd_trash, copyup), rbd_object_map. Wire conventions are in rbd_common.
"""

from __future__ import annotations

from shoal.cls import rbd_directory, rbd_header, rbd_object_map, rbd_snap  # noqa: F401 - register on import
