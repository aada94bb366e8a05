#!/usr/bin/env python
"""Serving benchmark: `scripts/serve.py` under load from 1, 8 and 64 concurrent clients on 127.0.0.1, beside the
batch throughput of `predict.py` (its predictor over batches of 256 titles) on the same titles, then an overload.

    python bench/serve.py --model outputs/best/lstm-onnx --input ../shared/data/meli2019-es/test.csv.gz

The overload (--overload_clients clients, each sending --overload_titles titles a request, for --overload_seconds)
asks several times what the service can answer: it must answer 200 or 503 (its queue bound) and nothing else, keep
the p99 of the requests it admits bounded, and keep its memory flat (resident size before and after).

Each client sends one title a request and waits for the answer before sending the next; every level sends
--requests requests (after --warmup unmeasured ones at its own concurrency, on the same connections) and stops
early after --max_seconds. Latency is per request (one title), measured by the client; titles/s is requests over
the level's wall time. Server and clients share this machine's cores. The clients use aiohttp: httpx's pool costs
so much CPU at 64 connections (encode/httpx#3215) that on 2 cores it, not the server, set the rate (121 titles/s
against 1,189 with aiohttp, same server).
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meli_hf.cli import positive_int, user_errors  # noqa: E402
from meli_hf.errors import MeliError, one_line_parser_errors  # noqa: E402
from meli_hf.files import read_csv, read_lines  # noqa: E402
from meli_hf.inference.loading import load_predictor  # noqa: E402


def read_titles(path: str, limit: int) -> list[str]:
    _, rows = read_csv(read_lines(path), path)
    titles = []
    for _, row in rows:
        titles.append(row["title"])
        if len(titles) == limit:
            break
    if not titles:
        raise MeliError(f"{path} (--input): no titles to send")
    return titles


async def load_level(
    url: str, titles: list[str], clients: int, requests: int, warmup: int, max_seconds: float, per_request: int = 1
) -> dict:
    """`requests` requests of `per_request` titles from `clients` concurrent clients: the latencies of those
    answered 200, the count of each status, and wall time.

    The level first sends max(warmup, clients) unmeasured requests at the same concurrency on the same connections,
    so that opening the connections is not counted as request latency.
    """

    async def send(http: aiohttp.ClientSession, count: int) -> tuple[list[float], Counter, float]:
        latencies: list[float] = []
        statuses: Counter = Counter()
        next_request = 0
        deadline = time.perf_counter() + max_seconds

        async def client() -> None:
            nonlocal next_request
            while next_request < count and time.perf_counter() < deadline:
                first = next_request * per_request
                batch = [titles[(first + i) % len(titles)] for i in range(per_request)]
                next_request += 1
                start = time.perf_counter()
                async with http.post(f"{url}/predict", json={"titles": batch}) as response:
                    await response.read()
                statuses[response.status] += 1
                if response.status == 200:
                    latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, statuses, time.perf_counter() - start

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await send(http, max(warmup, clients))
        latencies, statuses, wall = await send(http, requests)
    latencies.sort()
    return {
        "requests": len(latencies),
        "statuses": dict(sorted(statuses.items())),
        "p50_ms": 1000 * statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan"),
        "titles_per_s": len(latencies) * per_request / wall,
    }


def start_server(model: str, serve_flags: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--model", model, "--port", "0", *serve_flags],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    line = process.stdout.readline()
    ready = process.stdout.readline()
    if not line.startswith("listening on ") or not ready.startswith("ready: "):
        process.kill()
        raise MeliError(f"scripts/serve.py did not start (--serve_flags?): it printed {line + ready!r}")
    return process, line.split()[2].rstrip(";")


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: seconds, more than 0")
    return value


def main() -> None:
    with user_errors():
        measure()


def measure() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    parser.add_argument("--model", required=True, help="Checkpoint folder to serve.")
    parser.add_argument("--input", required=True, help="CSV file with a title column (the titles sent).")
    parser.add_argument("--clients", type=positive_int, nargs="+", default=[1, 8, 64], help="Concurrency levels.")
    parser.add_argument(
        "--requests", type=positive_int, default=2000, help="Measured requests per level (default: 2000)."
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=100,
        help="Unmeasured requests before each level, at least one per client (default: 100).",
    )
    parser.add_argument(
        "--max_seconds", type=positive_seconds, default=120, help="Time limit per level (default: 120)."
    )
    parser.add_argument("--serve_flags", default="", help="More scripts/serve.py flags, e.g. '--max_wait_ms 2'.")
    parser.add_argument("--overload_clients", type=positive_int, default=256, help="Clients of the overload.")
    parser.add_argument(
        "--overload_titles", type=positive_int, default=64, help="Titles per request of the overload (default: 64)."
    )
    parser.add_argument(
        "--overload_seconds", type=positive_seconds, default=10, help="Length of the overload (default: 10)."
    )
    args = parser.parse_args()
    if args.warmup < 0:
        parser.error(f"argument --warmup: {args.warmup}: must be 0 or more")

    titles = read_titles(args.input, max(args.requests, 10_000))
    predictor = load_predictor([args.model])
    predictor.predict(titles[:256])  # warm-up
    start = time.perf_counter()
    for first in range(0, len(titles), 256):
        predictor.predict(titles[first : first + 256])
    batch_rate = len(titles) / (time.perf_counter() - start)
    del predictor

    process, url = start_server(args.model, args.serve_flags.split())
    try:
        rows = {
            clients: asyncio.run(load_level(url, titles, clients, args.requests, args.warmup, args.max_seconds))
            for clients in args.clients
        }
        server = psutil.Process(process.pid)
        rss_before = server.memory_info().rss
        overload = asyncio.run(
            load_level(
                url, titles, args.overload_clients, 10**9, 0, args.overload_seconds, per_request=args.overload_titles
            )
        )
        rss_after = server.memory_info().rss
    finally:
        process.terminate()
        process.wait(timeout=30)

    print(f"model {args.model}, {len(titles):,} titles of {args.input}")
    print("| what | requests | p50 ms / title | p99 ms / title | titles/s |\n|---|---|---|---|---|")
    for clients, row in rows.items():
        print(
            f"| serve.py, {clients} concurrent client{'s' if clients > 1 else ''} | {row['requests']:,} | "
            f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['titles_per_s']:,.0f} |"
        )
    print(f"| predict.py batch throughput (batches of 256) | {len(titles):,} titles | - | - | {batch_rate:,.0f} |")
    print(
        f"\noverload: {args.overload_clients} clients x {args.overload_titles} titles a request for "
        f"{args.overload_seconds:g} s: statuses {overload['statuses']}, admitted p50 {overload['p50_ms']:.0f} ms, "
        f"p99 {overload['p99_ms']:.0f} ms, {overload['titles_per_s']:,.0f} titles/s answered; server RSS "
        f"{rss_before / 2**20:.0f} MiB before, {rss_after / 2**20:.0f} MiB after"
    )


if __name__ == "__main__":
    main()
