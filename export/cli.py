"""`oppy-export RUN_DIR_or_KERAS_FILE OUT.onnx`: a trained network as an ONNX model the engine accepts.

Prints a JSON report: the contract written, each file with its parity check, and the --optimize timings. Given an
exported .onnx model instead, it applies this version's graph rewrites to it, checked to change no output.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from oppy.engine.contract import DEFAULT_OVERLAP, KEY_PALETTE, KEY_SCENE_SIZE
from oppy.engine.errors import OppyError, one_line

from .parity import FP16_TOLERANCE, FP32_TOLERANCE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oppy-export", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="run directory of `oppy-train fit` (model.keras, run.json, eval.json) "
                        "or a .keras file; or an exported .onnx model, to give it this version's graph rewrites")
    parser.add_argument("out", type=Path, help="the ONNX model to write (.onnx)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset, 17 or newer (default %(default)s)")
    parser.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP,
                        help="recommended tile overlap written into the model (default %(default)s)")
    parser.add_argument("--scene-size", type=int, metavar="PX",
                        help="the median long side of the photos the network learned from, written into the model "
                        "for the engine's auto chroma scale (default: what the run recorded); with an .onnx source, "
                        "the model's metadata is rewritten, its weights unchanged")
    parser.add_argument("--palette", metavar="DATASET",
                        help="write the palette of a prepared dataset's train split (the photos the network learned "
                        "from) for the engine's palette guard (default: what the run recorded); with an .onnx "
                        "source, the model's metadata is rewritten, its weights unchanged")
    parser.add_argument("--fp16", action="store_true",
                        help=f"also write OUT.fp16.onnx (float16 inside, float32 I/O), checked to max |Δab| "
                        f"{FP16_TOLERANCE:g} (float32: {FP32_TOLERANCE:g})")
    parser.add_argument("--int8", metavar="DATASET",
                        help="also write OUT.int8.onnx for the CPU: static int8 quantisation (QDQ, per-channel "
                        "weights; the first and last convolutions kept in float), calibrated on the tiles the engine "
                        "cuts from a prepared dataset's train photos; the engine runs it with --precision int8 "
                        "(auto on the CPU)")
    parser.add_argument("--optimize", action="store_true",
                        help="also write OUT.optimized.onnx, ONNX Runtime's offline-optimized graph for the CPU "
                        "provider, if it runs faster (both are timed)")
    parser.add_argument("--parity-images", type=Path, metavar="DIR",
                        help="add tiles of these photos to the parity check")
    parser.add_argument("--parity-tiles", type=int, default=32, help="tiles per parity set (default %(default)s)")
    parser.add_argument("--report", type=Path, metavar="PATH", help="also write the report as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _palette_of(dataset: str) -> str:
    """The palette of a prepared dataset's train split (the photos a network learned from), as `oppy.palette`'s
    text."""
    from oppy.engine.palette import folder_palette

    try:
        return folder_palette(Path(dataset) / "train").to_metadata()
    except FileNotFoundError as exc:
        raise OppyError(f"--palette {dataset}: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(levelname)s: %(message)s")
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # it logs every conversion step at INFO
    from .convert import ExportOptions, export_model
    from .graph import FOLD_RECORD, rewrite_file

    try:
        palette = _palette_of(args.palette) if args.palette else None
        options = ExportOptions(opset=args.opset, overlap=args.overlap, fp16=args.fp16, optimize=args.optimize,
                                scene_size=args.scene_size, palette=palette, parity_images=args.parity_images,
                                parity_tiles=args.parity_tiles)
        if Path(args.source).suffix.lower() == ".onnx":
            parser = build_parser()
            given = [f"--{name.replace('_', '-')}" for name in ("opset", "overlap", "fp16", "optimize",
                                                                 "parity_images", "parity_tiles")
                     if getattr(args, name) != parser.get_default(name)]
            if given:
                raise OppyError(f"{', '.join(given)} need the Keras network: give its run directory or .keras "
                                "file (an .onnx source only gets the graph rewrites, --scene-size and --palette)")
            metadata = {KEY_SCENE_SIZE: str(args.scene_size)} if args.scene_size is not None else {}
            if palette is not None:
                metadata[KEY_PALETTE] = palette
            rewrites = {FOLD_RECORD: rewrite_file(args.source, args.out, metadata)}
            report = {"source": args.source, "path": str(args.out), "graph_rewrites": rewrites,
                      "metadata_set": metadata, "outputs": "identical to the source's"}
        else:
            report = export_model(args.source, args.out, options)
        if args.int8:
            from .convert import sibling
            from .quantize import quantize_int8

            int8 = sibling(args.out, "int8")
            report["int8"] = {"path": str(int8), **quantize_int8(args.out, Path(args.int8), int8)}
    except OppyError as exc:
        if args.debug:
            raise
        print(f"oppy-export: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    text = json.dumps(report, indent=2)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
