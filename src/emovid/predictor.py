"""Predictors: a model and how to feed it, loaded from a zero-shot name, a checkpoint or an ONNX file.

A :class:`Predictor` is any model that maps normalised float clips (B, T, C, H, W) to logits, with the
:class:`~emovid.checkpoint.InferenceSpec` that says how to make those clips; clips are made exactly as for
training, by :mod:`emovid.data.video`. A frame-level model (late fusion, the zero-shot ensemble) also scores single
frames, so a timeline scores each sampled frame once (:mod:`emovid.analysis`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emovid.checkpoint import InferenceSpec, load_checkpoint
from emovid.data.video import Resize
from emovid.faces import FaceGeometry
from emovid.inference import InferenceOptions, clip_probabilities, frame_kind, frame_scores, model_device
from emovid.timeline import ScoreKind


class PredictorError(ValueError):
    """A predictor that cannot be loaded as asked; the message is one line saying what to do."""


@dataclass(frozen=True)
class Predictor:
    """A model and how to feed it: ``model`` maps normalised float clips (B, T, C, H, W) to logits (B, K).

    ``options`` say how clips go through it (flip TTA, precision, batch size); clips go to the model's device.
    """

    model: nn.Module
    spec: InferenceSpec
    options: InferenceOptions = field(default_factory=InferenceOptions)

    @classmethod
    def from_checkpoint(cls, path: str | Path, options: InferenceOptions | None = None) -> Predictor:
        """The checkpoint's model on ``options.device``.

        Raises :class:`~emovid.checkpoint.CheckpointError` for a missing or incompatible file.
        """
        options = options or InferenceOptions()
        model, spec = load_checkpoint(path)
        return cls(model.to(options.torch_device), spec, options)

    @property
    def resize(self) -> Resize:
        return Resize(**self.spec.resize)

    @property
    def face_geometry(self) -> FaceGeometry | None:
        """How the model's face crops frame the face; None: emovid's default."""
        data = self.spec.face_geometry
        return FaceGeometry.from_dict(data) if data else None

    @torch.inference_mode()
    def probabilities(self, clips: np.ndarray) -> np.ndarray:
        """uint8 clips (B, T, C, H, W) to class probabilities (B, K), through :func:`clip_probabilities`."""
        x = torch.from_numpy(np.ascontiguousarray(clips)).to(model_device(self.model))
        return clip_probabilities(self.model, x, self.spec.mean, self.spec.std, self.options.tta,
                                  self.options.precision).cpu().numpy()

    @property
    def frame_kind(self) -> ScoreKind | None:
        """How the model pools its frames (:func:`~emovid.inference.frame_kind`); None for a clip-level model."""
        return frame_kind(self.model)

    @torch.inference_mode()
    def frame_scores(self, frames: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """A frame-level model's scores (N, V, K) for uint8 frames (N, C, H, W), ``batch_size`` frames per model call
        (default: as many as the options' batch of clips holds, batch size x T), through
        :func:`~emovid.inference.frame_scores`."""
        batch_size = batch_size or self.options.batch_size * self.spec.frames
        device = model_device(self.model)
        return np.concatenate([
            frame_scores(self.model, torch.from_numpy(np.ascontiguousarray(frames[i : i + batch_size])).to(device),
                         self.spec.mean, self.spec.std, self.options.tta, self.options.precision).cpu().numpy()
            for i in range(0, len(frames), batch_size)
        ])


def load_predictor(*, checkpoint: str | Path | None = None, model: str | None = None, onnx: str | Path | None = None,
                   backend: str | None = None, weights: str | Path | None = None, frames: int = 16,
                   crop: str | None = None, options: InferenceOptions | None = None,
                   pooling: str = "mean", member_weights: Mapping[str, float] | None = None,
                   log: Callable[[str], None] = lambda line: None) -> Predictor:
    """The predictor a user asks for: a zero-shot model (the default), a checkpoint, or an ONNX file.

    Args:
        checkpoint: a checkpoint from ``emovid train``.
        model: a zero-shot model name (see :data:`emovid.zero_shot.ZERO_SHOT_MODELS`); the default without
            ``checkpoint`` or ``onnx``.
        onnx: a model from ``emovid export`` (implies ``backend="onnxruntime"``).
        backend: ``torch`` or ``onnxruntime``; with a checkpoint and onnxruntime, ``CKPT.onnx`` is exported
            beside it when missing or older than the checkpoint. Zero-shot models run with torch only.
        weights: for ``fer2013-zero-shot``, a local copy of the fer package's ``emotion_model.hdf5``.
        frames: frames per clip of zero-shot models.
        crop: ``center`` or ``face``, overriding the model's crop mode.
        options: flip TTA, device, precision, batch size.
        pooling: for zero-shot models, how frames and members are combined (see :data:`emovid.zero_shot.POOLINGS`).
        member_weights: for zero-shot ensembles, a share per member (default equal).
        log: called with one line for what happens on the way (an export).

    Raises:
        PredictorError: the asked-for model cannot be had; the message is one line.
    """
    from emovid.checkpoint import CheckpointError
    from emovid.export import ExportError, OnnxModel, export_onnx

    options = options or InferenceOptions()
    backend = backend or ("onnxruntime" if onnx else "torch")
    zero_shot_wanted = model is not None or (checkpoint is None and onnx is None)
    if not zero_shot_wanted and (pooling != "mean" or member_weights is not None):
        raise PredictorError("--pooling and --member-weights are for zero-shot models, not a checkpoint or ONNX file")
    if zero_shot_wanted:
        from emovid.models import WeightsUnavailableError
        from emovid.zero_shot import ENSEMBLE, zero_shot_predictor

        if checkpoint is not None:
            raise PredictorError("use either --checkpoint or --model, not both")
        if backend != "torch":
            raise PredictorError(f"--backend {backend} runs exported checkpoints (--onnx FILE or --checkpoint); "
                                 f"the zero-shot models run with torch only")
        name = model or ("fer2013-zero-shot" if weights else ENSEMBLE)
        try:
            zero_shot, spec = zero_shot_predictor(name, frames=frames, weights_path=weights, pooling=pooling,
                                                  member_weights=member_weights)
        except (WeightsUnavailableError, ValueError) as exc:
            raise PredictorError(str(exc)) from None
        predictor = Predictor(zero_shot.to(options.torch_device), spec, options)
    elif backend == "torch":
        if checkpoint is None:
            raise PredictorError("--backend torch needs --checkpoint; an .onnx file runs with --backend onnxruntime")
        try:
            predictor = Predictor.from_checkpoint(checkpoint, options)
        except CheckpointError as exc:
            raise PredictorError(str(exc)) from None
    else:
        try:
            predictor = _onnx_predictor(checkpoint, onnx, options, log, OnnxModel, export_onnx)
        except (CheckpointError, ExportError) as exc:
            raise PredictorError(str(exc)) from None
        except ImportError as exc:
            raise PredictorError(f"{exc.name} is not installed: pip install 'emovid[export]'") from None
    if crop:
        predictor = replace(predictor, spec=replace(predictor.spec, crop=crop))
    return predictor


def _onnx_predictor(checkpoint: str | Path | None, onnx: str | Path | None, options: InferenceOptions,
                    log: Callable[[str], None], onnx_model: Any, export_onnx: Any) -> Predictor:
    """An ONNX Runtime predictor; a checkpoint's stale or missing ``.onnx`` is exported first."""
    if onnx is None and checkpoint is None:
        raise PredictorError("--backend onnxruntime needs --onnx FILE or --checkpoint")
    path = Path(onnx) if onnx else Path(checkpoint).with_suffix(".onnx")  # type: ignore[arg-type]
    if onnx is None and checkpoint is not None and (not path.exists() or
                                                    path.stat().st_mtime < Path(checkpoint).stat().st_mtime):
        export_onnx(*load_checkpoint(checkpoint), path)
        log(f"exported {checkpoint} -> {path}")
    if not path.is_file():
        raise PredictorError(f"{path}: no such ONNX file (make one with `emovid export`)")
    runner = onnx_model(path)
    return Predictor(runner, runner.spec(), options)
