#!/usr/bin/env python3
"""Holds N live dashboards on GET /api/v1/live (Server-Sent Events) for the benchmarks: one
socket each, read with one selector, so the clients cost this process little CPU. Writes
READY_FILE once every stream answered 200 and sent its first frame, then reads until
SIGTERM and prints one JSON line: clients held, frames received, streams that ended early.

  sse-clients.py --url http://127.0.0.1:18080 --token JWT --clients 500 --ready READY_FILE
"""
import argparse, json, selectors, signal, socket, sys, time
from urllib.parse import urlparse


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    target = urlparse(args.url)
    request = (f"GET /api/v1/live HTTP/1.1\r\nHost: {target.netloc}\r\nAuthorization: Bearer {args.token}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    selector = selectors.DefaultSelector()
    clients = {}
    for _ in range(args.clients):
        s = socket.create_connection((target.hostname, target.port), timeout=args.timeout)
        s.sendall(request)
        s.setblocking(False)
        clients[s] = {"buffer": b"", "status": None, "frames": 0}
        selector.register(s, selectors.EVENT_READ)
    stop = False
    def on_term(*_):
        nonlocal stop
        stop = True
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    ended, ready, started = 0, False, time.monotonic()
    while not stop:
        for key, _ in selector.select(timeout=0.5):
            s, c = key.fileobj, clients[key.fileobj]
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            if not data:
                ended += 1
                selector.unregister(s)
                s.close()
                continue
            c["buffer"] += data
            if c["status"] is None and b"\r\n" in c["buffer"]:
                c["status"] = int(c["buffer"].split(b" ", 2)[1])
            c["frames"] += c["buffer"].count(b"event: positions")
            c["buffer"] = c["buffer"][c["buffer"].rfind(b"\n") + 1:]
        if not ready:
            if all(c["status"] == 200 and c["frames"] > 0 for c in clients.values()):
                ready = True
                open(args.ready, "w").write(f"{len(clients)} connected in {time.monotonic() - started:.2f} s\n")
            elif any(c["status"] not in (None, 200) for c in clients.values()) or time.monotonic() - started > args.timeout:
                statuses = sorted({str(c["status"]) for c in clients.values()})
                print(json.dumps({"error": "not every stream answered 200 with a frame", "statuses": statuses}))
                sys.exit(1)
    print(json.dumps({"clients": len(clients), "ready": ready, "ended_early": ended,
                      "frames": sum(c["frames"] for c in clients.values()),
                      "seconds": round(time.monotonic() - started, 1)}))


if __name__ == "__main__":
    main()
