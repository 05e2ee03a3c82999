"""Auth benchmark: python bench/bench_auth.py [--seconds S] [--repeat N]

Cost of one frame end to end (sender: seal + crc32c; receiver: payload landed in a
fresh buffer as FrameDecoder does, crc32c check, open), for 4 KiB and 4 MiB payloads
with a 64-byte meta, in

* none   — no auth: crc32c on both ends and the receive buffer, which every frame pays;
* sign   — plus a GMAC tag over header + meta + data (cephx with ms_mode crc);
* secure — plus AES-GCM encryption of meta + data (ms_mode secure);

printed as µs per frame, MB/s of payload and the auth share in µs (best of `--repeat`
runs; a 4 MiB allocation is a large part of every row on machines with costly page
faults). Also the cost
of the handshakes (client <-> monitor with one ticket, client <-> OSD authorizer),
which is paid once per connection. Numbers for docs/decisions/0004-authentication.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import crc32c  # noqa: E402

from shoal.auth.cephx import (  # noqa: E402
    MonAuthClient,
    MonAuthServer,
    ServiceAuthClient,
    ServiceAuthServer,
    ServiceSecrets,
)
from shoal.auth.session import STREAM_MIN, session_pair  # noqa: E402
from shoal.wire.frame import HEADER, MAGIC, VERSION  # noqa: E402

KiB, MiB = 1024, 1024 * 1024


def best_us(fn: Callable[[], object], seconds: float, repeat: int) -> float:
    """Best per-call time in µs over `repeat` runs of at least `seconds` each."""
    fn()  # warm up (allocator, OpenSSL contexts)
    best = float("inf")
    for _ in range(repeat):
        n = 0
        start = time.perf_counter()
        while True:
            fn()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and n >= 3:
                break
        best = min(best, elapsed / n)
    return best * 1e6


def frame_costs(seconds: float, repeat: int) -> None:
    """One frame end to end, as the codec handles it: the sender seals and checksums; the
    receiver lands the payload in a fresh buffer (what FrameDecoder does: its own bytearray
    for large payloads, a bytes copy for small ones), verifies the crc and opens it."""
    meta = os.urandom(64)
    print(f"{'mode':8} {'payload':>8} {'µs/frame':>10} {'MB/s':>9} {'auth µs':>9} {'vs none':>8}")
    for size, label in ((4 * KiB, "4 KiB"), (4 * MiB, "4 MiB")):
        data = os.urandom(size)
        header = HEADER.pack(MAGIC, VERSION, 1, 30, 0, len(meta), len(data))

        def crc(m: bytes | memoryview, d: bytes | bytearray | memoryview, h: bytes = header) -> int:
            return crc32c.crc32c(d, crc32c.crc32c(m, crc32c.crc32c(h)))

        def receive(d: bytes | bytearray | memoryview) -> bytes | bytearray:
            return bytearray(d) if len(d) >= STREAM_MIN else bytes(d)

        def no_auth(d: bytes = data) -> None:
            crc(meta, d)
            got = receive(d)
            crc(meta, got)

        base = best_us(no_auth, seconds, repeat)
        print(f"{'none':8} {label:>8} {base:10.1f} {size / base:9.0f} {0:9.1f} {'1.0x':>8}")
        for mode, secure in (("sign", False), ("secure", True)):
            cn, sn, key = os.urandom(16), os.urandom(16), os.urandom(16)
            tx, _ = session_pair(key, cn, sn, client=True, secure=secure)
            _, rx = session_pair(key, cn, sn, client=False, secure=secure)

            def one_frame(tx=tx, rx=rx, d=data, h=header) -> None:
                m2, d2, tag = tx.seal(h, meta, d)
                crc(m2, d2)
                got = receive(d2)
                crc(m2, got)
                rx.open(h, m2, got, tag)

            us = best_us(one_frame, seconds, repeat)
            print(f"{mode:8} {label:>8} {us:10.1f} {size / us:9.0f} {us - base:9.1f} {us / base:7.1f}x")


def handshake_costs(seconds: float, repeat: int) -> None:
    now = time.time
    secrets = ServiceSecrets(3600, ["mon", "osd"])
    secrets.rotate_if_due(now())
    key = os.urandom(16)
    db = {"client.admin": (key, {"mon": "allow *", "osd": "allow *"})}

    def mon_handshake() -> None:
        c = MonAuthClient("client.admin", key, "cephx", services=["osd"], now=now)
        s = MonAuthServer(db.get, secrets, "cephx", now)
        req = c.handle_hello_reply(s.handle_hello(c.hello()))
        assert req is not None
        c.handle_auth_reply(s.handle_auth_request(req))
        c.session(True), s.session(True)

    c = MonAuthClient("client.admin", key, "cephx", services=["osd"], now=now)
    s = MonAuthServer(db.get, secrets, "cephx", now)
    req = c.handle_hello_reply(s.handle_hello(c.hello()))
    assert req is not None
    ticket = c.handle_auth_reply(s.handle_auth_request(req))["osd"]
    osd = ServiceAuthServer("osd", secrets, now, replay_entries=1 << 20)

    def osd_handshake() -> None:
        sc = ServiceAuthClient("client.admin", ticket, now=now)
        reply, peer = osd.handle_hello(sc.hello())
        sc.handle_hello_reply(reply)
        sc.session(True), peer.session(True)

    print()
    print(f"{'handshake (both sides, pure CPU)':40} {'µs':>8}")
    print(f"{'client<->mon cephx + 1 ticket + keys':40} {best_us(mon_handshake, seconds, repeat):8.0f}")
    print(f"{'client<->osd authorizer + keys':40} {best_us(osd_handshake, seconds, repeat):8.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=0.5, help="minimum duration of one run")
    ap.add_argument("--repeat", type=int, default=5, help="runs per measurement; the best is kept")
    args = ap.parse_args()
    frame_costs(args.seconds, args.repeat)
    handshake_costs(args.seconds, args.repeat)


if __name__ == "__main__":
    main()
