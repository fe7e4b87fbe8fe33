"""Checkpoints: safetensors + JSON round trip, no pickle, clear errors."""

import json

import numpy as np
import pytest
import torch

from metatoken.errors import UserError
from metatoken.models.checkpoint import load_policy
from metatoken.models.conditions import fit_condition
from metatoken.models.policy import PredictorPolicy
from metatoken.models.train import build_predictor


@pytest.mark.parametrize("model", ["transformer", "mlp"])
def test_round_trip_same_actions(tmp_path, continuous_data, model):
    cond = fit_condition("rtg", continuous_data)
    opts = {"d_model": 16, "n_layers": 1, "context": 4} if model == "transformer" else {"hidden": 16}
    net = build_predictor(continuous_data, cond, model, seed=0, **opts)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    PredictorPolicy(net, cond).save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["condition"]["kind"] == "rtg"
    loaded = load_policy(tmp_path)
    for name, t in net.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], t), name
    obs = np.random.default_rng(0).normal(size=(6, 2, 3))
    acts = []
    for pol in (PredictorPolicy(net, cond), loaded):
        pol.reset(2, target=np.array([1.0, 2.0]), seed=5)
        acts.append(np.stack([pol.act(o) for o in obs]))
    assert np.array_equal(acts[0], acts[1]) and loaded.conditioned


def test_corrupt_checkpoint_is_a_user_error(tmp_path, continuous_data):
    cond = fit_condition("none", continuous_data)
    PredictorPolicy(build_predictor(continuous_data, cond, "mlp", hidden=8), cond).save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="cannot load checkpoint"):
        load_policy(tmp_path)
