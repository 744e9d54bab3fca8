"""Fixtures of the engines' own tests: the synthetic script, trained and served."""

from __future__ import annotations

from tests.engines import synthetic
from tests.engines.fixtures import scripted_model_fixture, scripted_vllm_fixture, tiny_vlm

__all__ = ["synthetic_model", "synthetic_vllm", "tiny_vlm"]


def train_examples():
    return synthetic.examples(12, seed=0)


def held_out_examples():
    return synthetic.examples(3, seed=1)


synthetic_model = scripted_model_fixture(
    train_examples, name="synthetic_model", make_held_out=held_out_examples
)
synthetic_vllm = scripted_vllm_fixture(
    train_examples, name="synthetic_vllm", make_held_out=held_out_examples
)
