#!/usr/bin/env python3
"""Stdlib-only readiness probes for the local Clarion infrastructure.

  probe.py kafka HOST:PORT   -> exit 0 when the broker answers a Metadata
                                request listing at least one broker and an
                                active controller.
  probe.py mongo HOST:PORT   -> exit 0 when the server answers OP_MSG
                                {hello: 1} with ok: 1 (FerretDB / MongoDB).

A single attempt is made (the caller loops with a deadline); the reason for a
failure is printed on stderr.
"""

from __future__ import annotations

import socket
import struct
import sys

TIMEOUT = 3.0


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by peer")
        buf += chunk
    return bytes(buf)


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host or "127.0.0.1", int(port)


# --------------------------------------------------------------------- kafka
def _kstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def probe_kafka(addr: str) -> None:
    # Metadata v4 (non-flexible, still supported by Kafka 4.x): null topic
    # list = all topics, allow_auto_topic_creation=false.
    header = struct.pack(">hhi", 3, 4, 1) + _kstr("clarion-probe")
    body = struct.pack(">i", -1) + b"\x00"
    req = header + body
    with socket.create_connection(_split(addr), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        s.sendall(struct.pack(">i", len(req)) + req)
        (size,) = struct.unpack(">i", _recv_exact(s, 4))
        data = _recv_exact(s, size)
    pos = 4 + 4  # correlation id, throttle_time_ms
    (nbrokers,) = struct.unpack_from(">i", data, pos)
    pos += 4
    for _ in range(nbrokers):
        pos += 4  # node id
        (hl,) = struct.unpack_from(">h", data, pos)
        pos += 2 + hl + 4  # host, port
        (rl,) = struct.unpack_from(">h", data, pos)
        pos += 2 + max(rl, 0)  # rack (nullable)
    (cl,) = struct.unpack_from(">h", data, pos)
    pos += 2 + max(cl, 0)  # cluster id (nullable)
    (controller,) = struct.unpack_from(">i", data, pos)
    if nbrokers < 1 or controller < 0:
        raise RuntimeError(f"not ready: brokers={nbrokers} controller={controller}")


# --------------------------------------------------------------------- mongo
def _bson_hello() -> bytes:
    def elem_int(name: str, v: int) -> bytes:
        return b"\x10" + name.encode() + b"\x00" + struct.pack("<i", v)

    def elem_str(name: str, v: str) -> bytes:
        b = v.encode() + b"\x00"
        return b"\x02" + name.encode() + b"\x00" + struct.pack("<i", len(b)) + b

    body = elem_int("hello", 1) + elem_str("$db", "admin")
    return struct.pack("<i", len(body) + 5) + body + b"\x00"


def _bson_ok(doc: bytes) -> float | None:
    """Return the value of the top-level 'ok' field (scanning simple types)."""
    pos = 4
    end = len(doc) - 1
    while pos < end:
        t = doc[pos]
        pos += 1
        nend = doc.index(b"\x00", pos)
        name = doc[pos:nend].decode()
        pos = nend + 1
        if t == 0x01:  # double
            val = struct.unpack_from("<d", doc, pos)[0]
            pos += 8
        elif t == 0x10:  # int32
            val = struct.unpack_from("<i", doc, pos)[0]
            pos += 4
        elif t in (0x09, 0x11, 0x12):  # datetime, timestamp, int64
            val = struct.unpack_from("<q", doc, pos)[0]
            pos += 8
        elif t == 0x08:  # bool
            val = doc[pos]
            pos += 1
        elif t in (0x02, 0x0D, 0x0E):  # string-like
            (ln,) = struct.unpack_from("<i", doc, pos)
            pos += 4 + ln
            val = None
        elif t in (0x03, 0x04):  # document, array
            (ln,) = struct.unpack_from("<i", doc, pos)
            pos += ln
            val = None
        elif t == 0x05:  # binary
            (ln,) = struct.unpack_from("<i", doc, pos)
            pos += 4 + 1 + ln
            val = None
        elif t == 0x07:  # ObjectId
            pos += 12
            val = None
        elif t in (0x0A, 0xFF, 0x7F):  # null, min/max key
            val = None
        elif t == 0x13:  # decimal128
            pos += 16
            val = None
        else:
            return None
        if name == "ok":
            return float(val) if val is not None else None
    return None


def probe_mongo(addr: str) -> None:
    section = b"\x00" + _bson_hello()  # kind 0 body
    msg = struct.pack("<I", 0) + section  # flagBits
    header = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)  # OP_MSG
    with socket.create_connection(_split(addr), timeout=TIMEOUT) as s:
        s.settimeout(TIMEOUT)
        s.sendall(header + msg)
        (length,) = struct.unpack("<i", _recv_exact(s, 4))
        rest = _recv_exact(s, length - 4)
    _req_id, _resp_to, opcode = struct.unpack_from("<iii", rest, 0)
    if opcode != 2013:
        raise RuntimeError(f"unexpected opcode {opcode}")
    pos = 12 + 4  # header rest + flagBits
    if rest[pos] != 0:
        raise RuntimeError("unexpected OP_MSG section kind")
    pos += 1
    (dl,) = struct.unpack_from("<i", rest, pos)
    ok = _bson_ok(rest[pos : pos + dl])
    if ok != 1.0:
        raise RuntimeError(f"hello answered ok={ok}")


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("kafka", "mongo"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        (probe_kafka if argv[1] == "kafka" else probe_mongo)(argv[2])
    except Exception as exc:
        print(f"{argv[1]} probe {argv[2]}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
