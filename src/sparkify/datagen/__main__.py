"""Command line: ``python -m sparkify.datagen --scale 1 --seed 42 --start 2018-11-01 --end 2019-10-31 --out DIR``."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from sparkify.datagen.generate import DAYS_IN_MONTH, MONTH_START, generate


def volume_drop(text: str) -> tuple[date, float]:
    day, _, share = text.partition(":")
    try:
        return date.fromisoformat(day), float(share)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected DAY:SHARE such as 2018-11-24:0.3, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.datagen",
        description=(
            "Write a Sparkify lake (song_data/ and log_data/, one file per day) with the real data's layout and "
            "field types. Scale 1 is about 267 events a day, 100 active users and 400 song files; every count "
            "grows linearly with --scale. The same seed always writes the same files."
        ),
    )
    parser.add_argument("--scale", type=int, default=1, help="size multiplier (default: 1)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
    parser.add_argument(
        "--start", type=date.fromisoformat, default=MONTH_START, help=f"first day (default: {MONTH_START})"
    )
    last = parser.add_mutually_exclusive_group()
    last.add_argument("--end", type=date.fromisoformat, help="last day, included")
    last.add_argument("--days", type=int, help=f"number of days from --start (default: {DAYS_IN_MONTH})")
    parser.add_argument("--out", type=Path, required=True, help="lake directory to write")
    parser.add_argument(
        "--drop",
        type=volume_drop,
        action="append",
        default=[],
        metavar="DAY:SHARE",
        help="inject a volume drop: the day keeps only SHARE of its events (e.g. 2018-11-24:0.3); repeatable",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        lake = generate(
            args.out,
            scale=args.scale,
            seed=args.seed,
            days=args.days,
            start=args.start,
            end=args.end,
            drops=dict(args.drop),
        )
    except ValueError as error:
        parser.error(str(error))
    print(
        f"wrote {lake.song_files} song files and {lake.events} events over {len(lake.days)} days "
        f"({lake.days[0]} .. {lake.days[-1]}) to {lake.root} in {time.perf_counter() - started:.1f}s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
