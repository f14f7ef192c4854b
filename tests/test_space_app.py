"""End-to-end test of the Space demo (``examples/space/app.py``) in headless Chromium.

A tiny checkpoint is saved, the app is started in a child process on a free loopback port (with the
suite's network guard, so any non-loopback connection it tries fails the test), and Playwright drives
Debian's Chromium: type a transcript, press Predict, read the outputs and the emotion bar chart; then
the same with an acoustic ``.npy`` feature file, and with a file of the wrong frame size, which must
give an error message in the page. Every request the browser makes is recorded: requests that would
leave loopback are aborted and fail the test.

Needs ``gradio`` and ``playwright`` (pip) and ``/usr/bin/chromium`` (Debian package ``chromium``);
skipped with the reason when one is missing. ``UNIMSE_SPACE_SCREENSHOT=<file.png>`` saves a screenshot
of the page after the first prediction.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import numpy as np
import pytest
from hub_testing import subprocess_env

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_PATH = REPO_ROOT / "examples" / "space" / "app.py"
CHROMIUM_PATH = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
SERVER_START_TIMEOUT_S = 300.0  # a shared, loaded machine takes minutes to import gradio and torch
PREDICTION_TIMEOUT_MS = 60_000
ACOUSTIC_DIM = 8  # tiny_processor()'s acoustic frame size
ACOUSTIC_FRAMES = 30
SCREENSHOT_ENV = "UNIMSE_SPACE_SCREENSHOT"


def _missing_requirement() -> str | None:
    """Why the end-to-end test cannot run here, or None when it can."""
    for module_name, install in (("gradio", "pip install gradio"), ("playwright", "pip install playwright")):
        if importlib.util.find_spec(module_name) is None:
            return f"`{module_name}` is not installed ({install})"
    if not CHROMIUM_PATH.is_file():
        return f"{CHROMIUM_PATH} is missing (apt-get install chromium)"
    return None


def _media_extra_available() -> bool:
    """Whether the server (same interpreter) can turn raw audio/video into features."""
    return all(importlib.util.find_spec(name) is not None
               for name in ("av", "librosa", "pocketsphinx", "mediapipe"))


pytestmark = pytest.mark.skipif(_missing_requirement() is not None, reason=str(_missing_requirement()))


def _free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(url: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it exits or takes too long."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the Space app exited with {server.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            with opener.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    pytest.fail(f"the Space app did not serve {url} within {SERVER_START_TIMEOUT_S:.0f} s:\n"
                f"{log_path.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def space_workdir() -> Iterator[Path]:
    """A folder for this module's checkpoint, feature files, server log and Gradio uploads."""
    folder = Path(tempfile.mkdtemp(prefix="unimse-space-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def space_url(space_workdir: Path) -> Iterator[str]:
    """Save a tiny checkpoint, serve the app on a free loopback port and yield its URL; stop it after."""
    from unimse_testing import tiny_model, tiny_processor

    from unimse_hf.checkpoint import save_checkpoint

    checkpoint = save_checkpoint(tiny_model(), tiny_processor(), space_workdir / "checkpoint")
    port = _free_loopback_port()
    env = subprocess_env(extra={
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(space_workdir / "gradio"),
        "HF_HUB_OFFLINE": "1",
    })
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO_ROOT)])  # guard first, then unimse_hf
    log_path = space_workdir / "server.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [sys.executable, str(APP_PATH), "--checkpoint", str(checkpoint), "--port", str(port),
             "--host", "127.0.0.1"],
            cwd=str(space_workdir), env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


class BrowserSession:
    """Headless Chromium (fresh profile) that aborts and records every request leaving loopback."""

    def __init__(self, profile_dir: Path) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright_manager = sync_playwright()
        playwright = self._playwright_manager.start()
        self.context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_FLAGS),
            viewport={"width": 1280, "height": 900},
        )
        self.outside_requests: list[str] = []
        self.context.route("**/*", self._keep_on_loopback)

    def _keep_on_loopback(self, route: Route) -> None:
        """Let loopback requests through; abort and record any other http(s)/ws(s) request."""
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in {"http", "https", "ws", "wss"} and (parts.hostname or "") not in LOOPBACK_HOSTS:
            self.outside_requests.append(url)
            route.abort()
        else:
            route.continue_()

    def close(self) -> None:
        """Close the browser and the Playwright driver."""
        self.context.close()
        self._playwright_manager.__exit__(None, None, None)


@pytest.fixture(scope="module")
def browser(space_workdir: Path) -> Iterator[BrowserSession]:
    """One Chromium for the module's tests."""
    session = BrowserSession(space_workdir / "chromium-profile")
    yield session
    session.close()


@pytest.fixture
def page(browser: BrowserSession, space_url: str) -> Iterator[Page]:
    """A new tab with the app loaded; afterwards, fail if it made a request that leaves loopback."""
    tab = browser.context.new_page()
    tab.goto(space_url)
    tab.locator("#transcript textarea").wait_for()
    yield tab
    tab.close()
    assert browser.outside_requests == [], f"the page requested non-loopback URLs: {browser.outside_requests}"


@pytest.fixture(scope="module")
def feature_files(space_workdir: Path) -> dict[str, Path]:
    """An acoustic feature file of the checkpoint's frame size and one with the wrong size."""
    rng = np.random.default_rng(0)
    files = {"acoustic": space_workdir / "acoustic.npy", "wrong_dim": space_workdir / "acoustic_wrong_dim.npy"}
    np.save(files["acoustic"], rng.standard_normal((ACOUSTIC_FRAMES, ACOUSTIC_DIM)).astype(np.float32))
    np.save(files["wrong_dim"], rng.standard_normal((ACOUSTIC_FRAMES, ACOUSTIC_DIM - 3)).astype(np.float32))
    return files


def _predict(page: Page, transcript: str, expected_status: str) -> str:
    """Type ``transcript``, press Predict and wait until the status line contains ``expected_status``."""
    from playwright.sync_api import expect

    page.locator("#transcript textarea").fill(transcript)
    page.locator("#predict").click()
    status = page.locator("#status")
    expect(status).to_contain_text(expected_status, timeout=PREDICTION_TIMEOUT_MS)
    return str(status.inner_text())


def _upload_acoustic_features(page: Page, path: Path) -> None:
    """Open the features accordion and upload ``path`` as the acoustic feature file."""
    page.get_by_text("Precomputed features (optional)").click()
    page.locator("#acoustic-features input[type=file]").set_input_files(str(path))
    page.locator("#acoustic-features td.filename").wait_for()  # the upload finished


def _assert_valid_prediction(page: Page) -> None:
    """The score, polarity, emotions and bar chart shown are well formed."""
    from unimse_hf.labels import IEMOCAP_EMOTIONS, MELD_EMOTIONS, POLARITIES, SCORE_RANGE

    score = float(page.locator("#score input").input_value())
    assert SCORE_RANGE[0] <= score <= SCORE_RANGE[1]
    assert page.locator("#polarity textarea").input_value() in POLARITIES
    assert page.locator("#emotion textarea").input_value() in MELD_EMOTIONS
    assert page.locator("#iemocap-emotion textarea").input_value() in IEMOCAP_EMOTIONS
    bars = page.locator("#emotion-chart svg g.mark-rect path")
    bars.first.wait_for()
    assert bars.count() == len(MELD_EMOTIONS)
    axis_labels = page.locator("#emotion-chart svg g.role-axis-label text").all_text_contents()  # SVG: no innerText
    assert [label for label in axis_labels if label in MELD_EMOTIONS] == list(MELD_EMOTIONS)  # model order


def test_transcript_prediction_shows_labels_and_emotion_chart(page: Page) -> None:
    """Typing a transcript and pressing Predict shows valid labels and a 7-bar emotion chart."""
    status = _predict(page, "I really loved this movie, it was wonderful.", "Predicted from text.")
    assert "Error" not in status
    _assert_valid_prediction(page)
    screenshot_path = os.environ.get(SCREENSHOT_ENV)
    if screenshot_path:
        page.screenshot(path=screenshot_path, full_page=True)


def test_acoustic_feature_file_is_used(page: Page, feature_files: dict[str, Path]) -> None:
    """An uploaded acoustic .npy of the right frame size is used for the prediction."""
    _upload_acoustic_features(page, feature_files["acoustic"])
    _predict(page, "That was a terrible idea.", f"text + acoustic features ({ACOUSTIC_FRAMES} frames)")
    _assert_valid_prediction(page)


def test_modality_contributions_are_shown_for_the_given_features(page: Page, feature_files: dict[str, Path]) -> None:
    """With acoustic features, the contributions table shows the prediction without them and the deltas."""
    from playwright.sync_api import expect

    _upload_acoustic_features(page, feature_files["acoustic"])
    _predict(page, "That was a terrible idea.", "text + acoustic features")
    table = page.locator("#modality-contributions")
    expect(table).to_contain_text("acoustic", timeout=PREDICTION_TIMEOUT_MS)
    expect(table).to_contain_text("score delta")


def test_wrong_feature_dimension_shows_an_error(page: Page, feature_files: dict[str, Path]) -> None:
    """A .npy with the wrong frame size gives an error naming both shapes and clears the results."""
    _upload_acoustic_features(page, feature_files["wrong_dim"])
    status = _predict(page, "That was a terrible idea.", "Error")
    assert f"(frames, {ACOUSTIC_DIM})" in status
    assert f"({ACOUSTIC_FRAMES}, {ACOUSTIC_DIM - 3})" in status
    assert page.locator("#polarity textarea").input_value() == ""


def test_audio_upload_is_refused_for_a_text_only_checkpoint_or_explained(page: Page, space_workdir: Path) -> None:
    """A wav upload for this checkpoint, which records no media feature kinds (like the text-only demo's), is
    refused naming the missing acoustic features; where the media extra is missing, the message says how to
    install it."""
    sampling_rate = 16_000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sampling_rate) / sampling_rate)
    wav_path = space_workdir / "tone.wav"
    with wave.open(str(wav_path), "wb") as wav_file:
        wav_file.setnchannels(1)
        wav_file.setsampwidth(2)
        wav_file.setframerate(sampling_rate)
        wav_file.writeframes((tone * 32767).astype("<i2").tobytes())
    page.get_by_text("Audio / video (optional)").click()
    page.locator("#audio input[type=file]").set_input_files(str(wav_path))
    page.locator("#audio audio, #audio [data-testid=waveform-Audio], #audio .waveform-container").first.wait_for()
    status = _predict(page, "It sounds fine to me.", "Error")
    if _media_extra_available():
        assert "not trained on media features" in status and "acoustic_feature_kind" in status, status
    else:
        assert "media extra" in status and "unimse-hf[media]" in status, status


def test_empty_transcript_shows_an_error(page: Page) -> None:
    """A blank transcript is refused with a message instead of a prediction."""
    status = _predict(page, "   ", "Error")
    assert "transcript" in status.lower()


# ------------------------------------------------------------------------------------------------
# The feature-file checks, without a browser
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def space_app() -> ModuleType:
    """``examples/space/app.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location("unimse_space_app", APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros(ACOUSTIC_DIM, dtype=np.float32), "must have shape (frames, 8)"),
        (np.zeros((0, ACOUSTIC_DIM), dtype=np.float32), "have no frames"),
        (np.full((4, ACOUSTIC_DIM), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.array([["a"] * ACOUSTIC_DIM]), "real-valued numeric array"),
    ],
    ids=["one-dimensional", "no-frames", "nan", "strings"],
)
def test_bad_feature_files_are_explained(space_app: ModuleType, tmp_path: Path, array: np.ndarray,
                                         message: str) -> None:
    """Feature arrays that cannot be frames of the checkpoint's size are refused with a clear message."""
    path = tmp_path / "features.npy"
    np.save(path, array)
    with pytest.raises(space_app.InputProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        space_app.load_feature_file(str(path), "acoustic", ACOUSTIC_DIM)


def test_pickled_and_misnamed_feature_files_are_refused(space_app: ModuleType, tmp_path: Path) -> None:
    """Object arrays (which would need pickle) and files that are not .npy are refused."""
    pickled = tmp_path / "objects.npy"
    np.save(pickled, np.array([{"frames": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(space_app.InputProblem, match="Could not read acoustic features"):
        space_app.load_feature_file(str(pickled), "acoustic", ACOUSTIC_DIM)
    text_file = tmp_path / "features.txt"
    text_file.write_text("1 2 3")
    with pytest.raises(space_app.InputProblem, match="must be a .npy file"):
        space_app.load_feature_file(str(text_file), "acoustic", ACOUSTIC_DIM)


def test_contributions_frame_has_one_row_per_given_modality(space_app: ModuleType) -> None:
    """The table lists each modality with the label predicted without it and the rounded deltas."""
    contributions = {"acoustic": {"without": {"label": "negative,-1.0000,sadness,sad"}, "score_delta": 0.123456,
                                  "emotion_probability_delta": None}}
    frame = space_app.contributions_frame(contributions)
    assert list(frame.columns) == list(space_app.CONTRIBUTION_COLUMNS)
    assert frame.values.tolist() == [["acoustic", "negative,-1.0000,sadness,sad", 0.1235, None]]
