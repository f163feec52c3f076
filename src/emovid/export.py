"""ONNX export of a trained model, and an ONNX Runtime runner that stands in for the PyTorch model.

The ONNX graph takes normalised float clips ``clips`` (B, T, C, H, W), with a dynamic batch axis, and
returns ``logits`` (B, K). The :class:`~emovid.checkpoint.InferenceSpec` is stored in the file's metadata and
the weights inside it (one file below ONNX's 2 GB limit), so an exported model is as self-contained as its
checkpoint.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from emovid.checkpoint import InferenceSpec, load_checkpoint
from emovid.outputs import Output, check_outputs

OPSET = 18  # the oldest opset the dynamo exporter writes; ONNX Runtime 1.16+ runs it
SPEC_KEY = "emovid_spec"


class ExportError(Exception):
    """A model that cannot be exported or an ONNX file that cannot be used; one line."""


def _export(model: nn.Module, example: torch.Tensor, path: Path, opset: int, dynamo: bool, spec_json: str) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter about constant shapes and deprecations
        if dynamo:
            program = torch.onnx.export(model, (example,), None, dynamic_shapes=({0: torch.export.Dim("batch")},),
                                        dynamo=True, verbose=False, input_names=["clips"], output_names=["logits"],
                                        opset_version=opset)
            if program is None:
                raise ExportError(f"{path}: the dynamo exporter returned no program")
            program.model.metadata_props[SPEC_KEY] = spec_json
            program.save(str(path))
            return
        torch.onnx.export(model, (example,), str(path), dynamic_axes={"clips": {0: "batch"}, "logits": {0: "batch"}},
                          dynamo=False, input_names=["clips"], output_names=["logits"], opset_version=opset)
    import onnx

    graph = onnx.load(str(path))
    entry = graph.metadata_props.add()
    entry.key, entry.value = SPEC_KEY, spec_json
    onnx.save(graph, str(path))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def export_onnx(model: nn.Module, spec: InferenceSpec, path: str | Path, opset: int = OPSET) -> str:
    """Export ``model`` (eval mode, CPU) to ONNX with a dynamic batch axis and ``spec`` in the metadata.

    The dynamo exporter (torch.export, needs onnxscript) handles every emovid model; the TorchScript
    exporter (``dynamo=False``) is the fallback, which fails on the LSTM's dynamic batch, the transformer's
    fused kernel and antialiased resizing. Check the result with :func:`max_difference`.

    Returns:
        Which exporter wrote the file: ``dynamo`` or ``torchscript``.

    Raises:
        ExportError: both exporters failed; the message says why.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    size = spec.resize["size"]
    example = torch.zeros(2, spec.frames, 3, size, size)  # (B, T, C, H, W); B=2 so batch cannot be a constant 1
    model = model.eval()
    spec_json = json.dumps(spec.to_dict())
    try:
        _export(model, example, path, opset, True, spec_json)
        return "dynamo"
    except Exception as first:  # the exporters raise many types; all mean "try the other one"
        try:
            _export(model, example, path, opset, False, spec_json)
            return "torchscript"
        except Exception as second:
            raise ExportError(f"{spec.model_args.get('name')}: ONNX export failed (dynamo: {_one_line(first)}; "
                              f"torchscript: {_one_line(second)})") from None


def max_difference(model: nn.Module, onnx_model: nn.Module, clips: torch.Tensor) -> tuple[float, float]:
    """Largest absolute differences (logits, probabilities) between two models on the same float clips."""
    with torch.no_grad():
        a, b = model.eval()(clips).float(), onnx_model(clips).float()
    return float((a - b).abs().max()), float((a.softmax(-1) - b.softmax(-1)).abs().max())


class OnnxModel(nn.Module):
    """An ONNX Runtime session behind the nn.Module interface: float clips (B, T, C, H, W) -> logits (B, K)."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for unreadable files
            raise ExportError(f"{path}: not a usable ONNX model ({' '.join(str(exc).split())[:200]})") from None
        self.path = Path(path)

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        (logits,) = self.session.run(["logits"], {"clips": clips.detach().cpu().numpy()})
        return torch.from_numpy(logits)

    def spec(self) -> InferenceSpec:
        """The spec stored at export time."""
        meta = self.session.get_modelmeta().custom_metadata_map
        if SPEC_KEY not in meta:
            raise ExportError(f"{self.path}: not exported by emovid (no {SPEC_KEY} metadata); pass --checkpoint")
        return InferenceSpec.from_dict(json.loads(meta[SPEC_KEY]))


@dataclass(frozen=True)
class CheckedExport:
    """An exported file and how far ONNX Runtime's outputs are from PyTorch's on random clips."""

    path: Path
    spec: InferenceSpec
    exporter: str  # "dynamo" or "torchscript"
    opset: int
    logit_difference: float
    probability_difference: float

    @property
    def agrees(self) -> bool:
        """Whether the two runtimes give the same probabilities (within 1e-4)."""
        return self.probability_difference <= 1e-4


def export_checkpoint(checkpoint: str | Path, out: str | Path | None = None, opset: int = OPSET) -> CheckedExport:
    """Export a checkpoint to ONNX (default ``CKPT.onnx``) and compare ONNX Runtime with PyTorch on 3 random clips.

    Raises:
        OutputError: ``out`` is not an ``.onnx`` name, or is the checkpoint; raised before anything is read.
        CheckpointError: the checkpoint cannot be read.
        ExportError: the model cannot be exported or the file cannot be run.
        ImportError: the ``export`` extra is not installed.
    """
    out = Path(out) if out else Path(checkpoint).with_suffix(".onnx")
    check_outputs([Output("--onnx", out, "onnx")], [checkpoint])
    model, spec = load_checkpoint(checkpoint)
    exporter = export_onnx(model, spec, out, opset=opset)
    size = spec.resize["size"]
    clips = torch.randn(3, spec.frames, 3, size, size, generator=torch.Generator().manual_seed(0))
    logits, probs = max_difference(model, OnnxModel(out), clips)
    return CheckedExport(out, spec, exporter, opset, logits, probs)
