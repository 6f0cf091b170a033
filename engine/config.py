"""Every engine option with its default, in one frozen dataclass; the CLI maps its flags onto it one to one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import OppyError
from .session import PROVIDERS


@dataclass(frozen=True)
class EngineConfig:
    """Options of an `Engine`. `model=None` means the packaged default model."""

    model: str | Path | None = None
    #: "auto" (TensorRT, then CUDA, then CPU: whatever loads), "tensorrt", "cuda" or "cpu"
    provider: str = "auto"
    #: tiles per inference call; tiles of consecutive frames share batches, the last one is padded
    batch_size: int = 256
    #: pixels shared by neighbouring tiles; None: the model's recommended overlap
    overlap: int | None = None
    #: ONNX Runtime intra-op threads; 0 lets ONNX Runtime choose
    threads: int = 0
    #: frames in flight between two pipeline stages
    queue_size: int = 4
    fps: float = 5.0
    crf: int = 20
    codec: str = "libx264"
    preset: str = "veryfast"
    overwrite: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.provider not in PROVIDERS:
            problems.append(f"provider must be one of {', '.join(PROVIDERS)}, not {self.provider!r}")
        if self.batch_size < 1:
            problems.append(f"batch size must be at least 1, not {self.batch_size}")
        if self.overlap is not None and self.overlap < 0:
            problems.append(f"overlap must be 0 or more pixels, not {self.overlap}")
        if self.threads < 0:
            problems.append(f"threads must be 0 (automatic) or more, not {self.threads}")
        if self.queue_size < 1:
            problems.append(f"queue size must be at least 1, not {self.queue_size}")
        if not self.fps > 0:
            problems.append(f"fps must be positive, not {self.fps}")
        if not 0 <= self.crf <= 51:
            problems.append(f"crf must be in 0..51, not {self.crf}")
        if problems:
            raise OppyError("; ".join(problems))
