"""`import rados`: Shoal's drop-in for Ceph's python3-rados (the code is in shoal/compat/rados.py)."""

from shoal.compat.rados import *  # noqa: F403 - this module is the re-export
from shoal.compat.rados import __all__  # noqa: F401
