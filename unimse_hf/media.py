# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Raw media to frame-level acoustic and visual features and word timestamps, offline on CPU.

This module needs the optional extra ``pip install "unimse-hf[media]"`` (PyAV, librosa, mediapipe,
pocketsphinx); those packages are imported only when a function needs them. Nothing is downloaded at
run time: the face model is vendored in ``unimse_hf/assets/face_landmarker.task`` (Apache-2.0, see
``unimse_hf/assets/NOTICE``) and pocketsphinx ships its English model and dictionary.

Pipeline (:func:`extract_media_features`):

* **Decoding** (PyAV, bundled FFmpeg): audio from any container, ``bytes`` or a NumPy array becomes
  16 kHz mono float32 (channels averaged); video frames become RGB ``uint8`` arrays with timestamps.
* **Acoustic frames** (librosa), 25-d at 100 Hz (hop 160 samples at 16 kHz; frame ``i`` is centred
  at ``i / 100`` s): 20 HTK-mel MFCCs (40 mel bands, 512-point FFT, 25 ms window), RMS energy,
  zero-crossing rate, spectral centroid (Hz), spectral roll-off at 85 % (Hz) and f0 (Hz) from
  probabilistic YIN (60-500 Hz). pYIN gives NaN in unvoiced frames; they are set to **0 Hz**, as
  COVAREP does, so every value is finite.
* **Visual frames** (mediapipe Face Landmarker), 59-d at a fixed **30 Hz** (frame ``k`` shows the
  video at ``k / 30`` s, sample-and-hold from the source frames, so any source frame rate or a
  variable one gives the same time grid): the 52 blendshape scores (:data:`BLENDSHAPE_NAMES`), head
  pose as pitch, yaw, roll (radians) and translation x, y, z (the face model's centimetres), and a
  face-present flag. A frame without a face is all zeros with the flag 0. Without a video, every
  frame over the audio's duration is such a face-absent frame.
* **Word timestamps** (pocketsphinx forced alignment of the known transcript, 10 ms resolution),
  one span per word of ``text.split()``, falling back to spacing proportional to word length.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import math
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, NamedTuple, Optional, Union

import numpy as np

from .data.schema import SPLITS, make_row
from .labels import UniversalLabel, polarity_of_score

MediaSource = Union[str, "os.PathLike[str]", bytes]
"""A media file path, or the file's bytes."""

AudioInput = Union[str, "os.PathLike[str]", bytes, np.ndarray]
"""A media file path, the file's bytes, or a waveform (with its sampling rate)."""

SAMPLING_RATE: int = 16_000
"""Sampling rate (Hz) of every decoded waveform."""

ACOUSTIC_HOP_LENGTH: int = 160
"""Samples between acoustic frames at :data:`SAMPLING_RATE` (10 ms, i.e. 100 Hz)."""

ACOUSTIC_FRAME_RATE: float = SAMPLING_RATE / ACOUSTIC_HOP_LENGTH
"""Acoustic frames per second."""

VISUAL_FRAME_RATE: float = 30.0
"""Visual frames per second: the fixed grid video frames are sampled onto."""

ACOUSTIC_FEATURE_NAMES: tuple[str, ...] = tuple(f"mfcc_{i}" for i in range(1, 21)) + (
    "rms",
    "zero_crossing_rate",
    "spectral_centroid_hz",
    "spectral_rolloff_hz",
    "f0_hz",
)
"""The 25 acoustic features, in column order."""

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
"""The 52 mediapipe face blendshapes, in column order."""

VISUAL_FEATURE_NAMES: tuple[str, ...] = BLENDSHAPE_NAMES + (
    "head_pitch_rad",
    "head_yaw_rad",
    "head_roll_rad",
    "head_x_cm",
    "head_y_cm",
    "head_z_cm",
    "face_present",
)
"""The 59 visual features, in column order."""

FACE_LANDMARKER_PATH: Path = Path(__file__).resolve().parent / "assets" / "face_landmarker.task"
"""The vendored mediapipe Face Landmarker model bundle."""

FACE_LANDMARKER_SHA256: str = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
"""SHA-256 of :data:`FACE_LANDMARKER_PATH`, checked at every load."""

_INSTALL_HINT = 'Install the media extra: pip install "unimse-hf[media]"'
_MFCC_MELS = 40
_FFT_SIZE = 512
_WINDOW_LENGTH = 400
_F0_RANGE_HZ = (60.0, 500.0)
_F0_FRAME_LENGTH = 1024
_ROLLOFF_PERCENT = 0.85
_ALIGNMENT_FRAME_RATE = 100.0
_FRAME_TIME_TOLERANCE = 1e-3
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_NOT_WORD_CHARACTERS = re.compile(r"[^a-z0-9']")
_ALIGNMENT_VARIANT = re.compile(r"\(\d+\)$")


@dataclass(frozen=True)
class MediaFeatureSpec:
    """Which features a raw-media extractor produces: kinds, widths and frame rates.

    A checkpoint stores this (via :meth:`to_dict`) so that it can reject features from another
    extractor. The defaults describe this module's extractor.
    """

    acoustic_kind: str = "librosa-mfcc20-rms-zcr-centroid-rolloff-f0"
    acoustic_dim: int = len(ACOUSTIC_FEATURE_NAMES)
    acoustic_frame_rate: float = ACOUSTIC_FRAME_RATE
    visual_kind: str = "mediapipe-blendshapes52-pose6-face1"
    visual_dim: int = len(VISUAL_FEATURE_NAMES)
    visual_frame_rate: float = VISUAL_FRAME_RATE
    sampling_rate: int = SAMPLING_RATE

    def __post_init__(self) -> None:
        for name in ("acoustic_dim", "visual_dim", "sampling_rate"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}")
        for name in ("acoustic_frame_rate", "visual_frame_rate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"`{name}` must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        """Return the spec as a JSON-serialisable dict."""
        return asdict(self)

    def feature_extractor_kwargs(self) -> dict[str, Any]:
        """Arguments for `UniMSEFeatureExtractor` so a checkpoint records (and enforces) this extractor."""
        return {
            "acoustic_dim": self.acoustic_dim,
            "visual_dim": self.visual_dim,
            "acoustic_frame_rate": self.acoustic_frame_rate,
            "visual_frame_rate": self.visual_frame_rate,
            "acoustic_feature_kind": self.acoustic_kind,
            "visual_feature_kind": self.visual_kind,
        }

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> "MediaFeatureSpec":
        """Build a spec from :meth:`to_dict`'s output; missing or unknown keys raise ``ValueError``."""
        expected = {field.name for field in fields(cls)}
        missing, unknown = expected - set(spec), set(spec) - expected
        if missing or unknown:
            raise ValueError(
                f"`spec` must have exactly the keys {sorted(expected)}; "
                f"missing {sorted(missing)}, unknown {sorted(unknown)}"
            )
        return cls(**spec)


class VideoFrame(NamedTuple):
    """One decoded video frame: its time on the output grid, its source timestamp and RGB pixels."""

    time: float
    source_time: float
    image: np.ndarray


class WordSpan(NamedTuple):
    """A word of the transcript and where it is spoken, in seconds from the start of the audio."""

    word: str
    start: float
    end: float


def _import_media_dependency(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"unimse_hf.media needs the `{module}` module, which is not installed. {_INSTALL_HINT}"
        ) from error


def _describe(source: MediaSource) -> str:
    return f"<{len(source)} bytes>" if isinstance(source, (bytes, bytearray)) else os.fspath(source)


@contextlib.contextmanager
def _open_media(source: MediaSource, argument_name: str) -> Iterator[Any]:
    """Open ``source`` with PyAV; missing, empty or undecodable media raise errors naming the argument."""
    av = _import_media_dependency("av")
    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise ValueError(f"`{argument_name}` is empty (0 bytes)")
        target: Any = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"`{argument_name}` file not found: {path}")
        if path.stat().st_size == 0:
            raise ValueError(f"`{argument_name}` file is empty (0 bytes): {path}")
        target = str(path)
    else:
        raise TypeError(f"`{argument_name}` must be a path or bytes, got {type(source).__name__}")
    try:
        with av.open(target) as container:
            yield container
    except av.error.FFmpegError as error:
        raise ValueError(f"`{argument_name}` could not be decoded ({_describe(source)}): {error}") from error


def _resample_mono(waveform: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Resample a mono float waveform to :data:`SAMPLING_RATE` with FFmpeg's resampler."""
    if sampling_rate == SAMPLING_RATE:
        return waveform
    av = _import_media_dependency("av")
    frame = av.AudioFrame.from_ndarray(waveform[np.newaxis, :], format="flt", layout="mono")
    frame.sample_rate = sampling_rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLING_RATE)
    chunks = [chunk.to_ndarray()[0] for chunk in resampler.resample(frame) + resampler.resample(None)]
    return np.concatenate(chunks).astype(np.float32, copy=False)


def decode_audio(audio: AudioInput, sampling_rate: Optional[int] = None, argument_name: str = "audio") -> np.ndarray:
    """Return ``audio`` as a 16 kHz mono float32 waveform (channels averaged).

    Args:
        audio: a media file path (wav, mp4 or anything FFmpeg reads; the first audio stream is used),
            the file's bytes, or a float waveform, 1-D or 2-D with the shorter axis as channels.
        sampling_rate: the waveform's sampling rate; required for an array, not allowed otherwise.
        argument_name: the name used for ``audio`` in error messages.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the media is empty, corrupt, has no audio stream or no samples.
    """
    if isinstance(audio, np.ndarray):
        if not isinstance(sampling_rate, (int, np.integer)) or isinstance(sampling_rate, bool) or sampling_rate <= 0:
            raise ValueError(
                f"`sampling_rate` must be a positive int for an array `{argument_name}`, got {sampling_rate!r}"
            )
        if not np.issubdtype(audio.dtype, np.floating) or audio.ndim not in (1, 2):
            raise ValueError(f"`{argument_name}` must be a 1-D or 2-D float array, got {audio.ndim}-D {audio.dtype}")
        if audio.size == 0:
            raise ValueError(f"`{argument_name}` has no samples")
        if not np.all(np.isfinite(audio)):
            raise ValueError(f"`{argument_name}` contains NaN or infinite samples")
        mono = audio if audio.ndim == 1 else audio.mean(axis=int(np.argmin(audio.shape)))
        return _resample_mono(mono.astype(np.float32), int(sampling_rate))
    if sampling_rate is not None:
        raise ValueError(f"`sampling_rate` is only used with an array `{argument_name}`; the file gives its own rate")
    av = _import_media_dependency("av")
    with _open_media(audio, argument_name) as container:
        if not container.streams.audio:
            raise ValueError(f"`{argument_name}` has no audio stream: {_describe(audio)}")
        # Planar output keeps the channels apart so that they can be averaged (FFmpeg's own
        # stereo-to-mono downmix scales the sum by 1/sqrt(2) instead).
        resampler = av.AudioResampler(format="fltp", rate=SAMPLING_RATE)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            chunks.extend(chunk.to_ndarray() for chunk in resampler.resample(frame))
        chunks.extend(chunk.to_ndarray() for chunk in resampler.resample(None))
    if not chunks or sum(chunk.shape[1] for chunk in chunks) == 0:
        raise ValueError(f"`{argument_name}` contains no audio samples: {_describe(audio)}")
    return np.concatenate(chunks, axis=1).mean(axis=0).astype(np.float32)


class _HeldFrame:
    """A decoded frame kept for sample-and-hold, converted to RGB at most once."""

    def __init__(self, source_time: float, frame: Any) -> None:
        self.source_time = source_time
        self._frame = frame
        self._image: Optional[np.ndarray] = None

    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self._frame.to_ndarray(format="rgb24")
        return self._image


def decode_video_frames(
    video: MediaSource, frame_rate: Optional[float] = VISUAL_FRAME_RATE, argument_name: str = "video"
) -> Iterator[VideoFrame]:
    """Yield the RGB frames (``H x W x 3`` uint8) of the first video stream of ``video``, in order.

    With ``frame_rate=None`` every source frame is yielded once, with ``time == source_time`` (its
    presentation timestamp). With a rate, one frame is yielded for each grid time ``k / frame_rate``
    over the stream's duration: the source frame on screen at that time (sample and hold), so a
    source frame can be yielded several times (as the same array) or skipped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the media is empty, corrupt, has no video stream or no frames.
    """
    if frame_rate is not None and not frame_rate > 0:
        raise ValueError(f"`frame_rate` must be positive or None, got {frame_rate!r}")
    with _open_media(video, argument_name) as container:
        if not container.streams.video:
            raise ValueError(f"`{argument_name}` has no video stream: {_describe(video)}")
        stream = container.streams.video[0]
        native_rate = float(stream.average_rate or stream.guessed_rate or VISUAL_FRAME_RATE)
        held: Optional[_HeldFrame] = None
        grid_index = 0
        for index, frame in enumerate(container.decode(stream)):
            source_time = frame.time if frame.time is not None else index / native_rate
            if frame_rate is None:
                held = _HeldFrame(source_time, frame)
                yield VideoFrame(source_time, source_time, held.image())
                continue
            # Grid times before this frame's timestamp show the previously decoded frame.
            while held is not None and grid_index / frame_rate < source_time - _FRAME_TIME_TOLERANCE:
                yield VideoFrame(grid_index / frame_rate, held.source_time, held.image())
                grid_index += 1
            held = _HeldFrame(source_time, frame)
        if held is None:
            raise ValueError(f"`{argument_name}` contains no video frames: {_describe(video)}")
        if frame_rate is None:
            return
        if stream.duration is not None:
            end_time = float(stream.duration * stream.time_base)
        else:
            end_time = held.source_time + 1.0 / native_rate
        while grid_index < max(1, round(end_time * frame_rate)):
            yield VideoFrame(grid_index / frame_rate, held.source_time, held.image())
            grid_index += 1


def extract_acoustic_features(waveform: np.ndarray, sampling_rate: int = SAMPLING_RATE) -> np.ndarray:
    """Return the ``(1 + num_samples // 160, 25)`` float32 acoustic frames of a waveform at 100 Hz.

    ``waveform`` is first brought to 16 kHz mono; ``num_samples`` counts samples at 16 kHz. Columns
    are :data:`ACOUSTIC_FEATURE_NAMES`; see the module docstring for the settings. f0 is 0 Hz in
    unvoiced frames.
    """
    librosa = _import_media_dependency("librosa")
    samples = decode_audio(waveform, sampling_rate, argument_name="waveform")
    num_frames = 1 + len(samples) // ACOUSTIC_HOP_LENGTH
    # A clip shorter than one f0 window (64 ms) is zero-padded to it; the frame count keeps its real length.
    samples = np.pad(samples, (0, max(0, _F0_FRAME_LENGTH - len(samples))))
    magnitude = np.abs(
        librosa.stft(samples, n_fft=_FFT_SIZE, hop_length=ACOUSTIC_HOP_LENGTH, win_length=_WINDOW_LENGTH)
    )
    mel_power = librosa.feature.melspectrogram(
        S=magnitude**2, sr=SAMPLING_RATE, n_mels=_MFCC_MELS, htk=True, fmax=SAMPLING_RATE / 2
    )
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel_power), n_mfcc=20)
    rms = librosa.feature.rms(S=magnitude, frame_length=_FFT_SIZE)
    zero_crossing_rate = librosa.feature.zero_crossing_rate(
        samples, frame_length=_WINDOW_LENGTH, hop_length=ACOUSTIC_HOP_LENGTH
    )
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SAMPLING_RATE, n_fft=_FFT_SIZE)
    rolloff = librosa.feature.spectral_rolloff(
        S=magnitude, sr=SAMPLING_RATE, n_fft=_FFT_SIZE, roll_percent=_ROLLOFF_PERCENT
    )
    f0, voiced, _ = librosa.pyin(
        samples,
        fmin=_F0_RANGE_HZ[0],
        fmax=_F0_RANGE_HZ[1],
        sr=SAMPLING_RATE,
        frame_length=_F0_FRAME_LENGTH,
        hop_length=ACOUSTIC_HOP_LENGTH,
    )
    f0 = np.where(voiced & np.isfinite(f0), f0, 0.0)[np.newaxis, :]
    columns = [mfcc, rms, zero_crossing_rate, centroid, rolloff, f0]
    features = np.concatenate([column[:, :num_frames] for column in columns], axis=0).T
    return np.ascontiguousarray(features, dtype=np.float32)


def _face_landmarker_model() -> bytes:
    """Read the vendored Face Landmarker bundle, refusing a file whose SHA-256 does not match."""
    if not FACE_LANDMARKER_PATH.is_file():
        raise FileNotFoundError(
            f"the Face Landmarker model is missing: {FACE_LANDMARKER_PATH} (see unimse_hf/assets/NOTICE)"
        )
    model = FACE_LANDMARKER_PATH.read_bytes()
    digest = hashlib.sha256(model).hexdigest()
    if digest != FACE_LANDMARKER_SHA256:
        raise RuntimeError(
            f"{FACE_LANDMARKER_PATH} has SHA-256 {digest}, expected {FACE_LANDMARKER_SHA256}: "
            "the file is corrupt or was replaced; reinstall unimse-hf or restore it as NOTICE describes"
        )
    return model


def _head_pose(transformation: np.ndarray) -> np.ndarray:
    """Pitch, yaw, roll (radians, ``R = Rz(roll) Ry(yaw) Rx(pitch)``) and translation of a 4x4 matrix."""
    rotation = transformation[:3, :3]
    pitch = math.atan2(rotation[2, 1], rotation[2, 2])
    yaw = math.atan2(-rotation[2, 0], math.hypot(rotation[2, 1], rotation[2, 2]))
    roll = math.atan2(rotation[1, 0], rotation[0, 0])
    return np.array([pitch, yaw, roll, *transformation[:3, 3]], dtype=np.float32)


def _visual_frame_features(result: Any) -> np.ndarray:
    """Turn one Face Landmarker result into a 59-d row; a result without a face gives zeros."""
    features = np.zeros(len(VISUAL_FEATURE_NAMES), dtype=np.float32)
    if not result.face_blendshapes:
        return features
    scores = {category.category_name: category.score for category in result.face_blendshapes[0]}
    features[: len(BLENDSHAPE_NAMES)] = [scores[name] for name in BLENDSHAPE_NAMES]
    features[len(BLENDSHAPE_NAMES) : -1] = _head_pose(np.asarray(result.facial_transformation_matrixes[0]))
    features[-1] = 1.0
    return features


def extract_visual_features(video: MediaSource, argument_name: str = "video") -> np.ndarray:
    """Return the ``(T_v, 59)`` float32 visual frames of ``video`` at :data:`VISUAL_FRAME_RATE`.

    ``T_v = round(video duration * 30)``. Columns are :data:`VISUAL_FEATURE_NAMES`; a frame without a
    detected face is all zeros (``face_present`` 0). The landmarker runs once per distinct source
    frame, in video mode (it tracks the face between frames), with at most one face.
    """
    mediapipe = _import_media_dependency("mediapipe")
    vision = _import_media_dependency("mediapipe.tasks.python.vision")
    options = vision.FaceLandmarkerOptions(
        base_options=mediapipe.tasks.BaseOptions(model_asset_buffer=_face_landmarker_model()),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    rows: list[np.ndarray] = []
    previous_source_time: Optional[float] = None
    previous_timestamp_ms = -1
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        for frame in decode_video_frames(video, VISUAL_FRAME_RATE, argument_name):
            if frame.source_time != previous_source_time:
                # Video mode needs strictly increasing integer millisecond timestamps.
                timestamp_ms = max(int(round(frame.source_time * 1000)), previous_timestamp_ms + 1)
                image = mediapipe.Image(image_format=mediapipe.ImageFormat.SRGB, data=frame.image)
                row = _visual_frame_features(landmarker.detect_for_video(image, timestamp_ms))
                previous_source_time, previous_timestamp_ms = frame.source_time, timestamp_ms
            rows.append(row)
    return np.stack(rows)


def proportional_word_spans(transcript: str, duration: float) -> list[WordSpan]:
    """Spread the words of ``transcript.split()`` over ``[0, duration]`` in proportion to their lengths.

    The fallback when forced alignment is unavailable or fails. Needs only NumPy.
    """
    if not isinstance(duration, (int, float)) or not math.isfinite(duration) or duration < 0:
        raise ValueError(f"`duration` must be a finite number >= 0, got {duration!r}")
    return _proportional_spans(transcript.split(), 0.0, float(duration))


def _proportional_spans(words: list[str], start: float, end: float) -> list[WordSpan]:
    if not words:
        return []
    lengths = np.array([len(word) for word in words], dtype=np.float64)
    edges = start + (end - start) * np.concatenate([[0.0], np.cumsum(lengths)]) / lengths.sum()
    edges[-1] = end
    return [
        WordSpan(word, float(left), float(right))
        for word, left, right in zip(words, edges[:-1], edges[1:], strict=True)
    ]


def _normalize_word(word: str) -> str:
    """Lower-case, keep letters, digits and inner apostrophes (curly ones straightened)."""
    return _NOT_WORD_CHARACTERS.sub("", word.lower().replace("\u2019", "'")).strip("'")


def _spell_from_dictionary(word: str, lookup: Any) -> Optional[str]:
    """A cheap pronunciation for an out-of-vocabulary word: the phones of the fewest dictionary words
    that spell it (``failer`` = ``fail`` + ``er``); single letters and digits are always in reach."""
    letters = word.replace("'", "")
    best: list[Optional[list[str]]] = [[]] + [None] * len(letters)
    for end in range(1, len(letters) + 1):
        for start in range(end):
            if best[start] is None or (best[end] is not None and len(best[start]) + 1 >= len(best[end])):
                continue
            piece = letters[start:end]
            phones = lookup(_DIGIT_WORDS[int(piece)] if piece.isdigit() and len(piece) == 1 else piece)
            if phones:
                best[end] = best[start] + [phones]
    return " ".join(best[-1]) if best[-1] else None


def _dictionary_token(word: str, decoder: Any) -> Optional[tuple[str, Optional[str]]]:
    """Map a normalised word to ``(alignment token, phones to add or None)``; None if unpronounceable."""
    if not word:
        return None
    if decoder.lookup_word(word):
        return word, None
    if "'" not in word:
        for split in range(len(word) - 1, 0, -1):
            contraction = f"{word[:split]}'{word[split:]}"
            if decoder.lookup_word(contraction):
                return contraction, None
    phones = _spell_from_dictionary(word, decoder.lookup_word)
    return (word, phones) if phones else None


def align_words(waveform: np.ndarray, sampling_rate: int, transcript: str) -> list[WordSpan]:
    """Force-align ``transcript`` to speech with pocketsphinx: one :class:`WordSpan` per word of
    ``transcript.split()``, sorted, non-negative and inside the clip.

    Words are lower-cased and stripped of punctuation; an out-of-vocabulary word first gets an
    apostrophe restored (``dont`` -> ``don't``) and otherwise a pronunciation spelled from
    dictionary words. A word with nothing pronounceable (``--``) gets the gap between its aligned
    neighbours. If the aligner does not return exactly the words it was given, every word falls back
    to :func:`proportional_word_spans`.
    """
    pocketsphinx = _import_media_dependency("pocketsphinx")
    samples = decode_audio(waveform, sampling_rate, argument_name="waveform")
    duration = len(samples) / SAMPLING_RATE
    words = transcript.split()
    decoder = pocketsphinx.Decoder(lm=None, loglevel="FATAL")
    tokens = [_dictionary_token(_normalize_word(word), decoder) for word in words]
    aligned_tokens = [token for token, _ in filter(None, tokens)]
    if not aligned_tokens:
        return proportional_word_spans(transcript, duration)
    for token, phones in filter(None, tokens):
        if phones is not None and not decoder.lookup_word(token):
            decoder.add_word(token, phones, True)
    decoder.set_align_text(" ".join(aligned_tokens))
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    segments = [
        (_ALIGNMENT_VARIANT.sub("", segment.word), segment.start_frame, segment.end_frame)
        for segment in decoder.seg() or []
        if not segment.word.startswith(("<", "[", "+"))
    ]
    if [word for word, _, _ in segments] != aligned_tokens:
        return proportional_word_spans(transcript, duration)
    aligned = iter(segments)
    times: list[Optional[tuple[float, float]]] = []
    for token in tokens:
        if token is None:
            times.append(None)
            continue
        _, start_frame, end_frame = next(aligned)
        start = min(start_frame / _ALIGNMENT_FRAME_RATE, duration)
        times.append((start, min(max((end_frame + 1) / _ALIGNMENT_FRAME_RATE, start), duration)))
    return _fill_unaligned(words, times, duration)


def _fill_unaligned(words: list[str], times: list[Optional[tuple[float, float]]], duration: float) -> list[WordSpan]:
    """Give each run of unaligned words the gap between its aligned neighbours, split by length."""
    spans: list[WordSpan] = []
    index = 0
    while index < len(words):
        if times[index] is not None:
            spans.append(WordSpan(words[index], *times[index]))
            index += 1
            continue
        run_end = index
        while run_end < len(words) and times[run_end] is None:
            run_end += 1
        gap_start = spans[-1].end if spans else 0.0
        gap_end = times[run_end][0] if run_end < len(words) else duration
        spans.extend(_proportional_spans(words[index:run_end], gap_start, max(gap_start, gap_end)))
        index = run_end
    return spans


def extract_media_features(
    text: str,
    audio: Optional[AudioInput] = None,
    video: Optional[MediaSource] = None,
    sampling_rate: Optional[int] = None,
    align: bool = True,
) -> dict[str, Any]:
    """Extract frame-level features and word timestamps for one utterance.

    Args:
        text: the transcript; timestamps are given for each word of ``text.split()``.
        audio: a media file path, its bytes, or a waveform array (with ``sampling_rate``). When
            omitted, the audio track of ``video`` is used.
        video: a video file path or its bytes. When omitted, the visual frames are face-absent
            (all zero) over the audio's duration.
        sampling_rate: the sampling rate of an array ``audio``.
        align: force-align words with pocketsphinx; ``False`` spaces them by word length.

    Returns:
        A dict with ``acoustic`` (``T_a x 25`` float32 at ``acoustic_frame_rate`` = 100 Hz),
        ``visual`` (``T_v x 59`` float32 at ``visual_frame_rate`` = 30 Hz), ``word_timestamps``
        (``(start, end)`` seconds per word), ``duration`` (seconds: the longer of the audio and the
        video) and ``spec`` (the :class:`MediaFeatureSpec`).
    """
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}")
    if audio is None and video is None:
        raise ValueError("pass `audio`, `video` or both")
    if audio is not None:
        waveform = decode_audio(audio, sampling_rate, argument_name="audio")
    else:
        if sampling_rate is not None:
            raise ValueError("`sampling_rate` is only used with an array `audio`")
        waveform = decode_audio(video, argument_name="video")
    audio_duration = len(waveform) / SAMPLING_RATE
    if video is not None:
        visual = extract_visual_features(video)
        duration = max(audio_duration, len(visual) / VISUAL_FRAME_RATE)
    else:
        visual = np.zeros((max(1, round(audio_duration * VISUAL_FRAME_RATE)), len(VISUAL_FEATURE_NAMES)), np.float32)
        duration = audio_duration
    if align:
        spans = align_words(waveform, SAMPLING_RATE, text)
    else:
        spans = proportional_word_spans(text, audio_duration)
    return {
        "acoustic": extract_acoustic_features(waveform),
        "visual": visual,
        "acoustic_frame_rate": ACOUSTIC_FRAME_RATE,
        "visual_frame_rate": VISUAL_FRAME_RATE,
        "word_timestamps": [(span.start, span.end) for span in spans],
        "duration": duration,
        "spec": MediaFeatureSpec(),
    }


def find_media_files(media_dir: Union[str, "os.PathLike[str]"], key: str) -> tuple[Optional[Path], Optional[Path]]:
    """Return ``(<key>.wav, <key>.mp4)`` in ``media_dir``, each ``None`` where it does not exist.

    Raises ``FileNotFoundError`` (naming both candidates) if neither exists.
    """
    wav, mp4 = Path(media_dir) / f"{key}.wav", Path(media_dir) / f"{key}.mp4"
    if not wav.is_file() and not mp4.is_file():
        raise FileNotFoundError(f"no media for id {key!r}: neither {wav} nor {mp4} exists")
    return (wav if wav.is_file() else None), (mp4 if mp4.is_file() else None)


def prepare_media_row(
    media_dir: Union[str, "os.PathLike[str]"],
    key: str,
    text: str,
    score: float,
    split: str,
    dataset: str = "mosi",
    align: bool = True,
) -> dict[str, Any]:
    """Build one :mod:`unimse_hf.data.schema` row from ``<media_dir>/<key>.wav`` and/or ``.mp4``.

    The ``.wav`` gives the audio when present (else the ``.mp4``'s track); the ``.mp4`` gives the
    visual frames (else they are face-absent). The label is complete: the gold ``score`` and its
    polarity, and, since raw media carry no emotion labels and no label transfer runs on this path,
    MELD ``neutral`` and IEMOCAP ``neutral`` (``slot_sources`` says ``neutral-default``).
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}")
    wav, mp4 = find_media_files(media_dir, key)
    features = extract_media_features(text, audio=wav, video=mp4, align=align)
    label = UniversalLabel(polarity_of_score(score), float(score), "neutral", "neutral")
    row = make_row(
        dataset=dataset,
        split=split,
        key=key,
        polarity=label.polarity,
        text=text,
        acoustic=features["acoustic"],
        visual=features["visual"],
        word_timestamps=[
            {"word": word, "start": start, "end": end}
            for word, (start, end) in zip(text.split(), features["word_timestamps"], strict=True)
        ],
        score=label.score,
        meld_emotion=label.meld_emotion,
        iemocap_emotion=label.iemocap_emotion,
    )
    row["slot_sources"] = {"score": "gold", "meld_emotion": "neutral-default", "iemocap_emotion": "neutral-default"}
    row["target"] = label.format()
    return row
