"""Load: the pipeline and the endpoint handler serve 200 requests from 8 threads correctly."""

import gc
import resource
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from unimse_hf import PIPELINE_TASK, UniMSEPipeline
from unimse_hf.checkpoint import save_checkpoint
from unimse_testing import tiny_model, tiny_processor

TEXTS = [f"sample number {i} was {'really good' if i % 2 else 'a failure'}" for i in range(20)]


def _serve(call, requests: list, threads: int = 8) -> list:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(call, requests))


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.fixture(scope="module")
def pipe():
    return UniMSEPipeline(model=tiny_model(), processor=tiny_processor(), task=PIPELINE_TASK)


def test_pipeline_serves_200_requests_from_8_threads_with_sequential_results(pipe):
    expected = {text: pipe(text) for text in TEXTS}
    requests = [TEXTS[(i * 7) % len(TEXTS)] for i in range(200)]
    _serve(pipe, requests[:40])  # warm-up, so the memory check below sees the steady state
    gc.collect()
    before = _max_rss_mb()
    results = _serve(pipe, requests)
    after = _max_rss_mb()
    assert [expected[text] for text in requests] == results
    assert after - before < 200, f"peak RSS grew by {after - before:.0f} MB over 200 requests"


def _handler_of_a_saved_checkpoint(directory):
    """The `EndpointHandler` class from `handler.py` in a freshly saved checkpoint folder."""
    save_checkpoint(tiny_model(), tiny_processor(), directory)
    sys.path.insert(0, str(directory))
    try:
        from handler import EndpointHandler
    finally:
        sys.path.remove(str(directory))
    return EndpointHandler


def test_endpoint_handler_serves_200_widget_payloads_from_8_threads(tmp_path):
    handler = _handler_of_a_saved_checkpoint(tmp_path)(str(tmp_path))
    expected = {text: handler({"inputs": text})[0] for text in TEXTS}
    payloads = [{"inputs": TEXTS[(i * 3) % len(TEXTS)], "parameters": {"max_new_tokens": 32}} for i in range(200)]
    results = _serve(handler, payloads)
    assert results == [[expected[p["inputs"]]] for p in payloads]


def test_endpoint_handler_rejects_a_payload_without_inputs(tmp_path):
    with pytest.raises(ValueError, match="inputs"):
        _handler_of_a_saved_checkpoint(tmp_path)(str(tmp_path))({"text": "hi"})
