"""``edgefer prepare VIDEO_DIR OUT_DIR [--annotation FILE] [--detector NAME] [--face-margin F] [--face-align]
[--crop-size S] [--max-frames N] [--image-format png|jpg]``: raw videos -> the runtime's face-crop frame folders and
an annotation list (:func:`edgefer.data.prepare_videos`)."""

from __future__ import annotations

from ..detectors import DEFAULT_DETECTOR, DETECTOR_NAMES
from .argtypes import non_negative_float, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser("prepare", help="cut raw videos into face-crop frame folders + an annotation list",
                              description="Cut raw videos into face-crop frame folders plus a Former-DFER "
                                          "annotation list, with the runtime's own face detection, tracking and "
                                          "crops. Resumable: finished videos are skipped on a rerun.")
    p.add_argument("video_dir", help="folder of videos: VIDEO_DIR/<class>/<video>, classes named by the labels "
                                     "(Happy, Sad, Neutral, Angry, Surprise, Disgust, Fear; any case)")
    p.add_argument("out_dir", help="output folder: OUT_DIR/<class>/<video>/00001.png ..., OUT_DIR/annotation.txt, "
                                   "OUT_DIR/prepare.json")
    p.add_argument("--annotation", metavar="FILE", help="instead of class folders: 'video label' lines (video "
                                                        "relative to VIDEO_DIR; label 0..6 or a class name)")
    p.add_argument("--detector", choices=DETECTOR_NAMES, default=None,
                   help=f"face detector (default: {DEFAULT_DETECTOR}, as predict uses)")
    p.add_argument("--face-margin", type=non_negative_float, default=0.2, metavar="FRACTION",
                   help="fraction of the face box added on each side of the crop (default 0.2; pass the same to "
                        "`edgefer export --face-margin`)")
    p.add_argument("--face-align", action="store_true",
                   help="rotate crops so the eyes are level (BlazeFace keypoints; pass --face-align to export too)")
    p.add_argument("--crop-size", type=positive_int, default=112, metavar="S",
                   help="side of the square crops in pixels (default 112, the models' frame size)")
    p.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                   help="read at most N frames of each video (default: all)")
    p.add_argument("--image-format", choices=("png", "jpg"), default="png",
                   help="png (lossless, default) or jpg (smaller; changes pixels)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data.prepare import prepare_videos

    report = prepare_videos(args.video_dir, args.out_dir, annotation=args.annotation, detector=args.detector,
                            face_margin=args.face_margin, face_align=args.face_align, crop_size=args.crop_size,
                            max_frames=args.max_frames, image_format=args.image_format,
                            progress=not args.no_progress)
    for video in report.no_face:
        print(f"no face: {video} (left out of the list)")
    for video, why in report.failed:
        print(f"unreadable: {video}: {why} (left out of the list)")
    print(f"{len(report.records)} clips in {report.annotation} ({report.prepared} prepared now, {report.resumed} "
          f"from an earlier run); {len(report.no_face)} videos without a face, {len(report.failed)} unreadable; "
          f"crop options in {report.out_dir / 'prepare.json'}")
    return 0
