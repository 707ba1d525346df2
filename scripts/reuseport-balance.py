#!/usr/bin/env python3
"""How evenly SO_REUSEPORT spreads connections over the hubs of
examples/echo-server --hubs N.

Usage: scripts/reuseport-balance.py [--hubs N] [--conns C] [--trials T] [--exe PATH]

Each trial starts the echo server on N hubs (a free port on 127.0.0.1), opens C
connections (each echoes one byte, so its hub has accepted it), sends SIGUSR1
(every hub prints its greenlets: one 'echo' greenlet per connection), then
SIGINT. It prints the connections per hub of every trial, and the busiest hub's
load as a multiple of its fair share (C / N): median and worst over the trials.
Build the server first: cargo build --release --example echo-server.
"""

import argparse
import os
import re
import signal
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the server does not listen on port {port}")


def trial(exe, hubs, conns):
    port = free_port()
    server = subprocess.Popen(
        [exe, "--addr", f"127.0.0.1:{port}", "--hubs", str(hubs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(port)
        time.sleep(0.2)  # the probe connection's greenlet ends
        clients = []
        for _ in range(conns):
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            client.sendall(b"x")
            assert client.recv(1) == b"x"
            clients.append(client)
        server.send_signal(signal.SIGUSR1)
        time.sleep(0.5)
        server.send_signal(signal.SIGINT)
        for client in clients:
            client.close()
        stderr = server.communicate(timeout=30)[1]
    finally:
        if server.poll() is None:
            server.kill()
    counts = [0] * hubs
    hub = None
    for line in stderr.splitlines():
        match = re.match(r"hub (\d+):", line)
        if match:
            hub = int(match.group(1))
        elif "'echo' parked" in line and hub is not None:
            counts[hub] += 1
    if sum(counts) != conns:
        raise SystemExit(f"expected {conns} connections in the dumps, found {counts}:\n{stderr}")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hubs", type=int, default=2)
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--exe", default=os.path.join(HERE, "..", "target", "release", "examples", "echo-server"))
    args = parser.parse_args()
    if args.hubs < 2:
        raise SystemExit("--hubs must be at least 2")
    splits = [trial(args.exe, args.hubs, args.conns) for _ in range(args.trials)]
    fair = args.conns / args.hubs
    peaks = sorted(max(counts) / fair for counts in splits)
    print(f"{args.hubs} hubs, {args.conns} connections, {args.trials} trials: per hub {splits}")
    print(f"busiest hub / fair share: median {peaks[len(peaks) // 2]:.2f}, worst {peaks[-1]:.2f}")


if __name__ == "__main__":
    main()
