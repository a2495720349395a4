"""Every registered baseline: forward + backward on its own input size, and parameter counts its paper states."""

import pytest
import torch

from hsiclip.efficiency import count_parameters
from hsiclip.errors import ConfigError
from hsiclip.models.baselines import BASELINES, get_baseline


@pytest.mark.parametrize("name", BASELINES.names())
def test_forward_backward_on_its_own_input(name):
    spec = get_baseline(name)
    bands = spec.pca_for("indian_pines")
    model = spec.build(bands, 16, spec.window)
    x = torch.randn(2, spec.window, spec.window, bands, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 16)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert spec.citation and spec.source


def test_hybridsn_matches_the_papers_parameter_count():
    spec = get_baseline("hybridsn")
    model = spec.build(spec.pca_for("indian_pines"), 16, spec.window)
    assert count_parameters(model) == 5_122_176  # the authors' Keras summary on Indian Pines
    assert spec.pca_for("pavia_university") == 15


def test_unknown_baseline():
    with pytest.raises(ConfigError, match="hybridsn"):
        get_baseline("resnet-9000")
