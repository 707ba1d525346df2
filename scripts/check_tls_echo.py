#!/usr/bin/env python3
"""Checks a TLS echo server with Python's ssl module: many concurrent clients,
each verifying the server's certificate and every byte echoed back.

usage: check_tls_echo.py HOST PORT CAFILE [--clients N] [--messages N]
"""
import argparse
import asyncio
import os
import random
import ssl
import sys


async def client(n, args, ready, go, versions):
    ctx = ssl.create_default_context(cafile=args.cafile)  # verifies chain and host name
    if n % 2:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # half of them on TLS 1.2
    reader, writer = await asyncio.open_connection(args.host, args.port, ssl=ctx, server_hostname="localhost")
    versions.add(writer.get_extra_info("ssl_object").version())
    ready.append(n)
    await go.wait()  # every client connected before any sends
    rng = random.Random(n)
    sent = 0
    for _ in range(args.messages):
        size = rng.choice([1, 7, 100, 1500, 16384, 16385, 65536, rng.randrange(1, 200_000)])
        payload = os.urandom(size)
        writer.write(payload)
        await writer.drain()
        echoed = await reader.readexactly(size)
        if echoed != payload:
            raise AssertionError(f"client {n}: {size} bytes echoed wrong")
        sent += size
    writer.close()  # sends close_notify and waits for the server's
    await writer.wait_closed()
    return sent


async def main(args):
    ready, go, versions = [], asyncio.Event(), set()
    tasks = [asyncio.create_task(client(n, args, ready, go, versions)) for n in range(args.clients)]
    while len(ready) < args.clients and not any(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    print(f"{len(ready)} clients connected at once ({', '.join(sorted(versions))})")
    go.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    total = sum(r for r in results if not isinstance(r, BaseException))
    for failure in failures[:5]:
        print(f"failure: {failure!r}", file=sys.stderr)
    print(f"{args.clients - len(failures)}/{args.clients} clients verified {total} echoed bytes, "
          f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("cafile")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--messages", type=int, default=10)
    sys.exit(asyncio.run(main(parser.parse_args())))
