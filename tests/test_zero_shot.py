"""The zero-shot ensemble: members' windows, class orders, averaging, flips and pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emovid.faces.geometry import FaceGeometry
from emovid.zero_shot import (
    DEFAULT_POOLING,
    FER_ORDER,
    ZERO_SHOT_CLASSES,
    ZeroShotEnsemble,
    combine_members,
    shared_geometry,
)


class Fixed(nn.Module):
    """A member that answers the same probabilities for every face, and records the faces it was given."""

    def __init__(self, classes, probs, geometry, input_size=8):
        super().__init__()
        self.classes, self.geometry, self.input_size = classes, geometry, input_size
        self.probs = torch.tensor(probs)
        self.seen: list[torch.Tensor] = []

    def forward(self, faces):
        self.seen.append(faces)
        return self.probs.expand(faces.shape[0], -1)


def test_members_are_averaged_in_one_class_order():
    a = Fixed(FER_ORDER, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], FaceGeometry(scale=1.0))  # happy
    reordered = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")  # face-api's order
    b = Fixed(reordered, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], FaceGeometry(scale=1.2))  # surprise
    model = ZeroShotEnsemble([a, b], shared_geometry([a.geometry, b.geometry]), pooling="mean")
    probs = model(torch.rand(2, 3, 3, 24, 24)).softmax(-1)
    expected = torch.zeros(7)
    expected[FER_ORDER.index("happy")] = expected[FER_ORDER.index("surprise")] = 0.5
    assert torch.allclose(probs, expected.expand(2, -1), atol=1e-6)
    assert ZERO_SHOT_CLASSES[FER_ORDER.index("surprise")] == "surprised"


def test_each_member_sees_its_own_window_at_its_size():
    inner = Fixed(FER_ORDER, [1 / 7] * 7, FaceGeometry(scale=1.0), input_size=6)
    outer = Fixed(FER_ORDER, [1 / 7] * 7, FaceGeometry(scale=2.0), input_size=10)
    model = ZeroShotEnsemble([inner, outer], shared_geometry([inner.geometry, outer.geometry]), flip=[False, False])
    clip = torch.zeros(1, 2, 3, 20, 20)
    clip[..., 5:15, 5:15] = 1.0  # the inner half is white: the inner member sees only white
    model(clip)
    assert inner.seen[0].shape == (2, 3, 6, 6) and torch.allclose(inner.seen[0], torch.ones(1))
    assert outer.seen[0].shape == (2, 3, 10, 10) and 0.2 < outer.seen[0].mean() < 0.3


def test_every_member_sees_every_frame_and_flip_is_per_member():
    mirrored = Fixed(FER_ORDER, [1 / 7] * 7, FaceGeometry(scale=1.0))
    plain = Fixed(FER_ORDER, [1 / 7] * 7, FaceGeometry(scale=1.0))
    model = ZeroShotEnsemble([mirrored, plain], mirrored.geometry, flip=[True, False])
    model(torch.rand(3, 8, 3, 16, 16))
    (both,) = mirrored.seen  # 3 clips x 8 frames, and their mirror images, in one call
    assert len(both) == 48
    torch.testing.assert_close(both[24:], both[:24].flip(-1), atol=0, rtol=0)
    assert [len(f) for f in plain.seen] == [24]  # every frame, not mirrored


def test_the_default_is_the_plain_mean_over_frames_and_members():
    """Two frames and two members with known answers: the default is the unweighted mean of all four."""
    a = torch.tensor([[0.7, 0.1, 0.1, 0.1, 0, 0, 0], [0.1, 0.7, 0.1, 0.1, 0, 0, 0]])  # member a, frame by frame
    b = torch.tensor([[0.1, 0.1, 0.1, 0.7, 0, 0, 0], [0.1, 0.1, 0.7, 0.1, 0, 0, 0]])

    class PerFrame(Fixed):
        def forward(self, faces):
            return self.probs.repeat(faces.shape[0] // 2, 1)

    members = [PerFrame(FER_ORDER, a.tolist(), FaceGeometry(scale=1.0)),
               PerFrame(FER_ORDER, b.tolist(), FaceGeometry(scale=1.0))]
    clip = torch.rand(1, 2, 3, 8, 8)
    plain = ZeroShotEnsemble(members, members[0].geometry, flip=[False, False])
    assert plain.pooling == DEFAULT_POOLING == "mean"
    torch.testing.assert_close(plain(clip).softmax(-1)[0], torch.cat([a, b]).mean(0), atol=1e-6, rtol=0)
    weighted = ZeroShotEnsemble(members, members[0].geometry, flip=[False, False], weights=[3, 1])
    torch.testing.assert_close(weighted(clip).softmax(-1)[0], 0.75 * a.mean(0) + 0.25 * b.mean(0), atol=1e-6, rtol=0)
    geometric = ZeroShotEnsemble(members, members[0].geometry, flip=[False, False], pooling="log-mean")
    logs = torch.cat([a, b]).clamp_min(1e-12).log()
    torch.testing.assert_close(geometric(clip).softmax(-1)[0], logs.mean(0).softmax(-1), atol=1e-6, rtol=0)


def test_log_mean_lets_one_confident_member_veto_where_the_mean_does_not():
    """The reason the default is the mean: one member's near-zero on a class decides the geometric mean."""
    sure = torch.tensor([0.9, 0.1, 0, 0, 0, 0, 0]).clamp_min(1e-6)
    wrong = torch.tensor([1e-6, 0.5, 0.5, 0, 0, 0, 0]).clamp_min(1e-6)
    also = torch.tensor([0.9, 0.1, 0, 0, 0, 0, 0]).clamp_min(1e-6)
    members = torch.stack([sure, wrong, also])[:, None]  # (M, B, K)
    shares = torch.full((3,), 1 / 3)
    assert int(combine_members(members, shares, "mean").argmax()) == 0
    assert int(combine_members(members, shares, "log-mean").argmax()) == 1


def test_probabilities_sum_to_one_and_repeat_exactly():
    torch.manual_seed(0)

    class Random(Fixed):
        def forward(self, faces):
            return faces.mean(dim=(2, 3)) @ torch.rand(3, 7, generator=torch.Generator().manual_seed(1)).softmax(-1)

    member = Random(FER_ORDER, [0] * 7, FaceGeometry(scale=1.0))
    model = ZeroShotEnsemble([member], member.geometry)
    clip = torch.rand(3, 4, 3, 16, 16)
    first, second = model(clip).softmax(-1), model(clip).softmax(-1)
    assert torch.equal(first, second) and torch.allclose(first.sum(-1), torch.ones(3))


def test_shared_geometry_holds_every_member():
    members = [FaceGeometry(scale=1.0, shift_y=0.1), FaceGeometry(scale=1.4, aspect=1.2)]
    outer = shared_geometry(members)
    for g in members:
        x0, y0, x1, y1 = g.within(outer)
        assert -1e-9 <= x0 and -1e-9 <= y0 and x1 <= 1 + 1e-9 and y1 <= 1 + 1e-9


def test_a_members_training_prior_is_divided_out():
    prior = [4.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # a member trained on a set where angry was 4x as frequent
    leaning = Fixed(FER_ORDER, [0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1], FaceGeometry(scale=1.0))  # exactly that prior
    other = Fixed(FER_ORDER, [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], FaceGeometry(scale=1.0))  # happy, no prior known
    model = ZeroShotEnsemble([leaning, other], leaning.geometry, priors=[prior, None], pooling="mean")
    probs = model(torch.rand(2, 3, 3, 16, 16)).softmax(-1)
    expected = torch.full((7,), 0.5 / 7)  # the leaning member's answer becomes uniform: it saw nothing in the face
    expected[FER_ORDER.index("happy")] += 0.5
    assert torch.allclose(probs, expected.expand(2, -1), atol=1e-6)
    assert torch.allclose(probs.sum(-1), torch.ones(2))


def test_balanced_zero_shot_divides_fer2013s_published_prior_only():
    from emovid.zero_shot import BALANCED, ENSEMBLE, FER2013_COUNTS, ZERO_SHOT_MODELS, encoders

    assert ZERO_SHOT_MODELS[BALANCED] == ZERO_SHOT_MODELS[ENSEMBLE]
    assert sum(FER2013_COUNTS) == 35887 and FER2013_COUNTS[FER_ORDER.index("disgust")] == 547
    known = {name: e.train_counts for name, e in encoders().items()}
    assert known == {"fer2013": FER2013_COUNTS, "faceapi": None, "facex": None, "rafdb": None}


def test_a_lone_template_member_gets_its_exact_warp():
    from emovid.models.rafdb import RAFDB_GEOMETRY

    assert shared_geometry([RAFDB_GEOMETRY]) == RAFDB_GEOMETRY  # the crop is the landmark fit itself
    assert RAFDB_GEOMETRY.within(shared_geometry([RAFDB_GEOMETRY])) == (0.0, 0.0, 1.0, 1.0)
    mixed = shared_geometry([RAFDB_GEOMETRY, FaceGeometry(scale=1.2, shift_y=0.1, align=True)])  # reaches lower
    assert mixed.template is None  # a crop of the face box, the template member's window its box equivalent
    x0, y0, x1, y1 = RAFDB_GEOMETRY.within(mixed)
    assert 0 < x0 < x1 < 1 and abs(y0) < 1e-9 and y1 < 1


def test_rafdb_zero_shot_names_its_missing_file():
    import pytest

    from emovid.weights import WeightsUnavailableError
    from emovid.weights.files import RAFDB_WEIGHTS
    from emovid.zero_shot import ZERO_SHOT_MODELS, zero_shot_predictor

    assert ZERO_SHOT_MODELS["rafdb-zero-shot"] == ("rafdb",)
    with pytest.raises(WeightsUnavailableError, match=RAFDB_WEIGHTS.name):  # the tests' weights folder is empty
        zero_shot_predictor("rafdb-zero-shot")


@pytest.mark.parametrize("pooling,kind", [("mean", "probabilities"), ("log-mean", "logits")])
def test_frame_scores_pool_to_the_clip_answer(pooling, kind):
    class Looking(Fixed):
        """Answers from the colours of the face's left half, so frames and their mirror images differ."""

        def forward(self, faces):
            left = faces[..., : faces.shape[-1] // 2].mean(dim=(2, 3))  # (N, 3)
            return (left @ torch.rand(3, 7, generator=torch.Generator().manual_seed(len(self.classes)))).softmax(-1)

    a = Looking(FER_ORDER, [0] * 7, FaceGeometry(scale=1.0))
    b = Looking(("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"), [0] * 7, FaceGeometry(scale=1.2))
    geometry = shared_geometry([a.geometry, b.geometry])
    model = ZeroShotEnsemble([a, b], geometry, weights=[2, 1], flip=[True, False], priors=[[2] + [1] * 6, None],
                             pooling=pooling)
    clip = torch.rand(1, 5, 3, 24, 24)
    assert model.frame_pooling == kind
    scores = model.frame_scores(clip[0])  # (5, 7)
    pooled = scores.mean(dim=0) if kind == "probabilities" else scores.mean(dim=0).softmax(-1)
    assert scores.shape == (5, 7) and torch.allclose(pooled, model(clip).softmax(-1)[0], atol=1e-6)
    expressive = ZeroShotEnsemble([a, b], geometry, pooling="expressive")
    assert expressive.frame_pooling is None
    with pytest.raises(ValueError, match="does not pool per-frame"):
        expressive.frame_scores(clip[0])
