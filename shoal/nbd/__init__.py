"""NBD gateway: export RBD images (or snapshots) over the Network Block Device protocol.

`constants`, `handshake` and `transmission` are the sans-IO protocol core (bytes in,
events and bytes out); `exports` opens images on a cluster client; `allocation` answers
BLOCK_STATUS from the object map; `server` is the asyncio driver.
"""
