#!/usr/bin/env python
"""Serving benchmark: `scripts/serve.py` under load from 1, 8 and 64 concurrent clients on 127.0.0.1, beside the
batch throughput of `predict.py` (a `Predictor` over batches of 256 titles) on the same titles.

    python bench/serve.py --model outputs/best/lstm-int8 --input ../shared/data/meli2019-es/test.csv.gz

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
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from meli_hf.cli import positive_int, user_errors  # noqa: E402
from meli_hf.errors import MeliError, one_line_parser_errors  # noqa: E402
from meli_hf.files import read_csv, read_lines  # noqa: E402
from meli_hf.inference.predictor import Predictor  # noqa: E402


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
    url: str, titles: list[str], clients: int, requests: int, warmup: int, max_seconds: float
) -> dict:
    """`requests` one-title requests from `clients` concurrent clients: latencies and wall time.

    The level first sends max(warmup, clients) unmeasured requests at the same concurrency on the same connections,
    so that opening the connections is not counted as request latency.
    """

    async def send(http: aiohttp.ClientSession, count: int) -> tuple[list[float], float]:
        latencies: list[float] = []
        next_request = 0
        deadline = time.perf_counter() + max_seconds

        async def client() -> None:
            nonlocal next_request
            while next_request < count and time.perf_counter() < deadline:
                title = titles[next_request % len(titles)]
                next_request += 1
                start = time.perf_counter()
                async with http.post(f"{url}/predict", json={"titles": [title]}) as response:
                    response.raise_for_status()
                    await response.read()
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return latencies, time.perf_counter() - start

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        await send(http, max(warmup, clients))
        latencies, wall = await send(http, requests)
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "titles_per_s": len(latencies) / wall,
    }


def start_server(model: str, serve_flags: list[str]) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), "--model", model, "--port", "0", *serve_flags],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        raise MeliError(f"scripts/serve.py did not start (--serve_flags?): it printed {line!r}")
    return process, line.split()[-1]


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
    args = parser.parse_args()
    if args.warmup < 0:
        parser.error(f"argument --warmup: {args.warmup}: must be 0 or more")

    titles = read_titles(args.input, max(args.requests, 10_000))
    predictor = Predictor(args.model)
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
    print(
        f"| predict.py batch throughput (Predictor, batches of 256) | {len(titles):,} titles | - | - | "
        f"{batch_rate:,.0f} |"
    )


if __name__ == "__main__":
    main()
