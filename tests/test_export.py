"""ONNX export: every registered model exports with a dynamic batch and ONNX Runtime agrees with PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest
import torch
from torch import nn

from emovid.checkpoint import InferenceSpec
from emovid.cli import main
from emovid.export import ExportError, OnnxModel, export_onnx, max_difference
from emovid.models import create_model, list_models, model_options
from videos import make_video

FRAMES, SIZE = 4, 32
TOLERANCE = 1e-4


def tiny_model(name: str) -> tuple[nn.Module, InferenceSpec]:
    """A registered model with random weights at 4 frames of 32x32, and a spec to match."""
    torch.manual_seed(0)
    options = {"num_frames": FRAMES} if "num_frames" in model_options(name) else {}
    model = create_model(name, **options).eval()
    spec = InferenceSpec(
        model_args=dict(model.emovid_args),
        class_names=("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
        frames=FRAMES,
        resize={"mode": "intelligent", "size": SIZE, "short_side": 36},
        crop="center",
        mean=tuple(model.input_spec.mean),
        std=tuple(model.input_spec.std),
        clip_seconds=1.0,
    )
    return model, spec


def write_checkpoint(path: Path, model: nn.Module, spec: InferenceSpec) -> Path:
    """A file in the layout training writes: the spec under ``emovid``, the weights under ``model.``."""
    torch.save({"emovid": spec.to_dict(), "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}},
               path)
    return path


@pytest.mark.parametrize("name", list_models())
def test_onnx_runtime_agrees_with_pytorch(name, tmp_path):
    model, spec = tiny_model(name)
    assert export_onnx(model, spec, tmp_path / "m.onnx") == "dynamo"
    runner = OnnxModel(tmp_path / "m.onnx")
    assert runner.spec() == spec
    for batch in (1, 3):  # exported with a batch of 2: the batch axis must be dynamic
        clips = torch.randn(batch, FRAMES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(batch))
        logits, probabilities = max_difference(model, runner, clips)
        assert logits < TOLERANCE and probabilities < TOLERANCE, (name, batch, logits, probabilities)


def test_torchscript_exporter_is_the_fallback(tmp_path, monkeypatch):
    import emovid.export

    original = emovid.export._export

    def no_dynamo(model, example, path, opset, dynamo, spec_json):
        if dynamo:
            raise ModuleNotFoundError("No module named 'onnxscript'")
        original(model, example, path, opset, dynamo, spec_json)

    monkeypatch.setattr(emovid.export, "_export", no_dynamo)
    model, spec = tiny_model("early-fusion-cnn")
    assert export_onnx(model, spec, tmp_path / "m.onnx") == "torchscript"
    runner = OnnxModel(tmp_path / "m.onnx")
    assert runner.spec() == spec
    assert max(max_difference(model, runner, torch.randn(3, FRAMES, 3, SIZE, SIZE))) < TOLERANCE

    def neither(model, example, path, opset, dynamo, spec_json):
        raise ModuleNotFoundError("No module named 'onnxscript'") if dynamo else RuntimeError("unsupported\noperator")

    monkeypatch.setattr(emovid.export, "_export", neither)
    with pytest.raises(ExportError) as info:
        export_onnx(model, spec, tmp_path / "n.onnx")
    assert str(info.value) == ("early-fusion-cnn: ONNX export failed (dynamo: ModuleNotFoundError: No module named "
                               "'onnxscript'; torchscript: RuntimeError: unsupported operator)")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("export")
    checkpoint = write_checkpoint(folder / "tiny.ckpt", *tiny_model("early-fusion-cnn"))
    assert main(["export", str(checkpoint), "--onnx", str(folder / "tiny.onnx")]) == 0
    return checkpoint, folder / "tiny.onnx"


def test_export_cli_checks_its_output(exported, capsys):
    main(["export", str(exported[0]), "--onnx", str(exported[1])])
    out = capsys.readouterr().out
    assert "dynamo exporter" in out and "max |probability diff|" in out
    graph = onnx.load(str(exported[1]))
    assert graph.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch
    assert json.loads({p.key: p.value for p in graph.metadata_props}["emovid_spec"])["frames"] == FRAMES


def test_predict_with_onnxruntime_matches_torch(exported, tmp_path, capsys):
    checkpoint, onnx_file = exported
    videos = [str(make_video(tmp_path / f"v{i}.mp4", num_frames=12 + 5 * i, width=96, height=64)) for i in range(3)]
    runs = {}
    for backend in (["--checkpoint", str(checkpoint)], ["--onnx", str(onnx_file)],
                    ["--backend", "onnxruntime", "--checkpoint", str(checkpoint)]):
        assert main(["predict", *videos, *backend, "--json", "-"]) == 0
        runs[tuple(backend)] = json.loads(capsys.readouterr().out)
    assert checkpoint.with_suffix(".onnx").exists()  # exported beside the checkpoint on first use
    torch_run, *onnx_runs = runs.values()
    for run in onnx_runs:
        for a, b in zip(torch_run, run, strict=True):
            assert max(abs(a["probabilities"][c] - b["probabilities"][c]) for c in a["probabilities"]) < TOLERANCE


def test_unusable_onnx_files_are_one_line(exported, tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_text("not onnx")
    with pytest.raises(ExportError, match="not a usable ONNX model"):
        OnnxModel(junk)
    graph = onnx.load(str(exported[1]))
    del graph.metadata_props[:]
    onnx.save(graph, str(tmp_path / "bare.onnx"))
    with pytest.raises(ExportError, match="not exported by emovid"):
        OnnxModel(tmp_path / "bare.onnx").spec()
    video = str(make_video(tmp_path / "v.mp4", num_frames=8, width=64, height=48))
    for path in (junk, tmp_path / "missing.onnx"):
        assert main(["predict", video, "--onnx", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and str(path) in err
    assert main(["export", str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint" in capsys.readouterr().err
