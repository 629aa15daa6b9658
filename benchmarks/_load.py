"""A small HTTP/1.1 load generator (asyncio, keep-alive, raw sockets: ~30 µs of its own CPU per request, so it leaves the
shared cores to the server). Run as its own process; prints one JSON object.

Closed loop, N clients each sending its next request when the previous answer arrives (saturation):
    python benchmarks/_load.py --url http://127.0.0.1:8000/predict --bodies FILE --clients 10 --seconds 60
Open loop at a fixed offered rate (latency counted from each request's *scheduled* time, so a slow server cannot
hide its queueing: no coordinated omission):
    python benchmarks/_load.py --url ... --bodies FILE --rate 200 --seconds 60

FILE holds a JSON list of request bodies, used in turn.
"""
import argparse, asyncio, json, time
from urllib.parse import urlsplit

import numpy as np

retried = []  # requests re-sent because the server had closed the kept-alive connection they were sent on


def requests_of(url: str, bodies: list, headers: dict) -> list[bytes]:
    u = urlsplit(url)
    extra = ''.join(f'{k}: {v}\r\n' for k, v in headers.items())
    out = []
    for b in bodies:
        if b is None:  # a GET
            out.append(f'GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n{extra}\r\n'.encode()); continue
        data = json.dumps(b).encode()
        out.append((f'POST {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nContent-Type: application/json\r\n{extra}'
                    f'Content-Length: {len(data)}\r\n\r\n').encode() + data)
    return out


class Closed(Exception): "The server closed the connection before answering."

async def exchange(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: bytes) -> int:
    "Send one request, read one response; return its status."
    w.write(req)
    line = await r.readline()
    if not line: raise Closed()
    status = int(line.split()[1])
    length = 0
    while True:
        line = await r.readline()
        if line in (b'\r\n', b''): break
        if line[:15].lower() == b'content-length:': length = int(line[15:])
    await r.readexactly(length)
    return status


async def closed_loop(host, port, reqs, clients: int, seconds: float, warmup: float):
    lat, codes = [], {}
    start = time.perf_counter(); measure_from = start + warmup; stop = measure_from + seconds

    async def client(k):
        r, w = await asyncio.open_connection(host, port)
        i = k
        while (t := time.perf_counter()) < stop:
            try: s = await exchange(r, w, reqs[i % len(reqs)])
            except (Closed, ConnectionError):
                s = 'closed'; w.close(); r, w = await asyncio.open_connection(host, port)
            i += clients
            if t >= measure_from:
                lat.append(time.perf_counter() - t); codes[s] = codes.get(s, 0) + 1
        w.close()
    await asyncio.gather(*(client(k) for k in range(clients)))
    return lat, codes, seconds


ok_lat = []  # latencies of the requests answered 200 (open loop)
late = []  # open loop: how long after its due time each request was written (the generator's own lag and its pool's wait)

async def open_loop(host, port, reqs, rate: float, seconds: float, warmup: float, max_conns: int = 256):
    lat, codes, idle = [], {}, []
    n_warm, n = int(rate * warmup), int(rate * (seconds + warmup))
    t0 = time.perf_counter() + 0.2
    pool = asyncio.Semaphore(max_conns)  # a client's connection pool: a request waits for a connection (its latency counts from its due time)

    async def one(i, due):
        async with pool:
            while idle and idle[-1][0].at_eof(): idle.pop()[1].close()  # closed by the server's keep-alive timeout
            conn = idle.pop() if idle else await asyncio.open_connection(host, port)
            if i >= n_warm: late.append(time.perf_counter() - due)
            try: s = await exchange(*conn, reqs[i % len(reqs)])
            except (Closed, ConnectionError):  # a kept-alive connection the server closed as we reused it: retry once on a fresh one
                conn[1].close(); conn = await asyncio.open_connection(host, port); retried.append(i)
                try: s = await exchange(*conn, reqs[i % len(reqs)])
                except (Closed, ConnectionError): s = 'closed'
            idle.append(conn)
        if i >= n_warm:
            lat.append(time.perf_counter() - due); codes[s] = codes.get(s, 0) + 1; ok_lat.append(lat[-1]) if s == 200 else None
    # one task per request, started when it is due (not all at the start: half a million sleeping tasks made the
    # generator itself late by seconds, and that lateness was counted as the server's)
    running, i = set(), 0
    while i < n:
        now = time.perf_counter()
        while i < n and (due := t0 + i / rate) <= now:
            t = asyncio.create_task(one(i, due)); running.add(t); t.add_done_callback(running.discard); i += 1
        await asyncio.sleep(max(0.001, t0 + i / rate - time.perf_counter()))  # in batches of a millisecond: shorter sleeps spin
    await asyncio.gather(*running)
    for _, w in idle: w.close()
    return lat, codes, seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True); ap.add_argument('--bodies', required=True)
    ap.add_argument('--clients', type=int, default=10); ap.add_argument('--rate', type=float, default=0)
    ap.add_argument('--seconds', type=float, default=60); ap.add_argument('--warmup', type=float, default=3)
    ap.add_argument('--header', action='append', default=[], help='NAME:VALUE')
    ap.add_argument('--max_conns', type=int, default=256, help='open loop: the most connections at once (a client pool)')
    a = ap.parse_args()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))  # one descriptor per connection
    try:
        import uvloop; uvloop.install()
    except ImportError: pass
    u = urlsplit(a.url)
    reqs = requests_of(a.url, json.load(open(a.bodies)), dict(h.split(':', 1) for h in a.header))
    run = open_loop(u.hostname, u.port, reqs, a.rate, a.seconds, a.warmup, a.max_conns) if a.rate else closed_loop(u.hostname, u.port, reqs, a.clients, a.seconds, a.warmup)
    lat, codes, secs = asyncio.run(run)
    ms = np.array(lat) * 1000
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    ok = codes.get(200, 0)
    print(json.dumps(dict(mode='open' if a.rate else 'closed', clients=None if a.rate else a.clients, offered_rps=a.rate or None,
                          seconds=secs, requests=len(lat), ok=ok, errors=len(lat) - ok, status=codes, rps=round(len(lat) / secs, 1), retried_on_closed_keepalive=len(retried),
                          p50_ms=round(float(np.percentile(ms, 50)), 3), p90_ms=round(float(np.percentile(ms, 90)), 3),
                          p99_ms=round(float(np.percentile(ms, 99)), 3), max_ms=round(float(ms.max()), 3),
                          **({'p50_ok_ms': round(float(np.percentile(ok_ms, 50)), 3), 'p99_ok_ms': round(float(np.percentile(ok_ms, 99)), 3)}
                             if len(ok_ms := np.array(ok_lat) * 1000) else {}),
                          **({'p99_late_ms': round(float(np.percentile(np.array(late) * 1000, 99)), 3), 'ok_within_1s': int((ok_ms <= 1000).sum())} if late else {}),
                          generator_cpu_seconds=round(cpu.ru_utime + cpu.ru_stime, 1))))


if __name__ == '__main__': main()
