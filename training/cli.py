"""`oppy-train prepare | fit | evaluate`: dataset preparation, training and evaluation from the shell."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from dataclasses import fields
from pathlib import Path

from tqdm import tqdm

from oppy.engine.config import AUTO, chroma_scale_argument
from oppy.engine.errors import OppyError, one_line

#: the architectures of `training.architectures.ARCHITECTURES` (named here so that --help needs no Keras)
ARCHITECTURE_NAMES = ("unet", "seed", "unet-context", "unet-classes", "unet-context-classes")


def _prepare(args: argparse.Namespace) -> dict:
    from .prepare import Thresholds, filter_sheets, prepare

    thresholds = Thresholds(min_chroma=args.min_chroma, min_sharpness=args.min_sharpness, max_side=args.max_side)
    outcomes = Counter()
    files = sum(1 for p in Path(args.raw_dir).iterdir() if p.is_file())
    for _, outcome in tqdm(prepare(args.raw_dir, args.dataset_dir, args.splits, thresholds, args.val_fraction),
                           total=files,
                           unit="photo", desc="preparing", file=sys.stderr, disable=None):
        outcomes[outcome.split(" (")[0]] += 1
    if args.sheets:
        for sheet in filter_sheets(args.raw_dir, args.dataset_dir, args.sheets):
            print(f"sheet: {sheet}", file=sys.stderr)
    summary = {"this_run": dict(outcomes), "dataset": str(args.dataset_dir)}
    print(json.dumps(summary, indent=2))
    return summary


def _fit(args: argparse.Namespace) -> dict:
    from .fit import FitOptions, fit

    options = FitOptions(**{option.name: getattr(args, option.name) for option in fields(FitOptions)})
    summary = fit(args.dataset_dir, args.out, options)
    print(json.dumps({k: summary[k] for k in ("architecture", "loss", "epochs_run", "train_seconds",
                                              "best_val_loss")}, indent=2))
    return summary


def _evaluate(args: argparse.Namespace) -> dict:
    from .evaluate import baselines, evaluate, load_predictor, model_method

    predict, contract = load_predictor(args.model)
    methods = {"model": model_method(predict, contract, args.overlap), **baselines(args.dataset_dir)}
    result = evaluate(methods, args.dataset_dir, args.split, limit=args.limit)
    result["model"] = str(args.model)
    print("| method | ΔE00 | ab PSNR (dB) | colourfulness ratio |\n|---|---|---|---|")
    for name, m in result["methods"].items():
        print(f"| {name} | {m['delta_e00']:.2f} | {m['ab_psnr']:.2f} | {m['colourfulness_ratio']:.3f} |")
    print(f"{result['photos']} photos, {result['skipped_greyscale']} skipped as greyscale", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _sheet(args: argparse.Namespace) -> dict:
    from .sheets import frames_sheet, save_sheet, validation_sheet

    if args.kind == "val":
        models = dict(_named_model(text) for text in args.model)
        if not models:
            raise ValueError("give at least one --model NAME=PATH to compare on the validation photos")
        sheet = validation_sheet(args.source, models, count=args.count, cell=args.cell)
    else:
        if len(args.model) > 1:
            raise ValueError("a frames sheet shows one model: give --model at most once")
        model = _named_model(args.model[0])[1] if args.model else None
        sheet = frames_sheet(args.source, model, count=args.count, cell=args.cell,
                             chroma_scales=tuple(args.chroma_scales), crop=args.crop)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_sheet(args.out, sheet)
    print(f"sheet: {args.out} ({sheet.shape[1]}x{sheet.shape[0]})", file=sys.stderr)
    return {"sheet": str(args.out)}


def _named_model(text: str) -> tuple[str, str]:
    """`NAME=PATH` or a bare PATH (named after its file)."""
    name, _, path = text.rpartition("=")
    return (name or Path(path).stem), path


def build_parser() -> argparse.ArgumentParser:
    from .prepare import DEFAULT_MAX_SIDE, DEFAULT_MIN_CHROMA, DEFAULT_MIN_SHARPNESS, DEFAULT_VAL_FRACTION

    parser = argparse.ArgumentParser(prog="oppy-train", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    prepare = commands.add_parser("prepare", help="keep the usable colour photos of a folder")
    prepare.add_argument("raw_dir")
    prepare.add_argument("dataset_dir")
    prepare.add_argument("--splits", help="TSV with file and split columns; photos it does not name are train "
                         "(default: split by the Mars day in a product id, else by a hash of the name)")
    prepare.add_argument("--val-fraction", type=float, default=DEFAULT_VAL_FRACTION,
                         help="without --splits: the share of days (or names) in the val split (default %(default)s)")
    prepare.add_argument("--max-side", type=int, default=DEFAULT_MAX_SIDE, help="resize larger photos down to this")
    prepare.add_argument("--min-chroma", type=float, default=DEFAULT_MIN_CHROMA,
                         help="mean C*ab below this is greyscale (default %(default)s)")
    prepare.add_argument("--min-sharpness", type=float, default=DEFAULT_MIN_SHARPNESS,
                         help="Laplacian variance below this is blurry (default %(default)s)")
    prepare.add_argument("--sheets", metavar="DIR", help="also write contact sheets of rejects and borderline keeps")
    prepare.set_defaults(run=_prepare)

    fit = commands.add_parser("fit", help="train an architecture on a prepared dataset")
    fit.add_argument("dataset_dir")
    fit.add_argument("--arch", choices=ARCHITECTURE_NAMES, default="unet",
                     help="unet (the default), seed (the original), or unet with a context input (-context: the L "
                          "around each tile, 4 tiles wide) and/or a classification head (-classes)")
    fit.add_argument("--out", required=True, help="run directory (re-running it resumes)")
    fit.add_argument("--loss", choices=["mse", "l1", "huber"], help="default: mse for seed, l1 for unet")
    fit.add_argument("--epochs", type=int, default=40)
    fit.add_argument("--batch-size", type=int, default=64)
    fit.add_argument("--crops-per-photo", type=int, default=8)
    fit.add_argument("--learning-rate", type=float, default=1e-3)
    fit.add_argument("--schedule", choices=["cosine", "plateau"], default="cosine",
                     help="learning rate: cosine decay to zero over --epochs, or halving on plateaus")
    fit.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--scale-jitter", type=float, metavar="F",
                     help="take crops from photos shrunk by a random factor in [F, 1] (never enlarged), so the model "
                          "learns the scales the engine serves")
    fit.add_argument("--context-factor", type=int, default=4, metavar="K",
                     help="a context architecture's window, K tiles wide (2 to 16; default %(default)s): a smaller "
                          "one sees less of each training photo at once")
    fit.add_argument("--max-minutes", type=float, help="stop after the epoch that passes this wall time")
    fit.add_argument("--init", metavar="RUN", help="warm start: begin from the weights of RUN (a run directory or "
                     ".keras file of the same --arch)")
    augment = fit.add_argument_group(
        "photometric augmentation", "the archive's range of light, applied to each training photo before L* and "
        "a*, b* are taken (training/augment.py); every change is off unless given, and each is applied to a photo "
        "with --aug-chance")
    augment.add_argument("--aug-exposure", type=float, default=0.0, metavar="STOPS",
                         help="exposure in linear light, up to STOPS darker (and a quarter of that brighter)")
    augment.add_argument("--aug-gamma", type=float, default=1.0, metavar="G",
                         help="a tone curve on L*, gamma between 1/G and G")
    augment.add_argument("--aug-contrast", type=float, default=1.0, metavar="C",
                         help="a flat curve on L*, contrast down to C (0.1 to 1)")
    augment.add_argument("--aug-noise", type=float, default=0.0, metavar="SIGMA",
                         help="luminance noise up to SIGMA grey levels of 255")
    augment.add_argument("--aug-jpeg", type=int, default=0, metavar="Q", help="JPEG of quality Q to 95 (0: off)")
    augment.add_argument("--aug-blur", type=float, default=0.0, metavar="SIGMA", help="Gaussian blur up to SIGMA px")
    augment.add_argument("--aug-levels", type=int, default=0, metavar="N",
                         help="as few as N grey levels over the frame's range (a dim 12-bit frame stretched; 0: off)")
    augment.add_argument("--aug-chance", type=float, default=0.5, metavar="P",
                         help="the chance each change is applied to a photo (default %(default)s)")
    fit.add_argument("--shift-consistency", type=float, default=0.0, metavar="W",
                     help="also fit each crop's partner a few px away and add W x their mean disagreement where they "
                          "overlap: the same ground the same colour as the scene moves (0: off)")
    fit.add_argument("--shift-range", type=int, default=8, metavar="PX",
                     help="the partners' largest shift, px (1 to 32; default %(default)s)")
    fit.add_argument("--no-jit", dest="jit_compile", action="store_false",
                     help="skip XLA compilation (slower steps, quicker start)")
    fit.add_argument("-q", "--quiet", dest="verbose", action="store_const", const=0, default=1)
    fit.set_defaults(run=_fit)

    evaluate = commands.add_parser("evaluate", help="metrics on the validation split, beside baselines")
    evaluate.add_argument("model", help="run directory, .keras file or exported .onnx model")
    evaluate.add_argument("dataset_dir")
    evaluate.add_argument("--split", default="val")
    evaluate.add_argument("--overlap", type=int, default=16)
    evaluate.add_argument("--limit", type=int, help="evaluate only the first N photos")
    evaluate.add_argument("--json", metavar="PATH", help="write the results as JSON")
    evaluate.set_defaults(run=_evaluate)

    sheet = commands.add_parser("sheet", help="contact sheets: models beside ground truth, or real frames coloured")
    sheet.add_argument("kind", choices=["val", "frames"],
                       help="val: prepared validation photos (grey, each model, ground truth); "
                            "frames: a folder of greyscale frames before and after")
    sheet.add_argument("source", help="a prepared dataset (val) or a folder of frames (frames)")
    sheet.add_argument("out", help="the PNG to write")
    sheet.add_argument("--model", action="append", default=[], metavar="[NAME=]PATH",
                       help="run directory, .keras or .onnx model (repeatable for val; frames: default packaged)")
    sheet.add_argument("--count", type=int, default=8, help="photos or frames, evenly spread (default 8)")
    sheet.add_argument("--cell", type=int, default=160, help="thumbnail size in pixels")
    sheet.add_argument("--chroma-scales", type=lambda text: [chroma_scale_argument(v) for v in text.split(",")],
                       default=[AUTO], metavar="S,S", help="frames: colour each frame at these chroma scales, side by "
                       "side (e.g. 1,auto; default: auto)")
    sheet.add_argument("--crop", type=int, metavar="PX", help="frames: show the central PX pixels of each frame at "
                       "full resolution")
    sheet.set_defaults(run=_sheet)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        args.run(args)
    except (FileNotFoundError, ValueError, OppyError) as exc:
        print(f"oppy-train: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
