"""RTT and byte model shared by every simulator (and expected of the engine).

All sizes are bytes *on the wire* per IP packet, i.e. including IPv4 (20) +
TCP (20) + TCP timestamp option (12) headers = 52 bytes.  A "flight" that
would span several MSS-sized segments is emitted as one tx/rx event with
the summed size (the radio model only needs time and size).  Pure ACKs are
not emitted except where they are the only traffic (keepalive probe and its
ACK, and the last ACK of a close), because an ACK inside an already active
radio period costs nothing extra in the radio models.

Latency model (per query, given one round-trip time ``rtt``):

* query on an open, ready connection ..................... 1 RTT
* TCP connect (SYN / SYN-ACK) ............................ +1 RTT
* TLS 1.3 full handshake .................................. +1 RTT
* TLS 1.3 resumed handshake (PSK, no 0-RTT early data) .... +1 RTT
  (resumption saves bytes and CPU, not round trips, unless 0-RTT is used;
  none of the modelled clients sends DNS in 0-RTT)
* TLS 1.2 full handshake .................................. +2 RTT
  (without False Start; Android enables False Start in
  DnsTlsSocket::initialize(), which would make it +1 -- we keep TLS 1.3 as
  the default for every policy, so this does not affect the results)
* TLS 1.2 abbreviated (session ticket / id) handshake ..... +1 RTT
* TCP Fast Open is not modelled (Android and getdns request
  TCP_FASTOPEN_CONNECT, but it needs server support and a cached cookie).

So the first query on a new TLS 1.3 connection costs 3 RTT either way.
"""
from __future__ import annotations

HDR = 52                 # IPv4 + TCP + timestamps
SYN = 60                 # SYN / SYN-ACK carry MSS, SACK-perm, TS, WS options
MSS = 1448

TLS_RECORD_OVERHEAD = 22  # TLS 1.3 record: 5 header + 1 inner type + 16 AEAD tag

# RFC 8467 section 4.1 (block-length padding): queries padded to a multiple
# of 128 octets, responses to a multiple of 468 octets.  We assume every
# query and answer fits one block.
QUERY_PADDED = 128
RESPONSE_PADDED = 468
DNS_TCP_LEN_PREFIX = 2    # RFC 7766 / RFC 7858 two-byte length field


def _segments(payload: int) -> int:
    return max(1, -(-payload // MSS))


def packet(payload: int) -> int:
    """Bytes on the wire for ``payload`` TCP payload bytes (may span segments)."""
    return payload + HDR * _segments(payload)


QUERY_BYTES = packet(QUERY_PADDED + DNS_TCP_LEN_PREFIX + TLS_RECORD_OVERHEAD)       # 204
RESPONSE_BYTES = packet(RESPONSE_PADDED + DNS_TCP_LEN_PREFIX + TLS_RECORD_OVERHEAD)  # 544

# TLS handshake message sizes (payload bytes).  These are typical values,
# not measurements of a particular server; the certificate chain dominates.
CLIENT_HELLO = 512            # BoringSSL/OpenSSL ClientHello with SNI, key share
CLIENT_HELLO_PSK = 600        # + pre_shared_key extension carrying the ticket
SERVER_FLIGHT_FULL_13 = 4000  # SH + EE + Certificate (2-cert chain) + CV + Finished
SERVER_FLIGHT_RESUMED_13 = 200  # SH + EE + Finished
CLIENT_FINISHED_13 = 74       # (CCS compat) + Finished
NEW_SESSION_TICKETS = 500     # 2 tickets, ~250 B each, sent after the handshake
SERVER_FLIGHT_FULL_12 = 4100  # SH + Certificate + SKE + SHD
CLIENT_KEYX_FIN_12 = 150      # CKE + CCS + Finished
SERVER_FIN_12 = 300           # NewSessionTicket + CCS + Finished
SERVER_FLIGHT_RESUMED_12 = 350  # SH + NST + CCS + Finished
CLIENT_FIN_RESUMED_12 = 60

CLOSE_NOTIFY = packet(24)     # close_notify alert record, FIN on the same segment
ACK = HDR
KEEPALIVE_PROBE = HDR         # TCP keepalive probe (0/1 byte payload)


def handshake_packets(kind: str, tls: str, rtt: float):
    """Packets of a connection setup that starts at 0.

    Returns (events, ready_offset, handshake_done_offset, ticket_offset) where
    events is a list of (offset, direction, bytes, what) and ``ready_offset``
    is when the first query can be written.
    """
    ev = [(0.0, "tx", SYN, "syn"), (rtt, "rx", SYN, "syn")]
    if tls == "1.3":
        if kind == "full":
            ev += [(rtt, "tx", packet(CLIENT_HELLO), "tls"),
                   (2 * rtt, "rx", packet(SERVER_FLIGHT_FULL_13), "tls")]
        else:
            ev += [(rtt, "tx", packet(CLIENT_HELLO_PSK), "tls"),
                   (2 * rtt, "rx", packet(SERVER_FLIGHT_RESUMED_13), "tls")]
        ev += [(2 * rtt, "tx", packet(CLIENT_FINISHED_13), "tls"),
               (3 * rtt, "rx", packet(NEW_SESSION_TICKETS), "tls")]
        return ev, 2 * rtt, 2 * rtt, 3 * rtt
    if tls == "1.2":
        if kind == "full":
            ev += [(rtt, "tx", packet(CLIENT_HELLO), "tls"),
                   (2 * rtt, "rx", packet(SERVER_FLIGHT_FULL_12), "tls"),
                   (2 * rtt, "tx", packet(CLIENT_KEYX_FIN_12), "tls"),
                   (3 * rtt, "rx", packet(SERVER_FIN_12), "tls")]
            return ev, 3 * rtt, 3 * rtt, 3 * rtt
        ev += [(rtt, "tx", packet(CLIENT_HELLO_PSK), "tls"),
               (2 * rtt, "rx", packet(SERVER_FLIGHT_RESUMED_12), "tls"),
               (2 * rtt, "tx", packet(CLIENT_FIN_RESUMED_12), "tls")]
        return ev, 2 * rtt, 2 * rtt, 2 * rtt
    raise ValueError(f"unknown TLS version {tls!r}")


def handshake_bytes(kind: str, tls: str = "1.3") -> tuple[int, int]:
    """(tx, rx) bytes of a connection setup, for documentation/tests."""
    ev, *_ = handshake_packets(kind, tls, 1.0)
    tx = sum(b for _, d, b, _ in ev if d == "tx")
    rx = sum(b for _, d, b, _ in ev if d == "rx")
    return tx, rx
