#!/usr/bin/env python3
"""Sends UDP_SEGMENT trains (UDP GSO: one sendmsg, many datagrams on the wire) read from a file.

    send-trains.py FILE HOST PORT BIND_IP BIND_PORT

FILE holds records [seg_size u16 BE][length u32 BE][length bytes]: each record is one train, its
bytes the concatenated datagrams (all seg_size long but the last). Run inside a test namespace
(`ip netns exec`). Sends for at most 5 s, then stops by itself. Prints "sent N trains".
"""
import socket
import struct
import sys
import time

SOL_UDP = 17
UDP_SEGMENT = 103  # linux/udp.h

path, host, port, bind_ip, bind_port = sys.argv[1:6]
data = open(path, 'rb').read()
trains = []
at = 0
while at < len(data):
    seg, n = struct.unpack_from('>HI', data, at)
    trains.append((seg, data[at + 6:at + 6 + n]))
    at += 6 + n

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
s.bind((bind_ip, int(bind_port)))
deadline = time.monotonic() + 5
sent = 0
for seg, buf in trains:
    if time.monotonic() > deadline:
        break
    cmsg = [(SOL_UDP, UDP_SEGMENT, struct.pack('=H', seg))] if len(buf) > seg else []
    while True:
        try:
            s.sendmsg([buf], cmsg, 0, (host, int(port)))
            break
        except BlockingIOError:
            time.sleep(0.001)
    sent += 1
print(f'sent {sent} trains', flush=True)
