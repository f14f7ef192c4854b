# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""A Gradio demo (Hugging Face Space) for UniMSE checkpoints.

Enter a transcript, optionally upload the utterance's audio and/or video or precomputed frame-level
features (``.npy`` arrays of shape ``(frames, dim)``), and see the predicted sentiment score, polarity
and emotion, with a bar chart of the probability of each MELD emotion and, for each modality given, what
the model predicts without it (the pipeline's ``return_modality_contributions``).

A checkpoint trained on text alone (such as the one ``make demo`` saves) records no media feature kinds;
for it the pipeline refuses audio/video with a message naming the missing features, shown as the error.

Run locally::

    python examples/space/app.py --checkpoint path/or/repo-id [--port 7860] [--host 127.0.0.1]

On a Space, set the ``UNIMSE_CHECKPOINT`` variable to the model repository. The checkpoint is loaded
with ``trust_remote_code=True`` (its pipeline and model code come from the checkpoint), so pin
``UNIMSE_REVISION`` to a commit you have reviewed.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Before gradio is imported: no telemetry and no version check against api.gradio.app.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import gradio as gr  # noqa: E402 - after the environment above
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from transformers import Pipeline, pipeline  # noqa: E402

LOGGER = logging.getLogger("unimse_space")

PIPELINE_TASK = "multimodal-sentiment-analysis"
DEFAULT_PORT = 7860
DEFAULT_HOST = "127.0.0.1"
MAX_UPLOAD_SIZE = "200mb"
FEATURE_FILE_SUFFIX = ".npy"
MEDIA_EXTRA_MODULES = ("unimse_hf.media", "av", "librosa", "pocketsphinx", "mediapipe")
MEDIA_EXTRA_INSTALL = "pip install 'unimse-hf[media]'"
EXAMPLE_TRANSCRIPTS = (
    "I absolutely loved this movie, the acting was wonderful.",
    "Honestly, that was the worst meal I have had in years.",
    "The meeting is scheduled for three o'clock on Tuesday.",
)
CHART_EMOTION_COLUMN = "emotion"
CHART_PROBABILITY_COLUMN = "probability"
CONTRIBUTION_COLUMNS = ("modality removed", "prediction without it", "score delta (with - without)",
                        "predicted emotion probability delta (with - without)")


class InputProblem(ValueError):
    """A problem with what the user entered or uploaded; its message is shown in the UI as is."""


@dataclass(frozen=True)
class FeatureDimensions:
    """The frame sizes a checkpoint expects for precomputed features (``None``: not known, not checked)."""

    acoustic: int | None
    visual: int | None


@dataclass(frozen=True)
class PredictionView:
    """Everything the output side of the demo shows for one request."""

    score: float | None
    polarity: str
    emotion: str
    iemocap_emotion: str
    generated_label: str
    emotion_chart: pd.DataFrame | None
    contributions: pd.DataFrame | None
    status: str

    def as_outputs(self) -> tuple[Any, ...]:
        """The values in the order of the Predict button's output components."""
        chart: Any = None
        if self.emotion_chart is not None:  # bars in the model's emotion order, not alphabetical
            chart = gr.BarPlot(value=self.emotion_chart, sort=self.emotion_chart[CHART_EMOTION_COLUMN].tolist())
        contributions = self.contributions if self.contributions is not None else contributions_frame({})
        return (self.score, self.polarity, self.emotion, self.iemocap_emotion, self.generated_label, chart,
                contributions, self.status)


def media_extra_available() -> bool:
    """Return True when raw audio/video can be turned into features here (the ``unimse-hf[media]`` extra)."""
    for module_name in MEDIA_EXTRA_MODULES:
        try:
            if importlib.util.find_spec(module_name) is None:
                return False
        except (ImportError, ValueError):  # a missing parent package of a dotted name
            return False
    return True


def load_pipeline(checkpoint: str, revision: str | None = None) -> Pipeline:
    """Load the checkpoint's ``multimodal-sentiment-analysis`` pipeline (a local folder or a Hub repo id)."""
    if not checkpoint:
        raise ValueError("No checkpoint given: pass --checkpoint or set UNIMSE_CHECKPOINT")
    # transformers types `pipeline()` only for its built-in task names, hence the ignore.
    loaded: Pipeline = pipeline(task=PIPELINE_TASK, model=checkpoint, revision=revision,  # type: ignore[call-overload]
                                trust_remote_code=True)
    return loaded


def checkpoint_feature_dimensions(unimse_pipeline: Pipeline) -> FeatureDimensions:
    """Read the acoustic and visual frame sizes from the pipeline's feature extractor."""
    processor = getattr(unimse_pipeline, "processor", None)
    feature_extractor = getattr(processor, "feature_extractor", None)
    return FeatureDimensions(acoustic=getattr(feature_extractor, "acoustic_dim", None),
                             visual=getattr(feature_extractor, "visual_dim", None))


def load_feature_file(path: str | None, modality: str, expected_dim: int | None) -> np.ndarray | None:
    """Read an uploaded ``.npy`` feature file and check it is a finite ``(frames, expected_dim)`` array.

    Returns ``None`` when nothing was uploaded; raises :class:`InputProblem` with a message for the user
    when the file is not a usable feature array.
    """
    if not path:
        return None
    file_name = Path(path).name
    if Path(path).suffix.lower() != FEATURE_FILE_SUFFIX:
        raise InputProblem(f"{modality.capitalize()} features must be a {FEATURE_FILE_SUFFIX} file, got '{file_name}'.")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputProblem(f"Could not read {modality} features from '{file_name}': {error}") from error
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InputProblem(f"{modality.capitalize()} features in '{file_name}' must be a real-valued numeric array.")
    expected_shape = f"(frames, {expected_dim})" if expected_dim is not None else "(frames, dim)"
    if array.ndim != 2:
        raise InputProblem(f"{modality.capitalize()} features must have shape {expected_shape}; "
                           f"'{file_name}' has shape {tuple(array.shape)}.")
    if expected_dim is not None and array.shape[1] != expected_dim:
        raise InputProblem(f"{modality.capitalize()} features must have shape {expected_shape} for this checkpoint; "
                           f"'{file_name}' has shape {tuple(array.shape)} ({array.shape[1]} values per frame, "
                           f"expected {expected_dim}).")
    if array.shape[0] == 0:
        raise InputProblem(f"{modality.capitalize()} features in '{file_name}' have no frames.")
    if not np.all(np.isfinite(array)):
        raise InputProblem(f"{modality.capitalize()} features in '{file_name}' contain NaN or infinite values.")
    return array.astype(np.float32, copy=False)


def build_pipeline_inputs(
    transcript: str | None,
    audio_path: str | None,
    video_path: str | None,
    acoustic_feature_path: str | None,
    visual_feature_path: str | None,
    dimensions: FeatureDimensions,
) -> dict[str, Any]:
    """Check the form's values and turn them into the pipeline's input dict.

    Raises :class:`InputProblem` for an empty transcript, an unreadable or mis-shaped feature file, a
    modality given both as raw media and as features, or raw media without the media extra.
    """
    text = (transcript or "").strip()
    if not text:
        raise InputProblem("Enter a transcript: the model always needs the words that were said.")
    if audio_path and acoustic_feature_path:
        raise InputProblem("Give either an audio file or acoustic features (.npy), not both.")
    if video_path and visual_feature_path:
        raise InputProblem("Give either a video file or visual features (.npy), not both.")
    if (audio_path or video_path) and not media_extra_available():
        raise InputProblem(f"Predicting from raw audio/video needs the media extra, which is not installed here "
                           f"({MEDIA_EXTRA_INSTALL}). Upload precomputed .npy features instead.")
    inputs: dict[str, Any] = {"text": text}
    acoustic = load_feature_file(acoustic_feature_path, "acoustic", dimensions.acoustic)
    visual = load_feature_file(visual_feature_path, "visual", dimensions.visual)
    if acoustic is not None:
        inputs["acoustic"] = acoustic
    if visual is not None:
        inputs["visual"] = visual
    if audio_path:
        inputs["audio"] = audio_path
    if video_path:
        inputs["video"] = video_path
    return inputs


def emotion_chart_frame(emotion_scores: Mapping[str, float] | None) -> pd.DataFrame | None:
    """A two-column table (emotion, probability) for the bar chart, in the model's emotion order."""
    if not emotion_scores:
        return None
    return pd.DataFrame({CHART_EMOTION_COLUMN: list(emotion_scores),
                         CHART_PROBABILITY_COLUMN: [float(value) for value in emotion_scores.values()]})


def contributions_frame(contributions: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per given modality: the label predicted without it and the score / emotion-probability deltas."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(float(value), 4)

    rows = [(modality, entry["without"].get("label") or "", rounded(entry.get("score_delta")),
             rounded(entry.get("emotion_probability_delta"))) for modality, entry in contributions.items()]
    return pd.DataFrame(rows, columns=list(CONTRIBUTION_COLUMNS))


def describe_inputs(inputs: Mapping[str, Any]) -> str:
    """A short account of which modalities a prediction used, e.g. ``text + acoustic features (40 frames)``."""
    parts = ["text"]
    for modality in ("acoustic", "visual"):
        if modality in inputs:
            parts.append(f"{modality} features ({len(inputs[modality])} frames)")
    for media in ("audio", "video"):
        if media in inputs:
            parts.append(f"{media} ({Path(inputs[media]).name})")
    return " + ".join(parts)


def error_view(message: str) -> PredictionView:
    """The outputs shown when a request cannot be answered: empty results and the message."""
    return PredictionView(score=None, polarity="", emotion="", iemocap_emotion="", generated_label="",
                          emotion_chart=None, contributions=None, status=f"**Error:** {message}")


def predict(
    unimse_pipeline: Pipeline,
    transcript: str | None,
    audio_path: str | None,
    video_path: str | None,
    acoustic_feature_path: str | None,
    visual_feature_path: str | None,
) -> PredictionView:
    """Run the pipeline on the form's values; problems become an error message instead of an exception."""
    dimensions = checkpoint_feature_dimensions(unimse_pipeline)
    try:
        inputs = build_pipeline_inputs(transcript, audio_path, video_path, acoustic_feature_path,
                                       visual_feature_path, dimensions)
    except InputProblem as problem:
        return error_view(str(problem))
    try:
        result = unimse_pipeline(inputs, return_emotion_scores=True, return_modality_contributions=True)
    except (ValueError, TypeError, ImportError, OSError, RuntimeError) as error:
        LOGGER.warning("prediction failed for %s", describe_inputs(inputs), exc_info=True)
        return error_view(f"The model could not use this input: {error}")
    chart = emotion_chart_frame(result.get("emotion_scores"))
    status = f"Predicted from {describe_inputs(inputs)}."
    if not result.get("valid", False):
        status += " The generated label did not fully parse; missing parts are left empty."
    if chart is None:
        status += " No emotion probabilities: the polarity or score could not be read from the generated label."
    score = result.get("score")
    return PredictionView(
        score=None if score is None else round(float(score), 3),
        polarity=result.get("polarity") or "",
        emotion=result.get("emotion") or "",
        iemocap_emotion=result.get("iemocap_emotion") or "",
        generated_label=result.get("label") or "",
        emotion_chart=chart,
        contributions=contributions_frame(result.get("modality_contributions") or {}),
        status=status,
    )


def build_demo(checkpoint: str, revision: str | None = None) -> gr.Blocks:
    """Load ``checkpoint`` and build the demo's interface (call ``.launch()`` on the result to serve it)."""
    unimse_pipeline = load_pipeline(checkpoint, revision)
    dimensions = checkpoint_feature_dimensions(unimse_pipeline)
    media_note = ("Raw media is turned into features with the media extra (installed here)."
                  if media_extra_available() else
                  f"Raw media needs the media extra, which is not installed here: `{MEDIA_EXTRA_INSTALL}`.")

    def predict_from_form(transcript: str | None, audio_path: str | None, video_path: str | None,
                          acoustic_feature_path: str | None, visual_feature_path: str | None) -> tuple[Any, ...]:
        """The Predict button's handler: the pipeline, bound, and the outputs as a tuple."""
        return predict(unimse_pipeline, transcript, audio_path, video_path, acoustic_feature_path,
                       visual_feature_path).as_outputs()

    demo = gr.Blocks(title="UniMSE: multimodal sentiment and emotion", analytics_enabled=False)
    with demo:
        gr.Markdown(
            "# UniMSE: multimodal sentiment and emotion\n"
            "Enter what was said, optionally add the utterance's audio/video or precomputed features, and "
            "press **Predict**. The model generates one label: a sentiment score in [-3, 3], its polarity, "
            f"a MELD emotion and an IEMOCAP emotion.\n\nCheckpoint: `{checkpoint}`"
            + (f" @ `{revision}`" if revision else ""),
        )
        with gr.Row():
            with gr.Column(scale=1):
                transcript_box = gr.Textbox(label="Transcript", lines=3, max_lines=8, elem_id="transcript",
                                            placeholder="What the speaker said, e.g. 'I loved every minute of it.'")
                with gr.Accordion("Audio / video (optional)", open=False, elem_id="media-accordion"):
                    gr.Markdown(media_note)
                    audio_input = gr.Audio(label="Audio", sources=["upload"], type="filepath", elem_id="audio")
                    video_input = gr.Video(label="Video", sources=["upload"], elem_id="video")
                with gr.Accordion("Precomputed features (optional)", open=False, elem_id="features-accordion"):
                    gr.Markdown(
                        f"NumPy `.npy` files of shape (frames, dim): acoustic dim **{dimensions.acoustic}**, "
                        f"visual dim **{dimensions.visual}** for this checkpoint."
                    )
                    acoustic_file = gr.File(label="Acoustic features (.npy)", file_types=[FEATURE_FILE_SUFFIX],
                                            type="filepath", elem_id="acoustic-features")
                    visual_file = gr.File(label="Visual features (.npy)", file_types=[FEATURE_FILE_SUFFIX],
                                          type="filepath", elem_id="visual-features")
                predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
                gr.Examples(examples=[[text] for text in EXAMPLE_TRANSCRIPTS], inputs=[transcript_box],
                            label="Example transcripts")
            with gr.Column(scale=1):
                status_text = gr.Markdown("Enter a transcript and press **Predict**.", elem_id="status")
                with gr.Row():
                    score_box = gr.Number(label="Sentiment score [-3, 3]", precision=3, interactive=False,
                                          elem_id="score")
                    polarity_box = gr.Textbox(label="Polarity", interactive=False, elem_id="polarity")
                    emotion_box = gr.Textbox(label="Emotion (MELD)", interactive=False, elem_id="emotion")
                with gr.Row():
                    iemocap_box = gr.Textbox(label="Emotion (IEMOCAP)", interactive=False, elem_id="iemocap-emotion")
                    label_box = gr.Textbox(label="Generated label", interactive=False, elem_id="generated-label")
                emotion_chart = gr.BarPlot(
                    value=None, x=CHART_EMOTION_COLUMN, y=CHART_PROBABILITY_COLUMN, y_lim=[0.0, 1.0],
                    title="Emotion probabilities (given the predicted polarity and score)",
                    x_title="MELD emotion", y_title="probability", label="Emotion probabilities",
                    sort=None, tooltip="all", height=320, elem_id="emotion-chart",
                )
                contributions_table = gr.Dataframe(
                    value=contributions_frame({}), headers=list(CONTRIBUTION_COLUMNS), interactive=False,
                    label="What each modality changed (the prediction without it, and the differences)",
                    elem_id="modality-contributions",
                )
        predict_button.click(
            predict_from_form,
            inputs=[transcript_box, audio_input, video_input, acoustic_file, visual_file],
            outputs=[score_box, polarity_box, emotion_box, iemocap_box, label_box, emotion_chart,
                     contributions_table, status_text],
            api_name="predict",
        )
    return demo


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; defaults come from ``UNIMSE_CHECKPOINT``, ``UNIMSE_REVISION`` and Gradio's variables."""
    parser = argparse.ArgumentParser(description="Serve the UniMSE Gradio demo.")
    parser.add_argument("--checkpoint", default=os.environ.get("UNIMSE_CHECKPOINT"),
                        help="checkpoint folder or Hub repo id (default: $UNIMSE_CHECKPOINT)")
    parser.add_argument("--revision", default=os.environ.get("UNIMSE_REVISION") or None,
                        help="Hub revision (commit) to load (default: $UNIMSE_REVISION)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", DEFAULT_PORT)),
                        help=f"port to serve on (default: $GRADIO_SERVER_PORT or {DEFAULT_PORT})")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", DEFAULT_HOST),
                        help=f"address to bind (default: $GRADIO_SERVER_NAME or {DEFAULT_HOST})")
    arguments = parser.parse_args(argv)
    if not arguments.checkpoint:
        parser.error("no checkpoint: pass --checkpoint or set UNIMSE_CHECKPOINT")
    return arguments


def main(argv: Sequence[str] | None = None) -> None:
    """Load the checkpoint and serve the demo until interrupted (no share link, no telemetry)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    arguments = parse_arguments(argv)
    demo = build_demo(arguments.checkpoint, arguments.revision)
    demo.queue(default_concurrency_limit=1).launch(
        server_name=arguments.host, server_port=arguments.port, share=False, ssr_mode=False, mcp_server=False,
        max_file_size=MAX_UPLOAD_SIZE, footer_links=["api"], show_error=True,
    )


if __name__ == "__main__":
    main()
