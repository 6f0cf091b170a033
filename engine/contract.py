"""The model contract: the metadata keys an ONNX colouriser carries and the engine reads.

export/ writes these keys into the ONNX model's `metadata_props`; the engine reads exactly these and refuses
a model that lacks a required one. Nothing about a model's scaling or tile size is hard-coded elsewhere.

| key | required | meaning |
| --- | --- | --- |
| `oppy.contract` | yes | contract version, `"1"` |
| `oppy.input` | yes | name of the input tensor: float32 NHWC `[N, tile, tile, 1]` |
| `oppy.output` | yes | name of the output tensor: float32 NHWC `[N, tile, tile, 2]` |
| `oppy.tile_size` | yes | tile edge in pixels, e.g. `"64"` |
| `oppy.l_scale`, `oppy.l_shift` | yes | the model sees `L* * l_scale + l_shift` (L* in [0, 100]) |
| `oppy.ab_scale` | yes | a*, b* = model output * ab_scale |
| `oppy.overlap` | no | recommended tile overlap in pixels (the engine's default when none is asked for) |
| `oppy.scene_size` | no | median long side, px, of the photos the model learned from (the scale of `auto`) |
| `oppy.context_input` | no | name of a second input: the L around each tile, float32 NHWC `[N, tile, tile, 1]` |
| `oppy.context_factor` | with `context_input` | that window's width in tiles (2 to 16), brought down to the tile |
| `oppy.palette` | no | JSON: the (L*, a*, b*) cells the training photos hold (`engine.palette`): the palette guard |
| `oppy.architecture` | no | the architecture's registry name, e.g. `"unet"` |
| `oppy.training` | no | JSON: data, epochs, time, machine |
| `oppy.metrics` | no | JSON: validation metrics |
| `oppy.exporter` | no | JSON: versions of the tools that wrote the model |
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import ModelError
from .palette import Palette

CONTRACT_VERSION = "1"
KEY_CONTRACT = "oppy.contract"
KEY_INPUT = "oppy.input"
KEY_OUTPUT = "oppy.output"
KEY_TILE_SIZE = "oppy.tile_size"
KEY_L_SCALE = "oppy.l_scale"
KEY_L_SHIFT = "oppy.l_shift"
KEY_AB_SCALE = "oppy.ab_scale"
KEY_OVERLAP = "oppy.overlap"
KEY_SCENE_SIZE = "oppy.scene_size"
KEY_CONTEXT_INPUT = "oppy.context_input"
KEY_CONTEXT_FACTOR = "oppy.context_factor"
KEY_PALETTE = "oppy.palette"
KEY_ARCHITECTURE = "oppy.architecture"
KEY_TRAINING = "oppy.training"
KEY_METRICS = "oppy.metrics"
KEY_EXPORTER = "oppy.exporter"

REQUIRED_KEYS = (KEY_CONTRACT, KEY_INPUT, KEY_OUTPUT, KEY_TILE_SIZE, KEY_L_SCALE, KEY_L_SHIFT, KEY_AB_SCALE)
DEFAULT_OVERLAP = 16
#: the largest tile a model may declare, px (a batch of 256 such tiles takes 3 GB)
MAX_TILE_SIZE = 1024
#: the largest |l_scale|, |l_shift| and |ab_scale| a model may declare: past it, the scaling is not of L* or a*b*
MAX_SCALING = 1e4
#: |a*|, |b*| beyond this are no colour a display shows: a model that answers past it (or with NaN) is broken
CHROMA_LIMIT = 500.0
#: the largest scene size a model may state, in pixels (larger frames than this are not known to exist)
MAX_SCENE_SIZE = 1 << 16
#: the context windows a model may declare, in tiles (`oppy.context_factor`)
MIN_CONTEXT_FACTOR, MAX_CONTEXT_FACTOR = 2, 16


@dataclass(frozen=True)
class ModelContract:
    """What the engine needs to know to feed a model and read its answer."""

    input_name: str
    output_name: str
    tile_size: int
    l_scale: float
    l_shift: float
    ab_scale: float
    overlap: int = DEFAULT_OVERLAP
    #: median long side in pixels of the photos the model learned from; None: not stated (auto runs at scale 1)
    scene_size: int | None = None
    #: a second input, the L around each tile over a window `context_factor` tiles wide brought down to the tile's
    #: size (`engine.context`), scaled as the tiles are; None: the model sees its tile only
    context_input: str | None = None
    context_factor: int | None = None
    #: where the training photos put their colours (`engine.palette`); None: no palette guard
    palette: Palette | None = field(default=None, compare=False, repr=False)
    info: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """The `metadata_props` entries that describe this contract (informational keys included)."""
        return {
            KEY_CONTRACT: CONTRACT_VERSION,
            KEY_INPUT: self.input_name,
            KEY_OUTPUT: self.output_name,
            KEY_TILE_SIZE: str(self.tile_size),
            KEY_L_SCALE: repr(self.l_scale),
            KEY_L_SHIFT: repr(self.l_shift),
            KEY_AB_SCALE: repr(self.ab_scale),
            KEY_OVERLAP: str(self.overlap),
            **({KEY_SCENE_SIZE: str(self.scene_size)} if self.scene_size is not None else {}),
            **({KEY_CONTEXT_INPUT: self.context_input, KEY_CONTEXT_FACTOR: str(self.context_factor)}
               if self.context_input is not None else {}),
            **({KEY_PALETTE: self.palette.to_metadata()} if self.palette is not None else {}),
            **self.info,
        }

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str = "the model") -> ModelContract:
        """Parse `metadata_props`; raise `ModelError` naming every missing or malformed key."""
        missing = [key for key in REQUIRED_KEYS if key not in metadata]
        if missing:
            raise ModelError(
                f"{source} does not carry the oppy model contract: missing metadata "
                f"{', '.join(missing)}; export it with oppy-export, which writes these keys"
            )
        if metadata[KEY_CONTRACT] != CONTRACT_VERSION:
            raise ModelError(
                f"{source} has model contract version {metadata[KEY_CONTRACT]!r}; this engine reads "
                f"version {CONTRACT_VERSION!r}: re-export the model with this version's oppy-export"
            )
        try:
            contract = cls(
                input_name=metadata[KEY_INPUT],
                output_name=metadata[KEY_OUTPUT],
                tile_size=int(metadata[KEY_TILE_SIZE]),
                l_scale=float(metadata[KEY_L_SCALE]),
                l_shift=float(metadata[KEY_L_SHIFT]),
                ab_scale=float(metadata[KEY_AB_SCALE]),
                overlap=int(metadata.get(KEY_OVERLAP, DEFAULT_OVERLAP)),
                scene_size=int(metadata[KEY_SCENE_SIZE]) if KEY_SCENE_SIZE in metadata else None,
                context_input=metadata.get(KEY_CONTEXT_INPUT),
                context_factor=int(metadata[KEY_CONTEXT_FACTOR]) if KEY_CONTEXT_FACTOR in metadata else None,
                palette=Palette.from_metadata(metadata[KEY_PALETTE], source) if KEY_PALETTE in metadata else None,
                info={k: v for k, v in metadata.items() if k in (KEY_ARCHITECTURE, KEY_TRAINING,
                                                                   KEY_METRICS, KEY_EXPORTER)},
            )
        except ValueError as exc:
            raise ModelError(f"{source} has malformed contract metadata: {exc}") from exc
        if not 8 <= contract.tile_size <= MAX_TILE_SIZE or not 0 <= contract.overlap < contract.tile_size:
            raise ModelError(
                f"{source} declares tile size {contract.tile_size} and overlap {contract.overlap}: "
                f"the tile must be 8 to {MAX_TILE_SIZE} px and the overlap in [0, tile)"
            )
        scaling = {KEY_L_SCALE: contract.l_scale, KEY_L_SHIFT: contract.l_shift, KEY_AB_SCALE: contract.ab_scale}
        for key, value in scaling.items():
            if not abs(value) <= MAX_SCALING or (key != KEY_L_SHIFT and value == 0):  # NaN fails the first test
                raise ModelError(
                    f"{source} declares {key} = {value!r}: a scaling must be a finite number, not 0, of magnitude "
                    f"at most {MAX_SCALING:g}; re-export the model with oppy-export"
                )
        if contract.scene_size is not None and not contract.tile_size <= contract.scene_size <= MAX_SCENE_SIZE:
            raise ModelError(
                f"{source} declares a scene size of {contract.scene_size} px: it must lie between the tile "
                f"({contract.tile_size} px) and {MAX_SCENE_SIZE} px; re-export the model with a sane --scene-size"
            )
        if (contract.context_input is None) != (contract.context_factor is None) or (
                contract.context_factor is not None
                and not MIN_CONTEXT_FACTOR <= contract.context_factor <= MAX_CONTEXT_FACTOR) or (
                contract.context_input is not None and contract.context_input in ("", contract.input_name)):
            raise ModelError(
                f"{source} declares context input {contract.context_input!r} with factor "
                f"{contract.context_factor!r}: a context input needs its own name and a factor of "
                f"{MIN_CONTEXT_FACTOR} to {MAX_CONTEXT_FACTOR}; re-export the model with oppy-export"
            )
        return contract


#: the contract `oppy-train` trains to: L* / 50 - 1 in [-1, 1] in, a*, b* / 128 (tanh's range) out, 64 px tiles;
#: `oppy-export` assumes it for a network whose run recorded none
TRAINING_CONTRACT = ModelContract("L", "ab", 64, l_scale=1 / 50, l_shift=-1.0, ab_scale=128.0)
