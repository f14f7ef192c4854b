# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Build a UniMSE dataset (Parquet, one file per split) from raw media files and a labels CSV.

The CSV has the columns ``id,text,label`` and optionally ``mode`` or ``split`` (``train``, ``valid``,
``test``...; without one every row goes to ``--default_split``) and ``clip`` (the video an id was cut
from, so the splits are checked to be disjoint by video; without it each id is its own clip). ``label`` is the sentiment score in
[-3, 3]. Each id needs ``<media_dir>/<id>.wav`` and/or ``<media_dir>/<id>.mp4``: the wav gives the
audio when present, the mp4 the video (and the audio otherwise). Rows follow
``unimse_hf.data.schema``; the MELD/IEMOCAP slots of the target are ``neutral`` (no label transfer).
Every line is checked before any clip is processed (unique ids, text, scores finite in [-3, 3]), and
the folder is written like ``prepare_data.py``'s: whole or not at all, a non-empty ``--output_dir``
only with ``--overwrite``.

Needs the media extra: ``pip install "unimse-hf[media]"``. Example, on the two clips in the repo::

    python examples/prepare_media_dataset.py --media_dir data/mosi/raw \\
        --labels data/mosi/label.csv --output_dir /tmp/mosi-media --skip_missing
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from unimse_hf.data.csv_source import check_complete, check_unique, file_lines, numeric_column, read_source_csv
from unimse_hf.data.errors import MalformedSourceError
from unimse_hf.data.export import check_output_dir, write_prepared_dataset
from unimse_hf.data.msa_csv import check_score_column
from unimse_hf.data.schema import normalize_split, rows_to_dataset_dict
from unimse_hf.media import find_media_files, prepare_media_row


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media_dir", type=Path, required=True, help="folder with <id>.wav and/or <id>.mp4")
    parser.add_argument("--labels", type=Path, required=True, help="CSV with id,text,label[,mode|split][,clip]")
    parser.add_argument("--output_dir", type=Path, required=True, help="the prepared folder to create (refused if non-empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing prepared --output_dir as a whole")
    parser.add_argument("--dataset", default="mosi", choices=["mosi", "mosei"], help="the `dataset` column")
    parser.add_argument("--default_split", default="train", help="split of rows when the CSV has no split column")
    parser.add_argument("--skip_missing", action="store_true", help="skip ids without media instead of failing")
    parser.add_argument("--no_align", action="store_true", help="space words by length instead of forced alignment")
    return parser.parse_args(argv)


def read_label_table(path: Path, default_split: str) -> list[dict[str, object]]:
    """Read and check the labels CSV: ids unique, text present, scores finite in [-3, 3], known splits."""
    frame = read_source_csv(path, "labels CSV", dtype=str, keep_default_na=False, na_values=[""])
    missing = sorted({"id", "text", "label"} - set(frame.columns))
    if missing:
        raise MalformedSourceError(path, f"needs the columns id, text, label; missing {missing} (has {list(frame.columns)})")
    for column in ("id", "text", "label"):
        check_complete(frame, column, str(path))
    keys = frame["id"].str.strip()
    check_unique(frame, keys, str(path), "id")
    scores = numeric_column(frame, "label", str(path))
    check_score_column(frame, scores, keys, str(path), "label")
    split_column = next((name for name in ("split", "mode") if name in frame.columns), None)
    records = []
    for index, key, text, score in zip(frame.index, keys, frame["text"], scores):
        raw_split = frame.at[index, split_column] if split_column else default_split
        try:
            split = normalize_split(raw_split)
        except ValueError as error:
            raise MalformedSourceError(path, f"file line {file_lines([index])[0]}: {error}", split_column or "--default_split") from error
        clip = frame.at[index, "clip"] if "clip" in frame.columns else None
        records.append({"key": key, "text": text, "score": float(score), "split": split, "clip": clip})
    return records


def main(argv: list[str] | None = None) -> int:
    """Extract the features of every clip and write the prepared folder; returns the exit code."""
    args = parse_args(argv)
    check_output_dir(str(args.output_dir), args.overwrite)
    records = read_label_table(args.labels, args.default_split)

    rows, skipped = [], []
    start = time.perf_counter()
    for record in records:
        if args.skip_missing:
            try:
                find_media_files(args.media_dir, record["key"])
            except FileNotFoundError:
                skipped.append(record["key"])
                continue
        row = prepare_media_row(
            args.media_dir, record["key"], record["text"], record["score"], record["split"], dataset=args.dataset, align=not args.no_align
        )
        if record["clip"]:
            row["clip"] = record["clip"]
        rows.append(row)
        print(f"{record['key']}: {len(row['acoustic'])} acoustic, {len(row['visual'])} visual frames")

    if not rows:
        raise SystemExit(f"no media found in {args.media_dir} for the ids in {args.labels}")
    dataset_dict = rows_to_dataset_dict(rows, str(args.labels))
    notes = [f"Features extracted from the media in `{args.media_dir}` (unimse_hf.media)."]
    if skipped:
        notes.append(f"{len(skipped)} ids without media were skipped (--skip_missing): {', '.join(skipped)}")
    command = "python examples/prepare_media_dataset.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    paths = write_prepared_dataset(
        str(args.output_dir), dataset_dict, args.dataset, [str(args.labels)], command, notes, overwrite=args.overwrite
    )
    for split, path in paths.items():
        print(f"wrote {path}: {len(dataset_dict[split])} rows")
    print(f"{len(rows)} rows in {time.perf_counter() - start:.1f} s; {len(skipped)} ids skipped for missing media")
    return 0


if __name__ == "__main__":
    sys.exit(main())
