"""`gcnseg predict`: masks, overlays and panels for files, folders or glob patterns; an overlay
video and per-frame class shares for video files."""

from __future__ import annotations

import argparse
from pathlib import Path

from gcnseg.cli.arguments import (
    add_device,
    add_engine,
    add_tta,
    check_outputs,
    finite_float,
    image_side,
    positive_int,
)
from gcnseg.errors import GcnsegError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    predict = subparsers.add_parser("predict", help="segment images: masks, overlays, panels")
    predict.add_argument(
        "inputs",
        nargs="*",
        help="files, folders or glob patterns, or video files (.mp4 .mov .avi .mkv .webm); "
        "default: a run folder's test split",
    )
    predict.add_argument("--checkpoint", default="pets-default")
    predict.add_argument("--out", type=Path, default=Path("predictions"))
    add_engine(predict)
    predict.add_argument(
        "--batch-size", type=positive_int, default=4, help="images per forward pass"
    )
    predict.add_argument(
        "--size", type=image_side, help="inference size (default: the checkpoint's eval size)"
    )
    add_tta(predict)
    predict.add_argument("--alpha", type=finite_float, default=0.5, help="overlay opacity")
    predict.add_argument("--masks", type=Path, help="folder of ground-truth masks for panels")
    predict.add_argument(
        "--every",
        type=positive_int,
        default=1,
        help="video: segment every n-th frame (the frames between keep its mask)",
    )
    add_device(predict)
    predict.add_argument(
        "--json",
        type=Path,
        dest="json_out",
        help="write a summary (counts, engine, skipped; for videos, per-frame class shares) here",
    )
    predict.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from gcnseg.evaluation.run_split import run_test_images
    from gcnseg.inference.predict import PredictInterrupted, predict_files, write_summary
    from gcnseg.inference.video import is_video

    check_outputs((args.out, "the predictions", True), (args.json_out, "the JSON summary", False))
    videos = [i for i in args.inputs if is_video(i)]
    if videos:
        if len(videos) != len(args.inputs):
            raise GcnsegError("give videos and images to separate `gcnseg predict` runs")
        return _run_videos(args, videos)
    try:
        summary = predict_files(
            args.inputs or run_test_images(args.checkpoint),
            checkpoint=args.checkpoint,
            out_dir=args.out,
            engine=args.engine,
            size=args.size,
            flip=args.flip,
            scales=tuple(args.scales),
            alpha=args.alpha,
            masks_dir=args.masks,
            device=args.device,
            batch_size=args.batch_size,
            cache_dir=args.cache_dir,
        )
    except PredictInterrupted as stop:  # what was written is kept, and said so in one line
        done = stop.summary
        wrote = ""
        if args.json_out is not None:
            write_summary(args.json_out, done, checkpoint=args.checkpoint, out_dir=args.out)
            wrote = f"; wrote {args.json_out}"
        print(
            f"gcnseg: interrupted: {done.written} images segmented into {args.out}, "
            f"{done.left} left{wrote}",
            file=sys.stderr,
        )
        return 130
    notes = [f"{len(summary.skipped)} skipped"] if summary.skipped else []
    notes += [f"{len(summary.no_panel)} without a panel"] if summary.no_panel else []
    extra = "".join(f", {note}" for note in notes)
    print(f"{summary.written} images segmented into {args.out} (engine {summary.engine}{extra})")
    if args.json_out is not None:
        write_summary(args.json_out, summary, checkpoint=args.checkpoint, out_dir=args.out)
        print(f"wrote {args.json_out}")
    return 0


def _run_videos(args: argparse.Namespace, videos: list[str]) -> int:
    from gcnseg._version import __version__
    from gcnseg.inference.segmenter import load
    from gcnseg.inference.video import predict_video
    from gcnseg.io.atomic import write_json

    for video in videos:  # before the model loads: a typo is named at once
        if not Path(video).is_file():
            raise GcnsegError(f"{video}: no such video file")
    segmenter = load(
        args.checkpoint,
        engine=args.engine,
        device=args.device,
        flip=args.flip,
        scales=tuple(args.scales),
        size=args.size,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
    )
    summaries = []
    for video in videos:
        s = predict_video(video, segmenter, args.out, alpha=args.alpha, every=args.every)
        print(
            f"{s.video}: {s.frames} frames segmented into {s.out} "
            f"({s.frames_per_second:.1f} frames/s, engine {s.engine})"
        )
        summaries.append(s)
    if args.json_out is not None:
        write_json(
            args.json_out,
            {
                "version": __version__,
                "checkpoint": str(args.checkpoint),
                "engine": segmenter.engine_name,
                "videos": [
                    {
                        "video": str(s.video),
                        "out": str(s.out),
                        "frames": s.frames,
                        "fps": s.fps,
                        "frames_per_second": round(s.frames_per_second, 3),
                        "shares": s.shares,
                    }
                    for s in summaries
                ],
            },
        )
        print(f"wrote {args.json_out}")
    return 0
