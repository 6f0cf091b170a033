"""Training: fit an architecture on a prepared dataset, with checkpoints, resume, a CSV log and early stopping.

Everything a run produces lives in its run directory: `model.keras` (best weights), `log.csv`, `run.json`
and `backup/` (the state a re-run resumes from after an interruption).
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import keras

from oppy.engine.contract import MAX_CONTEXT_FACTOR, MIN_CONTEXT_FACTOR, TRAINING_CONTRACT

from .architectures import CONTEXT_FACTOR, build, conv_flops, uses_classes, uses_context
from .augment import Photometric
from .classes import class_weights, rebalanced_cross_entropy
from .consistency import SaveBest, paired
from .consistency import check as check_consistency
from .data import scene_size, split_files, tile_dataset
from .palette import dataset_palette

LOSSES = {"mse": "mean_squared_error", "l1": "mean_absolute_error", "huber": keras.losses.Huber(delta=0.1)}
# The seed is trained as it originally was (MSE, RMSprop); the default fights MSE's grey-brown average with L1.
DEFAULT_LOSS = {"seed": "mse", "unet": "l1"}
# A classification head is trained on its logits with the rebalanced cross-entropy (training/classes.py).
CLASS_LOSS = "rebalanced-ce"
# A cosine decay to zero ends in a low-noise minimum; on the real photos a constant 1e-3 left the validation loss
# jumping by 5% from epoch to epoch.
SCHEDULES = ("cosine", "plateau")


@dataclass(frozen=True)
class FitOptions:
    arch: str = "unet"
    loss: str | None = None  # None: the architecture's own (DEFAULT_LOSS)
    epochs: int = 40
    batch_size: int = 64
    crops_per_photo: int = 8
    learning_rate: float = 1e-3
    # "cosine": decay to zero over all `epochs` (choose epochs to fit the budget); "plateau": halve on plateaus.
    schedule: str = "cosine"
    patience: int = 5
    seed: int = 0
    max_minutes: float | None = None
    jit_compile: bool = True  # XLA: 94 vs 68 training tiles/s at batch 64 on 2 cores, after a one-off compile
    verbose: int = 1
    #: crops from photos shrunk by a random factor down to this (None: at their own size only)
    scale_jitter: float | None = None
    #: a context architecture's window, in tiles (`engine.context`; the contract records it)
    context_factor: int = CONTEXT_FACTOR
    #: photometric augmentation strengths (`training.augment.Photometric`'s fields, each off at its default)
    aug_exposure: float = Photometric.exposure
    aug_gamma: float = Photometric.gamma
    aug_contrast: float = Photometric.contrast
    aug_noise: float = Photometric.noise
    aug_jpeg: int = Photometric.jpeg
    aug_blur: float = Photometric.blur
    aug_levels: int = Photometric.levels
    aug_chance: float = Photometric.chance
    #: a warm start: the weights of this run directory's (or .keras file's) model, of the same architecture
    init: str | None = None
    #: the weight of the shift consistency loss (`training.consistency`; 0: off) and its partners' largest shift, px
    shift_consistency: float = 0.0
    shift_range: int = 8

    def photometric(self) -> Photometric:
        """The augmentation these options ask for (ValueError naming a strength out of its range)."""
        return Photometric(**{field.name: getattr(self, f"aug_{field.name}") for field in fields(Photometric)})


class _TimeLimit(keras.callbacks.Callback):
    """Stops training at the end of the first epoch that finishes past the time limit."""

    def __init__(self, minutes: float):
        super().__init__()
        self.deadline = time.monotonic() + 60 * minutes
        self.stopped = False

    def on_epoch_end(self, epoch, logs=None):
        if time.monotonic() > self.deadline:
            self.stopped = True
            self.model.stop_training = True


class _EpochClock(keras.callbacks.Callback):
    """Adds each epoch's wall time to its logs (and so to log.csv), so interrupted runs still add up."""

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["seconds"] = time.perf_counter() - self.started


def _logged_epochs(log: Path) -> list[dict]:
    if not log.exists():
        return []
    with open(log, newline="") as handle:
        return list(csv.DictReader(handle))


def _best_logged(log: Path, column: str = "val_loss") -> float | None:
    """The best validation loss an interrupted earlier run logged, so a resumed run keeps the better model."""
    return min((float(row[column]) for row in _logged_epochs(log) if row.get(column)), default=None)


def _warm_start(model: keras.Model, source: Path) -> None:
    """Copy the weights of a run's model (a run directory or a .keras file) into `model`, layer by layer; the two
    must be the same architecture (ValueError naming the difference otherwise)."""
    path = source / "model.keras" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"--init {source}: no model.keras there to start from")
    trained = keras.models.load_model(str(path), compile=False)
    theirs, ours = trained.get_weights(), model.get_weights()
    shapes = [w.shape for w in theirs], [w.shape for w in ours]
    if shapes[0] != shapes[1]:
        raise ValueError(f"--init {source}: its network ({trained.count_params():,} parameters) is not the "
                         f"{model.name} being trained ({model.count_params():,}): start from a run of the same --arch")
    model.set_weights(theirs)


def fit(dataset_dir: str | Path, run_dir: str | Path, options: FitOptions = FitOptions(),
        extra_callbacks: tuple[keras.callbacks.Callback, ...] = ()) -> dict:
    """Train `options.arch` on `dataset_dir`'s train split, validating on its val split; returns run.json.

    Re-running an interrupted run resumes it from its last finished epoch. `extra_callbacks` come last.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(options.seed)
    classes, context = uses_classes(options.arch), uses_context(options.arch)
    loss = CLASS_LOSS if classes else options.loss or DEFAULT_LOSS.get(options.arch, "l1")
    if not classes and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}: choose one of {', '.join(LOSSES)}")
    if options.scale_jitter is not None and not 0 < options.scale_jitter <= 1:
        raise ValueError(f"scale jitter must be in (0, 1], not {options.scale_jitter}")
    if not MIN_CONTEXT_FACTOR <= options.context_factor <= MAX_CONTEXT_FACTOR:
        raise ValueError(f"the context factor must be {MIN_CONTEXT_FACTOR} to {MAX_CONTEXT_FACTOR} tiles, not "
                         f"{options.context_factor}")
    if options.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {options.schedule!r}: choose one of {', '.join(SCHEDULES)}")
    photometric = options.photometric()
    consistent = options.shift_consistency > 0
    check_consistency(options.shift_consistency, options.shift_range)
    if consistent and classes:
        raise ValueError("shift consistency trains a model with a regression head, not a classification head")
    logged = _logged_epochs(run_dir / "log.csv")
    if logged and ("val_disagreement_loss" in logged[0]) != consistent:
        raise ValueError(f"{run_dir} was trained {'with' if not consistent else 'without'} --shift-consistency: a "
                         "run resumes with the objective it began with (or give a new --out)")
    train_photos = len(split_files(dataset_dir, "train"))
    scenes = scene_size(dataset_dir, "train") if train_photos else None
    val_photos = len(split_files(dataset_dir, "val"))
    steps_per_epoch = max(1, train_photos * options.crops_per_photo // options.batch_size)
    learning_rate = options.learning_rate
    if options.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(options.learning_rate,
                                                               decay_steps=options.epochs * steps_per_epoch)
    model = build(options.arch, TRAINING_CONTRACT.tile_size)
    if options.init:
        _warm_start(model, Path(options.init))
    optimizer = (keras.optimizers.RMSprop(learning_rate) if options.arch == "seed"
                 else keras.optimizers.Adam(learning_rate))
    weights = class_weights(split_files(dataset_dir, "train")) if classes else None
    trained = paired(model) if consistent else model
    if consistent:  # the crop and its partner each fit to their truth; their disagreement weighed beside
        trained.compile(optimizer=optimizer, loss={"ab": LOSSES[loss], "ab_partner": LOSSES[loss],
                                                   "disagreement": "mean_absolute_error"},
                        loss_weights={"ab": 1.0, "ab_partner": 1.0, "disagreement": options.shift_consistency},
                        metrics={"ab": ["mean_absolute_error"]}, jit_compile=options.jit_compile)
    elif classes:  # trained on the logits; "ab" (their annealed mean) is watched, not trained
        model.compile(optimizer=optimizer, loss={"logits": rebalanced_cross_entropy(weights)},
                      metrics={"ab": ["mean_absolute_error"]}, jit_compile=options.jit_compile)
    else:
        model.compile(optimizer=optimizer, loss=LOSSES[loss], metrics=["mean_absolute_error"],
                      jit_compile=options.jit_compile)
    factor = options.context_factor if context else None
    shift_range = options.shift_range if consistent else None
    # the crop's own loss, whatever else the training graph weighs
    monitor = "val_ab_loss" if consistent else "val_loss"

    def targets(dataset):  # a classification head's loss and metric both read the ab tiles
        return dataset.map(lambda x, ab: (x, {"ab": ab, "logits": ab})) if classes else dataset

    train = targets(tile_dataset(dataset_dir, "train", options.batch_size, options.crops_per_photo, options.seed,
                                 context_factor=factor, scale_jitter=options.scale_jitter,
                                 photometric=photometric, shift_range=shift_range)).repeat()
    val = targets(tile_dataset(dataset_dir, "val", options.batch_size, options.crops_per_photo, options.seed,
                               context_factor=factor, shift_range=shift_range))
    limit = _TimeLimit(options.max_minutes) if options.max_minutes else None
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        _EpochClock(),
        SaveBest(model, str(run_dir / "model.keras"), monitor, _best_logged(run_dir / "log.csv", monitor)) if consistent
        else keras.callbacks.ModelCheckpoint(str(run_dir / "model.keras"), monitor="val_loss", save_best_only=True,
                                             initial_value_threshold=_best_logged(run_dir / "log.csv")),
        keras.callbacks.CSVLogger(str(run_dir / "log.csv"), append=True),
        keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=options.patience),
        *([keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode="min", factor=0.5,
                                             patience=max(1, options.patience // 2))]
          if options.schedule == "plateau" else []),
        *([limit] if limit else []),
        *extra_callbacks,
    ]
    trained.fit(train, validation_data=val, epochs=options.epochs, callbacks=callbacks,
              steps_per_epoch=steps_per_epoch,
              validation_steps=math.ceil(val_photos * options.crops_per_photo / options.batch_size),
              verbose=options.verbose)
    epochs = _logged_epochs(run_dir / "log.csv")
    summary = {
        "architecture": options.arch, "loss": loss, "options": asdict(options), "dataset": str(dataset_dir),
        "train_photos": train_photos, "parameters": model.count_params(), "flops_per_tile": conv_flops(model),
        "epochs_run": len(epochs),
        "train_seconds": sum(float(row["seconds"]) for row in epochs),
        "best_val_loss": _best_logged(run_dir / "log.csv", monitor),
        "final_learning_rate": float(keras.ops.convert_to_numpy(trained.optimizer.learning_rate)),
        "stopped_by_time_limit": bool(limit and limit.stopped),
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "keras": keras.__version__},
        "scene_size": scenes,
        "class_weights": None if weights is None else [round(float(w), 4) for w in weights],
        "contract": replace(TRAINING_CONTRACT, scene_size=scenes, palette=dataset_palette(dataset_dir, "train"),
                            **({"context_input": "context", "context_factor": factor} if factor else {})
                            ).to_metadata(),
    }
    (run_dir / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
