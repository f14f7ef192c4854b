# Copyright 2026 The unimse-hf authors. Licensed under the Apache License, Version 2.0.
"""Build a UniMSE dataset (Parquet, one file per split) from raw media files and a labels CSV.

The CSV has the columns ``id,text,label`` and optionally ``mode`` or ``split`` (``train``, ``valid``,
``test``...; without one every row goes to ``--default_split``). ``label`` is the sentiment score in
[-3, 3]. Each id needs ``<media_dir>/<id>.wav`` and/or ``<media_dir>/<id>.mp4``: the wav gives the
audio when present, the mp4 the video (and the audio otherwise). Rows follow
``unimse_hf.data.schema``; the MELD/IEMOCAP slots of the target are ``neutral`` (no label transfer).

Needs the media extra: ``pip install "unimse-hf[media]"``. Example, on the two clips in the repo::

    python examples/prepare_media_dataset.py --media_dir data/mosi/raw \\
        --labels data/mosi/label.csv --output_dir /tmp/mosi-media --skip_missing
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from unimse_hf.data.schema import normalize_split, rows_to_dataset_dict
from unimse_hf.media import find_media_files, prepare_media_row


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--media_dir", type=Path, required=True, help="folder with <id>.wav and/or <id>.mp4")
    parser.add_argument("--labels", type=Path, required=True, help="CSV with id,text,label[,mode|split]")
    parser.add_argument("--output_dir", type=Path, required=True, help="where <split>.parquet files are written")
    parser.add_argument("--dataset", default="mosi", choices=["mosi", "mosei"], help="the `dataset` column")
    parser.add_argument("--default_split", default="train", help="split of rows when the CSV has no split column")
    parser.add_argument("--skip_missing", action="store_true", help="skip ids without media instead of failing")
    parser.add_argument("--no_align", action="store_true", help="space words by length instead of forced alignment")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with open(args.labels, newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    required = {"id", "text", "label"}
    columns = set(records[0]) if records else set()
    if not required <= columns:
        raise ValueError(f"{args.labels}: needs the columns {sorted(required)}, has {sorted(columns)}")
    split_column = next((name for name in ("split", "mode") if name in columns), None)

    rows, skipped = [], 0
    start = time.perf_counter()
    for record in records:
        if args.skip_missing:
            try:
                find_media_files(args.media_dir, record["id"])
            except FileNotFoundError:
                skipped += 1
                continue
        split = normalize_split(record[split_column] if split_column else args.default_split)
        rows.append(
            prepare_media_row(
                args.media_dir,
                record["id"],
                record["text"],
                float(record["label"]),
                split,
                dataset=args.dataset,
                align=not args.no_align,
            )
        )
        print(f"{record['id']}: {len(rows[-1]['acoustic'])} acoustic, {len(rows[-1]['visual'])} visual frames")

    if not rows:
        raise SystemExit(f"no media found in {args.media_dir} for the ids in {args.labels}")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    for split, dataset in rows_to_dataset_dict(rows).items():
        dataset.to_parquet(str(args.output_dir / f"{split}.parquet"))
        print(f"wrote {args.output_dir / f'{split}.parquet'}: {len(dataset)} rows")
    print(f"{len(rows)} rows in {time.perf_counter() - start:.1f} s; {skipped} ids skipped for missing media")


if __name__ == "__main__":
    main()
