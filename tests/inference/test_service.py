"""The HTTP service (meli_hf.inference.service, scripts/serve.py): answers, dynamic batching, bad requests, the demo
page in a real headless browser."""

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

fastapi_testclient = pytest.importorskip("fastapi.testclient", reason="the serve extra (fastapi, httpx) is missing")

from meli_hf.inference.batching import DynamicBatcher  # noqa: E402
from meli_hf.inference.predictor import Predictor  # noqa: E402
from meli_hf.inference.service import ServiceLimits, create_app  # noqa: E402

from ..conftest import train_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TITLES = ["Heladera Gafa No Frost 300 litros", "Zapatillas Nike Air Talle 42", "Taladro Percutor Bosch"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def mlp_dir(sample_dir, tmp_path_factory) -> Path:
    return train_checkpoint(sample_dir, tmp_path_factory.mktemp("mlp"), "mlp", 2)


@pytest.fixture(scope="module")
def predictor(mlp_dir) -> Predictor:
    return Predictor(str(mlp_dir))


@contextlib.contextmanager
def ready_client(predictor, limits: ServiceLimits):
    """A test client of the service over `predictor`, once `/ready` says it serves."""
    with fastapi_testclient.TestClient(create_app(lambda: predictor, limits)) as test_client:
        deadline = time.monotonic() + 30
        while test_client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline, "the service never got ready"
            time.sleep(0.01)
        yield test_client


@pytest.fixture
def client(predictor):
    with ready_client(predictor, ServiceLimits(max_titles=5, max_body_bytes=2000)) as test_client:
        yield test_client


def test_the_service_answers_as_the_predictor_does(client, predictor, mlp_dir):
    assert client.get("/health").json() == {"status": "ok", "models": [mlp_dir.name], "categories": 30}
    response = client.post("/predict", json={"titles": [*TITLES, "  "], "top_k": 3})
    assert response.status_code == 200
    expected = predictor.predict([*TITLES, "  "], top_k=3)
    answered = response.json()["predictions"]
    assert [[p["label"] for p in row] for row in answered] == [[p["label"] for p in row] for row in expected]
    for row, expected_row in zip(answered, expected):
        assert [p["score"] for p in row] == pytest.approx([p["score"] for p in expected_row], abs=1e-6)
    assert answered[-1] == []  # an empty title gets no prediction, as predict.py
    assert client.post("/predict", json={"titles": TITLES[:1]}).json()["predictions"][0][0] == expected[0][0] | {
        "score": pytest.approx(expected[0][0]["score"], abs=1e-6)
    }
    page = client.get("/")
    assert page.status_code == 200 and "<textarea" in page.text


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'{"titles": ["a"', 400, "the request body is no JSON"),
        (b"\xff\xfe", 400, "the request body is no JSON"),
        (b'{"titles": []}', 422, "titles: List should have at least 1 item"),
        (b'{"titles": "Heladera"}', 422, "titles: Input should be a valid list"),
        (b'{"titles": ["Heladera", 3]}', 422, "titles.1: Input should be a valid string"),
        (b'{"titles": ["Heladera"], "top_k": 0}', 422, "top_k: Input should be greater than or equal to 1"),
        (b'{"titles": ["Heladera"], "top_k": 1.5}', 422, "top_k: Input should be a valid integer"),
        (b'{"title": "Heladera"}', 422, "titles: Field required"),
        (b'["Heladera"]', 422, "body: Input should be a valid dictionary"),
        (b'{"titles": ["a", "b", "c", "d", "e", "f"]}', 413, "6 titles: at most 5 a request"),
        (b'{"titles": ["' + b"a" * 3000 + b'"]}', 413, "the request body is over 2000 bytes"),
    ],
)
def test_bad_requests_get_a_status_and_one_message(client, body, status, message):
    response = client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"].startswith(message)


@pytest.fixture
def roomy_client(predictor):
    """A service that takes bodies of a megabyte: room for hostile JSON."""
    with ready_client(predictor, ServiceLimits(max_top_k=20)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b'{"titles": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "the request body is JSON nested deeper"),
        (b'{"titles": ["a"], "top_k": ' + b"9" * 5000 + b"}", 400, "the request body is no JSON (Exceeds the limit"),
        (b'{"titles": ["Heladera", "Gafa \\ud800"]}', 422, "titles.1: not valid Unicode text (a lone surrogate"),
        (b'{"titles": ["Heladera"], "top_k": 21}', 422, "top_k: at most 20 (the service's --max_top_k)"),
    ],
)
def test_hostile_json_gets_a_status_and_one_message(roomy_client, body, status, message):
    response = roomy_client.post("/predict", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"].startswith(message)
    assert roomy_client.post("/predict", json={"titles": ["Heladera"]}).status_code == 200  # the service is well


def test_top_k_is_cut_to_the_categories(predictor):
    with ready_client(predictor, ServiceLimits(max_top_k=100)) as client:
        predictions = client.post("/predict", json={"titles": ["Heladera"], "top_k": 100}).json()["predictions"]
    assert len(predictions[0]) == len(predictor.labels) == 30


class CountingPredictor:
    """Predicts each title's own text as its label, and counts the forward passes."""

    def __init__(self):
        self.calls: list[int] = []

    def predict(self, titles, top_k):
        self.calls.append(len(titles))
        return [[{"label": title, "score": 1.0}] * top_k for title in titles]


def test_concurrent_requests_share_forward_passes_and_get_their_own_rows():
    async def scenario():
        counting = CountingPredictor()
        batcher = DynamicBatcher(counting, max_batch_size=64, max_wait_ms=50)
        worker = asyncio.create_task(batcher.run())
        requests = [[f"title {i}-{j}" for j in range(i % 3 + 1)] for i in range(20)]
        answers = await asyncio.gather(*(batcher.predict(titles, i % 2 + 1) for i, titles in enumerate(requests)))
        worker.cancel()
        batcher.close()
        return counting.calls, requests, answers

    calls, requests, answers = asyncio.run(scenario())
    assert sum(calls) == sum(len(titles) for titles in requests) and len(calls) < 5  # 40 titles in a pass or two
    for i, (titles, rows) in enumerate(zip(requests, answers)):
        assert [row[0]["label"] for row in rows] == titles and all(len(row) == i % 2 + 1 for row in rows)


class FailingPredictor(CountingPredictor):
    """Fails every forward pass that holds the title `boom`, as a pass over a title the tokenizer rejects would."""

    def predict(self, titles, top_k):
        if "boom" in titles:
            self.calls.append(len(titles))
            raise ValueError("cannot encode")
        return super().predict(titles, top_k)


def test_a_request_that_fails_a_shared_pass_fails_alone():
    async def scenario():
        failing = FailingPredictor()
        batcher = DynamicBatcher(failing, max_batch_size=64, max_wait_ms=0)
        requests = [[f"good {i}"] for i in range(8)] + [["boom"]]
        answers = [asyncio.create_task(batcher.predict(titles, 1)) for titles in requests]
        await asyncio.sleep(0)  # all nine are queued: one shared pass
        worker = asyncio.create_task(batcher.run())
        results = await asyncio.gather(*answers, return_exceptions=True)
        worker.cancel()
        batcher.close()
        return failing.calls, results

    calls, results = asyncio.run(scenario())
    assert calls[0] == 9 and len(calls) == 10  # the shared pass, then each request alone
    assert [row[0][0]["label"] for row in results[:8]] == [f"good {i}" for i in range(8)]
    assert isinstance(results[8], ValueError)


def test_without_waiting_a_pass_takes_every_request_already_queued():
    async def scenario():
        counting = CountingPredictor()
        batcher = DynamicBatcher(counting, max_batch_size=64, max_wait_ms=0)
        answers = [asyncio.create_task(batcher.predict([f"t{i}"], 1)) for i in range(10)]
        await asyncio.sleep(0)  # all ten are queued before the worker starts
        worker = asyncio.create_task(batcher.run())
        await asyncio.gather(*answers)
        worker.cancel()
        batcher.close()
        return counting.calls

    assert asyncio.run(scenario()) == [10]


def test_batches_stop_at_max_batch_size():
    async def scenario():
        counting = CountingPredictor()
        batcher = DynamicBatcher(counting, max_batch_size=4, max_wait_ms=50)
        worker = asyncio.create_task(batcher.run())
        await asyncio.gather(*(batcher.predict([f"t{i}"], 1) for i in range(10)))
        worker.cancel()
        batcher.close()
        return counting.calls

    calls = asyncio.run(scenario())
    assert sum(calls) == 10 and max(calls) <= 4


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "serve.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "70000"], "argument --port: 70000: a port is 0 (any free one) to 65535"),
        (["--max_wait_ms", "nan"], "argument --max_wait_ms: nan: milliseconds, 0 or more"),
        (["--max_batch_size", "0"], "argument --max_batch_size: 0: must be at least 1"),
        (["--max_titles", "-3"], "argument --max_titles: -3: must be at least 1"),
        (["--threads", "0"], "argument --threads: 0: must be at least 1"),
    ],
)
def test_nonsense_flags_are_one_line_errors(mlp_dir, flags, message):
    result = run_serve("--model", str(mlp_dir), *flags)
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [f"error: {message} (see --help)"]


def test_an_unusable_model_or_port_is_one_line(mlp_dir, tmp_path):
    result = run_serve("--model", str(tmp_path / "typo"), "--port", "0")
    assert result.stderr.strip().splitlines() == [f"error: cannot load {tmp_path / 'typo'} (--model): no such folder"]
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_serve("--model", str(mlp_dir), "--port", str(port))
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        f"error: --host 127.0.0.1 --port {port}: cannot listen there"
    )


class Server(str):
    """A running scripts/serve.py: its URL, and its process."""

    def __new__(cls, url: str, process: subprocess.Popen):
        server = super().__new__(cls, url)
        server.process = process
        return server


@pytest.fixture
def server(mlp_dir):
    """scripts/serve.py on a free port of 127.0.0.1, at most 3 titles a request; its URL."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "scripts" / "serve.py"),
            "--model",
            str(mlp_dir),
            "--port",
            "0",
            "--max_titles",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"HF_HUB_OFFLINE": "1"},
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), process.stderr.read()
        url = line.split()[2].rstrip(";")
        assert process.stdout.readline() == "ready: 30 categories\n"
        yield Server(url, process)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def test_a_second_ctrl_c_with_a_request_in_flight_stops_quietly(server):
    import signal
    import socket
    import urllib.parse

    address = urllib.parse.urlsplit(server)
    with socket.create_connection((address.hostname, address.port)) as connection:
        # Headers announce a body that never comes: the request stays in flight, and shutdown waits for it.
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        time.sleep(1)
        server.process.send_signal(signal.SIGINT)
        time.sleep(1)
        server.process.send_signal(signal.SIGINT)
        stderr = server.process.communicate(timeout=30)[1]
    assert server.process.returncode == 128 + signal.SIGINT
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith("error: stopped before")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium for the browser test (Debian: apt-get install chromium)")
def test_the_demo_page_classifies_in_a_real_browser(server, predictor):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is missing")
    import httpx

    assert httpx.get(f"{server}/health").json()["status"] == "ok"
    expected = predictor.predict(TITLES, top_k=2)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_page()
            page.goto(server + "/")
            page.fill("#titles", "\n".join(TITLES))
            page.fill("#top_k", "2")
            page.click("#classify")
            page.wait_for_selector("tr.prediction")
            rows = [
                [cell.inner_text() for cell in row.query_selector_all("td")]
                for row in page.query_selector_all("tr.prediction")
            ]
            assert [row[1] for row in rows] == [p["label"] for predictions in expected for p in predictions]
            assert [row[0] for row in rows[::2]] == TITLES
            page.fill("#titles", "\n".join([*TITLES, "Notebook Lenovo"]))  # the service's refusal is shown
            page.click("#classify")
            page.wait_for_function("document.getElementById('error').textContent.length > 0")
            assert page.inner_text("#error") == "4 titles: at most 3 a request"
            assert page.query_selector_all("tr.prediction") == []
        finally:
            browser.close()


class GatedPredictor(CountingPredictor):
    """Holds every forward pass until `gate` is set (a model that is slow to load or to answer)."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.labels = ["A"]
        self.model_names = ["gated"]

    def predict(self, titles, top_k=1):
        self.gate.wait(30)
        return super().predict(titles, top_k)


def test_the_service_is_alive_at_once_and_ready_after_loading_and_warming_up():
    loading = threading.Event()
    gated = GatedPredictor()

    def load():
        loading.wait(30)
        return gated

    with fastapi_testclient.TestClient(create_app(load, ServiceLimits())) as client:
        assert client.get("/health").json() == {"status": "loading", "models": [], "categories": None}
        for path, method in (("/ready", client.get), ("/predict", client.post)):
            response = method(path, json={"titles": ["x"]}) if path == "/predict" else method(path)
            assert response.status_code == 503 and response.headers["Retry-After"] == "1"
            assert response.json() == {"error": "the model is loading"}
        loading.set()  # loaded; the warm-up pass still waits at the gate
        time.sleep(0.2)
        assert client.get("/ready").status_code == 503 and gated.calls == []
        gated.gate.set()
        deadline = time.monotonic() + 10
        while client.get("/ready").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert gated.calls == [1]  # the warm-up pass
        assert client.get("/health").json() == {"status": "ok", "models": ["gated"], "categories": 1}
        client.app.state.service.start_draining()  # what the server's SIGTERM does
        assert client.get("/ready").status_code == 503
        assert client.post("/predict", json={"titles": ["x"]}).json() == {"error": "the service is stopping"}
        assert client.get("/health").json()["status"] == "draining"


def test_a_failed_load_is_reported_and_the_service_never_ready():
    failures = []

    def load():
        raise ValueError("no such model\nmore")

    with fastapi_testclient.TestClient(create_app(load, ServiceLimits(), on_load_failure=failures.append)) as client:
        deadline = time.monotonic() + 10
        while not failures:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.get("/health").json()["status"] == "failed"
        assert client.get("/ready").json() == {"error": "the model could not be loaded"}
    assert str(failures[0]) == "no such model\nmore"


def test_past_the_queue_bound_a_request_is_refused_at_once():
    gated = GatedPredictor()
    with fastapi_testclient.TestClient(create_app(lambda: gated, ServiceLimits(max_queue_titles=4))) as client:
        gated.gate.set()
        while client.get("/ready").status_code != 200:
            time.sleep(0.01)
        gated.gate.clear()
        answers = {}

        def ask(name: str, titles: int) -> None:
            answers[name] = client.post("/predict", json={"titles": [name] * titles})

        first = threading.Thread(target=ask, args=("first", 2))  # taken into a pass that waits at the gate
        first.start()
        while client.app.state.batcher.forward_calls < 1:
            time.sleep(0.01)
        waiting = [threading.Thread(target=ask, args=(f"waiting{i}", 2)) for i in range(2)]  # 4 titles wait
        for thread in waiting:
            thread.start()
        while client.app.state.batcher.queued_titles < 4:
            time.sleep(0.01)
        start = time.monotonic()
        refused = client.post("/predict", json={"titles": ["one more"]})
        assert time.monotonic() - start < 5  # answered at once, not after the passes ahead of it
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
        assert refused.json() == {"error": "the service is busy: 4 titles are waiting; the service admits 4"}
        gated.gate.set()
        for thread in [first, *waiting]:
            thread.join(30)
        assert {name: answer.status_code for name, answer in answers.items()} == dict.fromkeys(answers, 200)
        assert client.app.state.batcher.queued_titles == 0


def test_metrics_count_requests_latency_batches_and_the_queue(client):
    for _ in range(2):
        client.post("/predict", json={"titles": TITLES})
    client.post("/predict", content=b"{")
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain; version=")
    lines = set(metrics.text.splitlines())
    assert 'meli_requests_total{route="/predict",status="200"} 2.0' in lines
    assert 'meli_requests_total{route="/predict",status="400"} 1.0' in lines
    assert 'meli_request_seconds_count{route="/predict"} 3.0' in lines
    assert "meli_batch_titles_count 2.0" in lines  # a pass of 3 titles per request
    assert 'meli_batch_titles_bucket{le="2.0"} 0.0' in lines and 'meli_batch_titles_bucket{le="4.0"} 2.0' in lines
    assert "meli_queue_titles 0.0" in lines and "meli_ready 1.0" in lines


def test_the_openapi_page_shows_typed_requests_and_answers(client):
    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/predict"]["post"]
    request = predict["requestBody"]["content"]["application/json"]["schema"]
    assert request["properties"]["titles"]["items"]["type"] == "string" and request["required"] == ["titles"]
    assert predict["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictResponse"
    }
    assert predict["responses"]["503"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorResponse")
    assert set(schema["components"]["schemas"]["CategoryScore"]["properties"]) == {"label", "score"}


def test_sigterm_drains_admitted_requests_and_exits_zero(server):
    import json
    import signal
    import socket
    import urllib.parse

    address = urllib.parse.urlsplit(server)
    body = json.dumps({"titles": TITLES[:2]}).encode()
    with socket.create_connection((address.hostname, address.port)) as connection:
        # Admitted: its headers are in; its body comes only after the SIGTERM.
        connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        connection.sendall(f"Content-Length: {len(body)}\r\n\r\n".encode())
        time.sleep(0.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        with pytest.raises(OSError):  # no longer listening
            socket.create_connection((address.hostname, address.port), timeout=2).close()
        connection.sendall(body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK") and b'"predictions"' in answer
    stdout, stderr = server.process.communicate(timeout=30)
    assert server.process.returncode == 0, stderr
    assert "Traceback" not in stderr
