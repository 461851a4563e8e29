#!/usr/bin/env python3
"""Queues packets on a device's transmit path with a virtio-net header of our choosing, the way
the kernel hands TSO/USO super-packets to a TUN with offloads on (AF_PACKET + PACKET_VNET_HDR).
The TUN's reader (tulle) then reads each one with that header.

    inject-tun.py IFNAME FILE

FILE holds records [vnet header, 10 bytes][length u32 BE][IP packet]. Run inside the namespace of
the device (`ip netns exec`). Prints "injected N" (the sends the kernel accepted) and
"refused M" (the ones it refused itself, e.g. a header it judged invalid).
"""
import socket
import struct
import sys

SOL_PACKET = 263
PACKET_VNET_HDR = 15
ETH_P_IP, ETH_P_IPV6 = 0x0800, 0x86DD

ifname, path = sys.argv[1:3]
data = open(path, 'rb').read()
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # PACKET_VNET_HDR needs SOCK_RAW; a TUN has no link header
s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
ok = refused = 0
at = 0
while at < len(data):
    vnet = data[at:at + 10]
    (n,) = struct.unpack_from('>I', data, at + 10)
    pkt = data[at + 14:at + 14 + n]
    at += 14 + n
    proto = ETH_P_IPV6 if pkt and pkt[0] >> 4 == 6 else ETH_P_IP
    try:
        s.sendto(vnet + pkt, (ifname, proto))
        ok += 1
    except OSError:
        refused += 1
print(f'injected {ok}', flush=True)
print(f'refused {refused}', flush=True)
