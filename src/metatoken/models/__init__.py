"""Condition-token predictors: a KV-cached transformer with hook points, an MLP predictor,
condition kinds, training, batched rollout policy and safetensors checkpoints."""

from metatoken.models.checkpoint import load_model, load_policy, save
from metatoken.models.conditions import CONDITIONS, Condition, condition_from_json, fit_condition
from metatoken.models.hooks import HookPoint, hooks, run_with_cache
from metatoken.models.mlp import MLPConfig, MLPPredictor
from metatoken.models.policy import PredictorPolicy
from metatoken.models.transformer import DecisionTransformer, TransformerConfig

__all__ = [
    "CONDITIONS", "Condition", "DecisionTransformer", "HookPoint", "MLPConfig", "MLPPredictor",
    "PredictorPolicy", "TransformerConfig", "condition_from_json", "fit_condition", "hooks",
    "load_model", "load_policy", "run_with_cache", "save",
]
