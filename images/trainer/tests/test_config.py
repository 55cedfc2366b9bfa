"""Configuration: arguments over environment, the hyperparameter forms, and rejected values."""

from __future__ import annotations

import pytest

from slipway_trainer.config import parse_config
from slipway_trainer.models import HyperparameterError, resolve_hyperparameters

REQUIRED = ["--dataset-uri", "/data/digits/v1", "--output-uri", "/out"]


def test_arguments_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_EPOCHS", "3")
    monkeypatch.setenv("SLIPWAY_OPTIMIZER", "sgd")
    monkeypatch.setenv("SLIPWAY_HYPERPARAMETERS", '{"hidden": [8], "dropout": 0.1}')
    cfg, fingerprint_only = parse_config([*REQUIRED, "--epochs", "5", "--lr=0.05"])
    assert (cfg.epochs, cfg.optimizer, cfg.learning_rate) == (5, "sgd", 0.05)
    assert cfg.hyperparameters == {"activation": "relu", "dropout": 0.1, "hidden": [8]}
    assert cfg.checkpoint_uri == "/out/checkpoints"
    assert not fingerprint_only


def test_hyperparameter_forms_merge_in_order() -> None:
    cfg, _ = parse_config(
        [
            *REQUIRED,
            "--hyperparameters",
            '{"hidden": [8]}',
            "--hparam",
            "hidden=16,8",
            "--dropout",
            "0.2",
        ]
    )
    assert cfg.hyperparameters["hidden"] == [16, 8]
    assert cfg.hyperparameters["dropout"] == 0.2


def test_bad_values_are_rejected_with_reasons() -> None:
    with pytest.raises(HyperparameterError, match=r"'kernel_size' of model 'cnn' must be int"):
        resolve_hyperparameters("cnn", {"kernel_size": "wide"})
    with pytest.raises(HyperparameterError, match=r"unknown model type 'rnn'; valid: cnn, mlp"):
        parse_config([*REQUIRED, "--model-type", "rnn"])
    with pytest.raises(ValueError, match=r"unknown optimizer 'lbfgs'; valid: adam, adamw, sgd"):
        parse_config([*REQUIRED, "--optimizer", "lbfgs"])
    with pytest.raises(HyperparameterError, match=r"unknown hyperparameter 'epoch'"):
        parse_config([*REQUIRED, "--epoch=3"])  # no prefix matching of option names
