"""TBH networks: layer shapes, options, forward wiring, parameter groups."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from hashing.tbh.graph import code_adjacency, normalize_adjacency
from hashing.tbh.networks import Decoder, Discriminator, TwinBottleneck


def _linear_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in module.modules() if isinstance(m, nn.Linear)]


def _small_model(**kwargs: object) -> TwinBottleneck:
    defaults: dict[str, object] = {
        "in_features": 20,
        "bits": 8,
        "continuous_features": 6,
        "hidden_features": 16,
    }
    defaults.update(kwargs)
    return TwinBottleneck(**defaults)  # type: ignore[arg-type]


def test_discriminator_depths_have_the_documented_layers() -> None:
    code = Discriminator(12, depth="code")
    paper = Discriminator(12, depth="paper")
    assert _linear_shapes(code) == [(12, 1)]
    assert _linear_shapes(paper) == [(12, 1024), (1024, 1)]
    assert any(isinstance(m, nn.ReLU) for m in paper.modules())
    x = torch.randn(5, 12)
    assert code(x).shape == (5,) and paper(x).shape == (5,)
    narrow = Discriminator(12, depth="paper", hidden_features=7)
    assert _linear_shapes(narrow) == [(12, 7), (7, 1)]


def test_model_discriminators_follow_the_depth_option() -> None:
    model = _small_model(discriminator_depth="paper", discriminator_hidden_features=9)
    assert _linear_shapes(model.code_discriminator) == [(8, 9), (9, 1)]
    assert _linear_shapes(model.continuous_discriminator) == [(6, 9), (9, 1)]
    model = _small_model()
    assert _linear_shapes(model.code_discriminator) == [(8, 1)]
    assert _linear_shapes(model.continuous_discriminator) == [(6, 1)]


def test_decoder_output_activation_options() -> None:
    torch.manual_seed(0)
    relu = Decoder(4, 30, hidden_features=8, output_activation="relu")
    identity = Decoder(4, 30, hidden_features=8, output_activation="identity")
    identity.load_state_dict(relu.state_dict())
    z = torch.rand(50, 4)
    raw = identity(z)
    by_hand = relu.fc_out(torch.clamp(relu.fc_hidden(z), min=0))
    torch.testing.assert_close(raw, by_hand)
    assert (raw < 0).any()  # identity keeps negative outputs...
    torch.testing.assert_close(relu(z), raw.clamp(min=0))  # ...relu clips them
    assert _linear_shapes(relu) == [(4, 8), (8, 30)]


def test_twin_bottleneck_layer_sizes_and_forward_shapes() -> None:
    model = TwinBottleneck(in_features=40, bits=16, num_classes=5)
    assert _linear_shapes(model.encoder) == [(40, 1024)]
    assert _linear_shapes(model.binary_bottleneck) == [(1024, 16)]
    assert _linear_shapes(model.continuous_bottleneck) == [(1024, 512)]
    assert _linear_shapes(model.graph_convolution) == [(512, 512)]
    assert _linear_shapes(model.decoder) == [(512, 1024), (1024, 40)]
    assert model.classifier is not None and _linear_shapes(model.classifier) == [(16, 5)]
    out = model(torch.rand(7, 40))
    assert out.b.shape == out.p.shape == out.logits.shape == (7, 16)
    assert out.z.shape == out.z_graph.shape == (7, 512)
    assert out.x_hat.shape == (7, 40)
    assert out.class_logits is not None and out.class_logits.shape == (7, 5)
    assert set(out.b.unique().tolist()) <= {0.0, 1.0}
    assert _small_model()(torch.rand(3, 20)).class_logits is None


def test_forward_is_wired_as_specified() -> None:
    """Recompute every stage by hand from the model's own layers."""
    torch.manual_seed(1)
    model = _small_model(num_classes=3, gamma=1.0)
    x = torch.rand(9, 20)
    out = model(x)
    hidden = torch.clamp(x @ model.encoder.fc.weight.T + model.encoder.fc.bias, min=0)
    logits = hidden @ model.binary_bottleneck.fc.weight.T + model.binary_bottleneck.fc.bias
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.b, (logits > 0).float())
    fc = model.continuous_bottleneck.fc
    torch.testing.assert_close(out.z, torch.sigmoid(hidden @ fc.weight.T + fc.bias))
    gcn = model.graph_convolution.linear
    propagated = normalize_adjacency(code_adjacency(out.b, 1.0)) @ (out.z @ gcn.weight.T + gcn.bias)
    torch.testing.assert_close(out.z_graph, torch.sigmoid(propagated))
    torch.testing.assert_close(out.x_hat, model.decoder(out.z_graph))
    assert model.classifier is not None
    torch.testing.assert_close(out.class_logits, model.classifier(out.b))


def test_encode_gives_pm1_codes_of_the_fixed_threshold_even_when_stochastic() -> None:
    torch.manual_seed(2)
    model = _small_model(stochastic_threshold=True)
    x = torch.rand(64, 20)
    codes = model.encode(x)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}
    model.eval()
    torch.testing.assert_close(codes, 2 * model(x).b - 1)
    model.train()
    stochastic_b = model(x).b  # U(0,1) thresholds in training: differs from the 0.5 threshold
    assert not torch.equal(stochastic_b, (codes + 1) / 2)
    deterministic = _small_model()
    deterministic.load_state_dict(model.state_dict())
    torch.testing.assert_close(deterministic(x).b, deterministic.encode(x).add(1).div(2))


def test_all_linear_layers_are_glorot_uniform_with_zero_bias() -> None:
    torch.manual_seed(3)
    model = TwinBottleneck(in_features=300, bits=64, num_classes=10, discriminator_depth="paper")
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            bound = math.sqrt(6.0 / (module.in_features + module.out_features))
            largest = module.weight.abs().max().item()
            assert largest <= bound, name
            if module.weight.numel() >= 1000:
                assert largest > 0.9 * bound, name  # spans the Glorot range, not PyTorch's default
                assert abs(module.weight.var().item() - bound**2 / 3) < 0.1 * bound**2 / 3, name
            assert torch.all(module.bias == 0), name


def test_actor_and_critic_parameters_partition_the_model() -> None:
    for num_classes in (None, 4):
        model = _small_model(num_classes=num_classes, discriminator_depth="paper")
        actor = {id(p) for p in model.actor_parameters()}
        critic = {id(p) for p in model.critic_parameters()}
        assert actor.isdisjoint(critic)
        assert actor | critic == {id(p) for p in model.parameters()}
        assert critic == {
            id(p)
            for m in (model.code_discriminator, model.continuous_discriminator)
            for p in m.parameters()
        }
        if model.classifier is not None:
            assert {id(p) for p in model.classifier.parameters()} <= actor


def test_classifier_does_not_change_the_other_initial_weights() -> None:
    torch.manual_seed(4)
    plain = _small_model()
    torch.manual_seed(4)
    supervised = _small_model(num_classes=3)
    for name, value in plain.state_dict().items():
        torch.testing.assert_close(supervised.state_dict()[name], value, rtol=0, atol=0)


def test_bad_configuration_and_input_are_rejected() -> None:
    with pytest.raises(ValueError, match="depth must be one of"):
        Discriminator(4, depth="deep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output_activation must be one of"):
        Decoder(4, 4, output_activation="tanh")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive integers"):
        _small_model(bits=0)
    with pytest.raises(ValueError, match="gamma must be > 0"):
        _small_model(gamma=-1.0)
    with pytest.raises(ValueError, match=r"shape \(B, 20\)"):
        _small_model()(torch.rand(3, 21))
