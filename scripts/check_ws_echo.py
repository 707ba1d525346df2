#!/usr/bin/env python3
"""Checks a WebSocket echo server with the `websockets` package: many
concurrent clients sending text and binary messages (every one must come
back unchanged), pinging (every ping must be answered), and closing cleanly
(the server must answer the close frame with code 1000).

usage: check_ws_echo.py URI [--clients N] [--messages N]
"""
import argparse
import asyncio
import os
import random
import sys

from websockets.asyncio.client import connect


async def client(n, args, ready, go):
    rng = random.Random(n)
    async with connect(args.uri, proxy=None, max_size=None, ping_interval=None, compression=None) as ws:
        ready.append(n)
        await go.wait()  # every client connected before any sends
        for i in range(args.messages):
            size = rng.choice([0, 1, 125, 126, 65535, 65536, rng.randrange(1, 300_000)])
            if i % 2:
                message = os.urandom(size)
            else:
                message = "".join(rng.choice("abc xyz é ß 漢字 🙂") for _ in range(size // 4))
            await ws.send(message)
            echoed = await ws.recv()
            if echoed != message or type(echoed) is not type(message):
                raise AssertionError(f"client {n}: message {i} ({type(message).__name__}) echoed wrong")
            pong = await ws.ping(f"ping {n} {i}".encode())
            await asyncio.wait_for(pong, timeout=30)
        await ws.close()
    if ws.close_code != 1000:
        raise AssertionError(f"client {n}: close code {ws.close_code}, {ws.close_reason!r}")
    if ws.protocol.close_rcvd is None:
        raise AssertionError(f"client {n}: the server did not answer the close frame")
    return args.messages


async def main(args):
    ready, go = [], asyncio.Event()
    tasks = [asyncio.create_task(client(n, args, ready, go)) for n in range(args.clients)]
    while len(ready) < args.clients and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    print(f"{len(ready)} clients connected at once")
    go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    echoed = sum(r for r in results if not isinstance(r, BaseException))
    for failure in failures[:5]:
        print(f"failure: {failure!r}", file=sys.stderr)
    print(f"{args.clients - len(failures)}/{args.clients} clients: {echoed} messages (text and binary) echoed "
          f"and verified, {echoed} pings answered, clean close (1000); {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("uri")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    sys.exit(asyncio.run(main(parser.parse_args())))
