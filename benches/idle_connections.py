#!/usr/bin/env python3
"""Opens N keep-alive TLS connections to a server (mfagate, or nginx or
HAProxy in front of the same upstream), sends one request on each (so that
every connection has served a request) and keeps them open and idle while
the server's resident memory is read from /proc.

    idle_connections.py --port 18190 --token-file valid.jwt --pid PID -n 10000

The memory is the VmRSS of PID and of every process below it, summed (an
nginx master and its workers; pages they share are counted once per
process). Prints it before, with all connections open and idle, and after
they are closed, in MiB, and the growth per open connection in KiB, one
"name value" pair per line.
"""
import argparse
import asyncio
import os
import resource
import ssl
import time


def tree(pid):
    """pid and every process below it, found through the parent ids in /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, queue = [], [pid]
    while queue:
        p = queue.pop()
        found.append(p)
        queue.extend(children.get(p, []))
    return found


def established(port):
    """TCP connections to port on this host still established (the server's side)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as fh:
                next(fh)
                for line in fh:
                    fields = line.split()
                    if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                        count += 1
        except OSError:
            pass
    return count


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0  # a kernel thread or a process on its way out


def rss_mib(pid):
    """The summed VmRSS of pid's process tree, in MiB."""
    if not os.path.exists(f"/proc/{pid}/status"):
        raise RuntimeError(f"no process {pid}")
    total = 0
    for p in tree(pid):
        try:
            total += rss_kib(p)
        except OSError:
            pass  # exited between the scan and the read
    return total / 1024


async def open_one(port, request, context, opened):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="localhost")
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    if status != b"200":
        raise RuntimeError(f"status {status.decode()}")
    opened.append(writer)


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the server's process id (its children are counted too)")
    parser.add_argument("-n", "--connections", type=int, default=10000)
    parser.add_argument("--parallel", type=int, default=100, help="connections being opened at once")
    parser.add_argument("--hold", type=float, default=5, help="seconds to hold them idle before reading RSS")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < args.connections + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.connections + 1000), hard))

    token = open(args.token_file).read().strip()
    request = (
        f"GET /v1/customers HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])

    before = rss_mib(args.pid)
    print(f"processes {len(tree(args.pid))}", flush=True)
    print(f"rss_before_mib {before:.1f}", flush=True)
    opened = []
    gate = asyncio.Semaphore(args.parallel)

    async def guarded():
        async with gate:
            await open_one(args.port, request, context, opened)

    started = time.monotonic()
    results = await asyncio.gather(*(guarded() for _ in range(args.connections)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    print(f"connections_open {len(opened)}", flush=True)
    print(f"connections_failed {len(failures)}", flush=True)
    if failures:
        print(f"first_failure {failures[0]!r}", flush=True)
    print(f"open_seconds {time.monotonic() - started:.1f}", flush=True)
    await asyncio.sleep(args.hold)
    idle = rss_mib(args.pid)
    print(f"rss_idle_mib {idle:.1f}", flush=True)
    if opened:
        print(f"kib_per_connection {(idle - before) * 1024 / len(opened):.1f}", flush=True)
    closing = time.monotonic()
    for writer in opened:
        writer.close()
    await asyncio.wait([asyncio.ensure_future(w.wait_closed()) for w in opened] or [asyncio.sleep(0)],
                       timeout=args.hold)
    await asyncio.sleep(max(0.0, args.hold - (time.monotonic() - closing)))
    print(f"connections_left_open {established(args.port)}", flush=True)
    print(f"rss_after_close_mib {rss_mib(args.pid):.1f}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
