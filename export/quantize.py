"""An int8 copy of an exported model for the CPU: ONNX Runtime's static quantisation (QDQ, per-channel weights),
calibrated on the tiles the engine itself cuts from training photos (with their context, where the model has one).

The copy keeps the float model's contract and metadata and adds `oppy.precision` ("int8") and a record of the
calibration (`oppy.int8`); its input and output stay float32, so the engine runs it as any model.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx

from oppy.engine.contract import ModelContract
from oppy.engine.errors import OppyError
from oppy.engine.journey import Stages, Work, in_turn
from oppy.engine.outputs.files import write_file
from oppy.engine.session import check_model_file

KEY_PRECISION = "oppy.precision"
KEY_INT8 = "oppy.int8"
#: training photos the calibration reads (spread over the split), and the tiles of each batch it records
CALIBRATION_PHOTOS, CALIBRATION_BATCH = 48, 64
#: layers kept in float: the first convolution (it sees L itself) and the output head (its errors are the colour)
KEEP_FLOAT = "ends"
#: each activation's range is the central CALIBRATION_PERCENTILE % of its values on the calibration tiles, not its
#: extremes: on pans over the validation photos the packaged model's int8 copy then flickers less than the float
#: model (0.707 against 0.733), where the extremes (MinMax) made it flicker more (0.758), and 99.99 / 99.999 % lie
#: between (0.734, 0.743); ΔE00 on 12 photos 3.46 against 3.44 (engine/models/README.md)
CALIBRATION_PERCENTILE = 99.9
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def calibration_feeds(contract: ModelContract, photos: list[Path]) -> list[dict[str, np.ndarray]]:
    """The batches of tiles (and context) the engine would feed the model for `photos`, at its default chroma
    scale and overlap: each as an input feed."""
    feeds: list[dict[str, np.ndarray]] = []

    def record(batch) -> None:
        feed = {contract.input_name: batch.tiles[: batch.filled].copy()}
        if contract.context_input is not None:
            feed[contract.context_input] = batch.context[: batch.filled].copy()
        feeds.append(feed)
        batch.output[...] = 0  # the colour is not asked for: a neutral answer lets the frame through blend

    stages = Stages(contract, contract.overlap, "auto", CALIBRATION_BATCH, record)
    for index, path in enumerate(photos):
        pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if pixels is not None:
            in_turn(stages, [Work(index, path.name, pixels)])
    return feeds


def even_batches(feeds: list[dict[str, np.ndarray]], size: int = CALIBRATION_BATCH) -> list[dict[str, np.ndarray]]:
    """The feeds' tiles regrouped into batches of one size (the percentile calibration stacks them): `size` each,
    the last tiles that fill no batch left out, or one batch of them all where they are fewer."""
    joined = {key: np.concatenate([feed[key] for feed in feeds]) for key in feeds[0]}
    total = len(next(iter(joined.values())))
    size = min(size, total)
    count = total // size * size
    return [{key: tiles[start:start + size] for key, tiles in joined.items()} for start in range(0, count, size)]


def training_photos(dataset: Path, count: int = CALIBRATION_PHOTOS) -> list[Path]:
    """`count` photos spread evenly over a prepared dataset's train split (never its validation photos)."""
    folder = Path(dataset) / "train"
    if not folder.is_dir():
        raise OppyError(f"--int8 {dataset}: no train folder there: give a prepared dataset (oppy-train prepare)")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not photos:
        raise OppyError(f"--int8 {dataset}: its train folder holds no photos to calibrate on")
    step = max(1, len(photos) // count)
    return photos[::step][:count]


def _ends(model: onnx.ModelProto) -> list[str]:
    convolutions = [node.name for node in model.graph.node if node.op_type in ("Conv", "ConvTranspose")]
    return sorted({convolutions[0], convolutions[-1]}) if convolutions else []


def quantize_int8(model_path: Path, dataset: Path, out: Path, photos: int = CALIBRATION_PHOTOS,
                  keep_float: str = KEEP_FLOAT) -> dict:
    """Write `out`, the int8 copy of the float model at `model_path`, calibrated on `photos` training photos of
    `dataset`; `keep_float` "ends" keeps the first and last convolutions in float, "none" quantises all. Returns
    the record written into its metadata, with the largest and the mean |Δa*b*| from the float model on the
    calibration tiles."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from oppy.engine.session import ModelSession

    check_model_file(model_path)
    if keep_float not in ("ends", "none"):
        raise OppyError(f"keep_float must be 'ends' or 'none', not {keep_float!r}")
    session = ModelSession(model_path, "cpu", CALIBRATION_BATCH)
    contract = session.contract
    session.close()
    chosen = training_photos(dataset, photos)
    feeds = calibration_feeds(contract, chosen)
    if not feeds:
        raise OppyError(f"--int8 {dataset}: none of its train photos could be read")
    feeds = even_batches(feeds)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self.feeds, None)

    float_model = onnx.load(str(model_path))
    with tempfile.TemporaryDirectory() as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(str(model_path), str(prepared), skip_symbolic_shape=True)
        excluded = _ends(onnx.load(str(prepared))) if keep_float == "ends" else []
        quantize_static(str(prepared), str(quantized), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=excluded,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE})
        model = onnx.load(str(quantized))
    record = {"dataset": str(dataset), "photos": len(chosen), "tiles": int(sum(len(f[contract.input_name])
                                                                             for f in feeds)),
              "format": f"QDQ, per-channel int8 weights, uint8 activations (percentile {CALIBRATION_PERCENTILE})",
              "kept_float": excluded}
    del model.metadata_props[:]
    for prop in float_model.metadata_props:
        if prop.key not in (KEY_PRECISION, KEY_INT8):
            model.metadata_props.add(key=prop.key, value=prop.value)
    model.metadata_props.add(key=KEY_PRECISION, value="int8")
    model.metadata_props.add(key=KEY_INT8, value=json.dumps(record))
    write_file(out, model.SerializeToString(), "the int8 model")
    record.update(_differences(model_path, out, feeds, contract))
    return record


def _differences(float_path: Path, int8_path: Path, feeds: list[dict], contract: ModelContract) -> dict[str, float]:
    """The largest and the mean |Δa*b*| between the two models' answers on the calibration tiles (a* and b* units):
    clipping each activation to the central part of its range trades a larger error on the rarest values for a
    smaller one everywhere else."""
    import onnxruntime as ort

    runs = [ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]) for path in (float_path, int8_path)]
    largest, total, count = 0.0, 0.0, 0
    for feed in feeds[:8]:
        ours, theirs = (run.run([contract.output_name], feed)[0] for run in runs)
        difference = np.abs(ours - theirs) * contract.ab_scale
        largest = max(largest, float(difference.max()))
        total, count = total + float(difference.sum()), count + difference.size
    return {"max_abs_ab_difference": largest, "mean_abs_ab_difference": total / max(1, count)}
