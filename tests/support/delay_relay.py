#!/usr/bin/env python3
"""A WAN in a box: joins two network namespaces through two TUN devices and holds every
packet for a fixed delay in each direction. This kernel has no netem; a user-space relay at
the IP layer needs no offload tuning and carries ICMP and TCP unchanged.

Usage: delay_relay.py TUN_A TUN_B DELAY_MS
Creates both devices in the current namespace and prints "ready"; the caller then moves one
into the other namespace (`ip link set TUN_B netns NAME`) and addresses both ends. Runs until
killed. Standard library only.
"""
import collections
import fcntl
import os
import struct
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def relay(source, sink, delay):
    """Packets from `source` reach `sink` `delay` seconds later, in order."""
    queue = collections.deque()
    ready = threading.Condition()

    def reader():
        while True:
            packet = os.read(source, 65535)
            with ready:
                queue.append((time.monotonic() + delay, packet))
                ready.notify()

    def writer():
        while True:
            with ready:
                while not queue:
                    ready.wait()
                due, packet = queue.popleft()
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            try:
                os.write(sink, packet)
            except OSError:
                pass  # the other end is not up yet: a lost packet, as on a real link

    for target in (reader, writer):
        threading.Thread(target=target, daemon=True).start()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    a, b = open_tun(sys.argv[1]), open_tun(sys.argv[2])
    delay = float(sys.argv[3]) / 1000.0
    relay(a, b, delay)
    relay(b, a, delay)
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
