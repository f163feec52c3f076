from emovid.demo import DEMO_EPOCHS, run_demo
from emovid.synthetic import SynthConfig


def test_demo_trains_each_model_for_its_epochs_and_writes_the_table(tmp_path):
    synth = SynthConfig(actors=(1, 2, 21, 23), width=96, height=64, seconds=0.5, modalities=(2,),
                        repetitions=(1,), limit=8)
    logs: list[str] = []
    table = run_demo(tmp_path, models=("early-fusion-cnn", "r3d18"), workers=1, progress=False,
                     log=logs.append, synth=synth)
    runs = {name: tmp_path / "runs" / f"{name}-t6-noaug-intelligent-study-s0" for name in ("early-fusion-cnn", "r3d18")}
    for name, run in runs.items():
        assert (run / "test" / "metrics.json").exists() and (run / "test" / "confusion_matrix.png").exists()
        assert f"| {name} ({DEMO_EPOCHS[name]} epoch" in table
    assert table == (tmp_path / "results.md").read_text()
    assert logs[0].startswith("1/3") and "[2/2] r3d18" in logs[-1]
