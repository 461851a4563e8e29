#!/usr/bin/env python3
"""netem in userspace, for kernels built without sch_netem (this machine's has no netem, prio
or fq_codel): an L2 relay between two interfaces of one namespace, on AF_PACKET sockets, that
forwards every frame both ways and impairs IPv4 UDP frames only (the overlay: tulle's datagrams
and handshakes), like `tc netem` would:

  --loss P          drop with probability P
  --duplicate P     send twice
  --corrupt P       flip one random bit after the Ethernet header (checksums then catch it)
  --reorder P       hold a frame back by --reorder-ms so later ones overtake it
  --delay-ms M --jitter-ms J   delay every frame by a normal(M, J) draw (J > 0 reorders, as netem)

Frames a local sender left with a partial checksum (CHECKSUM_PARTIAL, visible as
TP_STATUS_CSUMNOTREADY) get their TCP/UDP checksum completed before they leave, as a NIC would.
The interfaces must not hand over GSO super-frames: the caller sets gso_max_segs 1 on the
devices that feed the relay. Prints 'ready'; on SIGUSR1 one JSON line of counts since the last
one (and starts counting afresh); on SIGTERM the same, then exits.
"""
import argparse, heapq, json, os, random, select, signal, socket, struct, sys, time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_AUXDATA = 8
PACKET_OUTGOING = 4
TP_STATUS_CSUMNOTREADY = 1 << 3

ap = argparse.ArgumentParser()
ap.add_argument('a')
ap.add_argument('b')
for name in ('loss', 'duplicate', 'corrupt', 'reorder'):
    ap.add_argument(f'--{name}', type=float, default=0.0)
ap.add_argument('--reorder-ms', type=float, default=2.0)
ap.add_argument('--delay-ms', type=float, default=0.0)
ap.add_argument('--jitter-ms', type=float, default=0.0)
ap.add_argument('--seed', type=int, default=1)
opt = ap.parse_args()
rng = random.Random(opt.seed)

stats = dict(frames=0, udp=0, dropped=0, duplicated=0, corrupted=0, delayed=0, csum_completed=0)


def open_if(name):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((name, 0))
    s.setblocking(False)
    return s


sa, sb = open_if(opt.a), open_if(opt.b)
peer = {sa.fileno(): sb, sb.fileno(): sa}


def complete_csum(f):
    """Completes the L4 checksum of an IPv4 TCP/UDP frame whose field holds the pseudo-header sum."""
    if len(f) < 34 or f[12:14] != b'\x08\x00':
        return
    ihl = (f[14] & 0x0F) * 4
    tot = struct.unpack_from('!H', f, 16)[0]
    off, end = 14 + ihl, min(len(f), 14 + tot)
    proto = f[23]
    field = 16 if proto == 6 else 6 if proto == 17 else None
    if field is None or end - off < field + 2:
        return
    seg = bytes(f[off:end])
    if len(seg) & 1:
        seg += b'\0'
    s = sum(memoryview(seg).cast('H'))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    c = ~s & 0xFFFF
    if c == 0 and proto == 17:
        c = 0xFFFF
    struct.pack_into('=H', f, off + field, c)
    stats['csum_completed'] += 1


def is_udp4(f):
    return len(f) >= 34 and f[12:14] == b'\x08\x00' and f[23] == 17


queue = []  # (release time, seq, socket, frame)
seq = 0


def send(sock, f):
    try:
        sock.send(f)
    except (BlockingIOError, OSError):
        stats['dropped'] += 1  # a full queue drops, like a real link


def forward(sock_out, f):
    global seq
    stats['frames'] += 1
    if not is_udp4(f):
        send(sock_out, f)
        return
    stats['udp'] += 1
    if opt.loss and rng.random() < opt.loss:
        stats['dropped'] += 1
        return
    copies = 2 if opt.duplicate and rng.random() < opt.duplicate else 1
    if copies == 2:
        stats['duplicated'] += 1
    if opt.corrupt and rng.random() < opt.corrupt:
        f = bytearray(f)
        i = rng.randrange(14, len(f))
        f[i] ^= 1 << rng.randrange(8)
        f = bytes(f)
        stats['corrupted'] += 1
    delay = 0.0
    if opt.delay_ms or opt.jitter_ms:
        delay = max(0.0, rng.gauss(opt.delay_ms, opt.jitter_ms)) / 1000
    if opt.reorder and rng.random() < opt.reorder:
        delay += opt.reorder_ms / 1000
    for _ in range(copies):
        if delay > 0:
            stats['delayed'] += 1
            seq += 1
            heapq.heappush(queue, (time.monotonic() + delay, seq, sock_out, f))
        else:
            send(sock_out, f)


def report(*_):
    sys.stdout.write(json.dumps(stats) + '\n')
    sys.stdout.flush()
    for k in stats:
        stats[k] = 0


def stop(*_):
    report()
    os._exit(0)


signal.signal(signal.SIGUSR1, report)
signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
sys.stdout.write('ready\n')
sys.stdout.flush()

cmsg_space = socket.CMSG_SPACE(20)
while True:
    timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
    ready, _, _ = select.select([sa, sb], [], [], timeout)
    for s in ready:
        out = peer[s.fileno()]
        for _ in range(256):
            try:
                data, anc, _flags, addr = s.recvmsg(65536, cmsg_space)
            except BlockingIOError:
                break
            if addr[2] == PACKET_OUTGOING:
                continue  # our own sends, seen again on this interface
            f = data
            for level, typ, val in anc:
                if level == SOL_PACKET and typ == PACKET_AUXDATA and len(val) >= 4:
                    if struct.unpack_from('=I', val)[0] & TP_STATUS_CSUMNOTREADY:
                        f = bytearray(data)
                        complete_csum(f)
                        f = bytes(f)
            forward(out, f)
    now = time.monotonic()
    while queue and queue[0][0] <= now:
        _, _, sock, f = heapq.heappop(queue)
        send(sock, f)
