#!/usr/bin/env python3
"""
Does MSG_ZEROCOPY avoid the copy on this test bed? (issue 10, "Copies")

  sudo timeout 60 python3 bench/zerocopy-copied.py [--trains 2000] [--segments 44] [--seg-size 1400]

Builds two network namespaces joined by a veth pair (underlay 198.18.0.0/15, per-run suffix),
binds a UDP socket in the second, and from the first sends UDP_SEGMENT trains (the shape tulle's
outbound loop sends) with MSG_ZEROCOPY. Each completion read from the sender's error queue
(SO_EE_ORIGIN_ZEROCOPY) covers a range of sends; it carries SO_EE_CODE_ZEROCOPY_COPIED when the
kernel copied the pages anyway. Counted per send. A control run sends the same trains after an
nftables ingress rule on the peer's veth drops them (freed before any protocol receives them),
to show the program tells the two cases apart.

Prints one line per case: sends, sends completed, of them copied, trains received by the peer.
Everything is torn down on exit, failure included. Traffic stays inside the namespaces made here.
"""
import argparse
import ctypes
import errno
import os
import select
import socket
import struct
import subprocess
import sys
import time

SO_ZEROCOPY = 60
MSG_ZEROCOPY = 0x4000000
SOL_UDP = 17
UDP_SEGMENT = 103
IP_RECVERR = 11
SO_EE_ORIGIN_ZEROCOPY = 5
SO_EE_CODE_ZEROCOPY_COPIED = 1
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)


def sh(*args):
    subprocess.run(args, check=True)


def setns(name):
    fd = os.open(f'/run/netns/{name}', os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f'setns {name}')
    finally:
        os.close(fd)


def read_completions(s, counts):
    """Drains the error queue: adds the sends each zerocopy completion covers to counts."""
    while True:
        try:
            _, anc, _, _ = s.recvmsg(0, 1024, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        for level, typ, data in anc:
            if len(data) < 16:
                continue
            ee_errno, origin, _type, code, _pad, lo, hi = struct.unpack('=IBBBBII', data[:16])
            if origin != SO_EE_ORIGIN_ZEROCOPY:
                continue
            n = (hi - lo + 1) & 0xFFFFFFFF
            counts['completed'] += n
            if code & SO_EE_CODE_ZEROCOPY_COPIED:
                counts['copied'] += n


def run_case(name, ns_send, dst, rx, trains, segments, seg_size):
    setns(ns_send)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_ZEROCOPY, 1)
    s.setsockopt(socket.SOL_IP, IP_RECVERR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    payload = bytearray(os.urandom(segments * seg_size))
    cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack('=H', seg_size))]
    counts = {'sent': 0, 'completed': 0, 'copied': 0, 'received': 0, 'enobufs': 0}
    deadline = time.monotonic() + 20
    for _ in range(trains):
        if time.monotonic() > deadline:
            break
        try:
            s.sendmsg([payload], cmsg, MSG_ZEROCOPY, (dst, 9000))
            counts['sent'] += 1
        except OSError as e:
            if e.errno != errno.ENOBUFS:  # optmem for notifications ran out: read them, go on
                raise
            counts['enobufs'] += 1
        read_completions(s, counts)
        if rx is not None:
            while True:
                try:
                    rx.recv(65536, socket.MSG_DONTWAIT)
                    counts['received'] += 1
                except BlockingIOError:
                    break
    end = time.monotonic() + 2
    while counts['completed'] < counts['sent'] and time.monotonic() < end:
        select.select([s], [], [], 0.05)
        read_completions(s, counts)
    s.close()
    received = f", datagrams received by the peer {counts['received']}" if rx is not None else ''
    print(f"{name}: {counts['sent']} UDP_SEGMENT sends of {segments} x {seg_size} B with MSG_ZEROCOPY, "
          f"{counts['completed']} completed, {counts['copied']} of them SO_EE_CODE_ZEROCOPY_COPIED "
          f"(ENOBUFS retries {counts['enobufs']}){received}")
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--trains', type=int, default=2000)
    ap.add_argument('--segments', type=int, default=44)
    ap.add_argument('--seg-size', type=int, default=1400)
    a = ap.parse_args()
    tag = f'zc{os.getpid() % 100000}'
    na, nb = f'{tag}a', f'{tag}b'
    home = os.open('/proc/self/ns/net', os.O_RDONLY)
    try:
        sh('ip', 'netns', 'add', na)
        sh('ip', 'netns', 'add', nb)
        sh('ip', 'link', 'add', f'{tag}x', 'netns', na, 'type', 'veth', 'peer', 'name', f'{tag}y', 'netns', nb)
        sh('ip', '-n', na, 'addr', 'add', '198.18.200.1/24', 'dev', f'{tag}x')
        sh('ip', '-n', nb, 'addr', 'add', '198.18.200.2/24', 'dev', f'{tag}y')
        for ns, dev in ((na, f'{tag}x'), (nb, f'{tag}y'), (na, 'lo'), (nb, 'lo')):
            sh('ip', '-n', ns, 'link', 'set', dev, 'up')
        setns(nb)
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        rx.bind(('198.18.200.2', 9000))
        run_case('veth into the peer namespace (a socket there)', na, '198.18.200.2', rx, a.trains, a.segments, a.seg_size)
        sh('ip', 'netns', 'exec', nb, 'nft', f'add table netdev zc; add chain netdev zc in {{ type filter hook ingress device {tag}y priority 0; }}; add rule netdev zc in udp dport 9000 drop')
        run_case('control: the same, dropped by an nftables ingress rule on the peer veth', na, '198.18.200.2', rx, a.trains, a.segments, a.seg_size)
        rx.close()
    finally:
        libc.setns(home, CLONE_NEWNET)
        for ns in (na, nb):
            subprocess.run(['ip', 'netns', 'del', ns], stderr=subprocess.DEVNULL)


if __name__ == '__main__':
    sys.exit(main())
