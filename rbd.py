"""`import rbd`: Shoal's drop-in for Ceph's python3-rbd (the code is in shoal/compat/rbd.py)."""

from shoal.compat.rbd import *  # noqa: F403 - this module is the re-export
from shoal.compat.rbd import __all__  # noqa: F401
