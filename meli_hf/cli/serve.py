"""Serve an ONNX copy (scripts/compact.py), a checkpoint or an ensemble over HTTP: JSON predictions with dynamic
batching, health and readiness checks, Prometheus metrics and a demo page (needs the `serve` extra, or the slim
install of requirements/serving.txt for ONNX copies).

    python scripts/serve.py --model outputs/best/lstm-onnx                     # http://127.0.0.1:8000
    curl -s localhost:8000/predict -H 'Content-Type: application/json' \\
        -d '{"titles": ["Zapatillas Nike Air Talle 42"], "top_k": 3}'
    curl -s localhost:8000/ready          # 503 until the model is loaded and warm, then 200
    curl -s localhost:8000/metrics        # Prometheus

The server listens at once and prints `listening on URL`, then loads the model and prints `ready: N categories`.
Requests that arrive together are predicted in one forward pass (up to --max_batch_size titles; those that arrive
during a pass make the next one, and --max_wait_ms lets a pass wait for company). Bad requests get 400 (no JSON), 413
(over --max_body_bytes or --max_titles) or 422 (wrong shape), each with {"error": "..."}; past --max_queue_titles
waiting titles a request gets 503 with Retry-After. SIGTERM drains: /ready turns 503, admitted requests are answered,
and the process exits 0 within --graceful_timeout. --port 0 takes a free port.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys

from ..errors import one_line_parser_errors
from . import add_checkpoint_arguments, positive_int, predictor_from_arguments, user_errors


def port_number(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value}: a port is 0 (any free one) to 65535")
    return value


def wait_ms(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text}: milliseconds, 0 or more")
    return value


def quiet_server_class():
    """uvicorn's server, which starts draining the service at the first Ctrl-C or SIGTERM (`on_exit`), and whose
    second signal while requests are in flight ends the process at once and quietly; uvicorn's own would cancel the
    requests' tasks and log a traceback for each."""
    import uvicorn

    class QuietServer(uvicorn.Server):
        def __init__(self, config, on_exit):
            super().__init__(config)
            self.on_exit = on_exit

        def handle_exit(self, sig, frame) -> None:
            if self.should_exit:
                print("error: stopped before the requests in flight were answered", file=sys.stderr, flush=True)
                os._exit(128 + sig)
            self.on_exit()
            super().handle_exit(sig, frame)

    return QuietServer


def wait_seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text}: seconds, 0 or more")
    return value


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    one_line_parser_errors(parser)
    add_checkpoint_arguments(parser)
    parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1).")
    parser.add_argument("--port", type=port_number, default=8000, help="Port (default: 8000; 0: any free one).")
    parser.add_argument(
        "--max_batch_size", type=positive_int, default=256, help="Titles per forward pass (default: 256)."
    )
    parser.add_argument(
        "--max_wait_ms",
        type=wait_ms,
        default=0.0,
        help="How long a request waits for others to share its forward pass (default: 0: a pass takes the requests "
        "waiting when it starts).",
    )
    parser.add_argument("--max_titles", type=positive_int, default=1000, help="Titles per request (default: 1000).")
    parser.add_argument(
        "--max_body_bytes", type=positive_int, default=1 << 20, help="Request body size (default: 1048576)."
    )
    parser.add_argument(
        "--max_top_k",
        type=positive_int,
        default=20,
        help="Categories per title a request may ask for (top_k; default: 20); more is refused with 422.",
    )
    parser.add_argument(
        "--max_queue_titles",
        type=positive_int,
        default=4096,
        help="Titles admitted and waiting for a forward pass (default: 4096); a request past it is answered at once "
        "with 503 and Retry-After, so that overload sends callers back instead of queueing without bound.",
    )
    parser.add_argument(
        "--graceful_timeout",
        type=wait_seconds,
        default=30.0,
        help="At SIGTERM (or Ctrl-C), /ready turns 503, the server stops listening and answers the requests it "
        "admitted, for at most this many seconds (default: 30), then exits 0.",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="Threads of a forward pass (torch's or onnxruntime's; default: one per core). On a machine whose cores "
        "also serve the requests, fewer leave the server room to answer them.",
    )
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error (or MELI_HF_DEBUG=1).")
    return parser


def main() -> None:
    with user_errors(debug="--debug" in sys.argv):
        args = argument_parser().parse_args()
        check_models_exist(args.model)  # a typo fails before the port is taken
        import gc
        import socket

        import uvicorn

        from ..inference.service import ServiceLimits, create_app

        # Bound before the model loads: a port in use fails at once, --port 0 learns its port here, and /health
        # answers while the model loads.
        try:
            listener = socket.create_server((args.host, args.port))
            # Answers go out at once: with Nagle's algorithm, a reply written in two parts waits for the client's
            # delayed ACK on a kept-alive connection. Accepted connections inherit the option.
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as err:
            raise OSError(f"--host {args.host} --port {args.port}: cannot listen there ({err.strerror})") from None
    failures: list[BaseException] = []

    def ready(predictor) -> None:
        # What is loaded now lives as long as the process; a full collection would walk all of it, with every
        # request waiting, once every few thousand requests (BENCHMARKS.md, serving).
        gc.freeze()  # process-wide: the script's call
        print(f"ready: {len(predictor.labels)} categories", flush=True)

    def load_failed(err: BaseException) -> None:
        failures.append(err)
        server.should_exit = True

    limits = ServiceLimits(
        args.max_batch_size,
        args.max_wait_ms,
        args.max_titles,
        args.max_body_bytes,
        args.max_top_k,
        args.max_queue_titles,
    )
    app = create_app(
        lambda: predictor_from_arguments(args, args.max_batch_size, args.threads), limits, ready, load_failed
    )
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=args.graceful_timeout)
    server = quiet_server_class()(config, on_exit=app.state.service.start_draining)
    host, port = listener.getsockname()[:2]
    print(f"listening on http://{host}:{port}; loading the model (GET /ready says when it serves)", flush=True)
    # uvicorn answers SIGTERM by draining, then sends it again once it has restored this handler: a drained stop is
    # a clean one (exit 0).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=[listener])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C it held once it has shut down cleanly
        sys.exit(128 + signal.SIGINT)
    if failures:
        with user_errors(debug=args.debug):
            raise failures[0]


def check_models_exist(models: list[str]) -> None:
    """A --model that names a folder where there is none fails before the port is taken and the model loads."""
    from pathlib import Path

    from ..errors import MeliError
    from ..hub import reads_as_path

    for model in models:
        if not Path(model).exists() and reads_as_path(model):
            raise MeliError(f"cannot load {model} (--model): no such folder")


if __name__ == "__main__":
    main()
