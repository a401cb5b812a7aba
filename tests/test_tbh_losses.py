"""TBH losses, priors and class weights against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from hashing.tbh.losses import (
    actor_loss,
    classification_loss,
    critic_loss,
    positive_class_weights,
    reconstruction_loss,
    sample_binary_prior,
    sample_uniform_prior,
    tbh_losses,
)
from hashing.tbh.networks import TwinBottleneck


def _small_model(**kwargs: object) -> TwinBottleneck:
    defaults: dict[str, object] = {
        "in_features": 20,
        "bits": 8,
        "continuous_features": 6,
        "hidden_features": 16,
    }
    defaults.update(kwargs)
    return TwinBottleneck(**defaults)  # type: ignore[arg-type]


def _log_sigmoid(value: float) -> float:
    return -math.log1p(math.exp(-value))


def test_reconstruction_sum_and_per_sample_mean() -> None:
    gen = torch.Generator().manual_seed(0)
    x_hat = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    x = torch.randn(5, 7, generator=gen, dtype=torch.float64)
    total = 0.0
    for i in range(5):
        for d in range(7):
            total += 0.5 * (x_hat[i, d].item() - x[i, d].item()) ** 2
    assert reconstruction_loss(x_hat, x).item() == pytest.approx(total, rel=1e-12)
    assert reconstruction_loss(x_hat, x, "mean").item() == pytest.approx(total / 5, rel=1e-12)
    with pytest.raises(ValueError, match="reduction must be one of"):
        reconstruction_loss(x_hat, x, "none")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"one \(B, \.\.\.\) shape"):
        reconstruction_loss(x_hat, x[:, :6])


def test_critic_loss_is_two_batch_mean_bces() -> None:
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(6, generator=gen, dtype=torch.float64) * 3
    fake = torch.randn(4, generator=gen, dtype=torch.float64) * 3
    expected = -sum(_log_sigmoid(v) for v in real.tolist()) / 6
    expected += -sum(_log_sigmoid(-v) for v in fake.tolist()) / 4  # log(1 - sigmoid(v))
    assert critic_loss(real, fake).item() == pytest.approx(expected, rel=1e-10)


def _keras_bce_pair(real: list[float], fake: list[float], clip: float) -> float:
    """Keras' binary_crossentropy on sigmoid outputs (clip to [c, 1 - c], log(p + c)), by hand."""

    def prob(logit: float) -> float:
        return min(max(1.0 / (1.0 + math.exp(-logit)), clip), 1.0 - clip)

    real_part = -sum(math.log(prob(v) + clip) for v in real) / len(real)
    return real_part - sum(math.log(1.0 - prob(v) + clip) for v in fake) / len(fake)


def test_clipped_critic_loss_is_the_released_keras_bce() -> None:
    real = torch.tensor([-25.0, -3.0, 0.0, 2.5, 17.0], dtype=torch.float64, requires_grad=True)
    fake = torch.tensor([-17.0, -1.0, 4.0, 16.5, 30.0], dtype=torch.float64, requires_grad=True)
    loss = critic_loss(real, fake, probability_clip=1e-7)
    expected = _keras_bce_pair(real.tolist(), fake.tolist(), 1e-7)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert real.grad is not None and fake.grad is not None
    # beyond the clip (|logit| > 16.12 for 1e-7) the loss is flat in that logit
    saturated = torch.tensor([True, False, False, False, True])
    assert (real.grad[saturated] == 0).all() and (real.grad[~saturated] != 0).all()
    assert (fake.grad[[0, 3, 4]] == 0).all() and (fake.grad[[1, 2]] != 0).all()
    # inside it, the same gradient as BCE with logits up to the 1e-7 in the log
    plain_real = real.detach().clone().requires_grad_(True)
    plain_fake = fake.detach().clone().requires_grad_(True)
    critic_loss(plain_real, plain_fake).backward()
    assert plain_real.grad is not None and plain_fake.grad is not None
    torch.testing.assert_close(real.grad[1:4], plain_real.grad[1:4], rtol=1e-5, atol=0)
    torch.testing.assert_close(fake.grad[1:3], plain_fake.grad[1:3], rtol=1e-5, atol=0)
    # the unclipped loss keeps growing where the clipped one stops: the saturated samples
    assert critic_loss(real, fake).item() > loss.item() + 4
    for bad in (0.0, 0.5, -1e-7):
        with pytest.raises(ValueError, match="probability_clip must lie in"):
            critic_loss(real, fake, probability_clip=bad)


def test_actor_loss_combines_terms_and_ignores_classification_at_zero_weight() -> None:
    recon, c1, c2, cls = (torch.tensor(v) for v in (10.0, 1.5, 0.25, 2.0))
    assert actor_loss(recon, [c1, c2], cls, 2.0, 0.5).item() == pytest.approx(10 - 3.5 + 1.0)
    assert actor_loss(recon, [c1, c2], None, 1.0, 0.0).item() == pytest.approx(8.25)
    with pytest.raises(ValueError, match="needs a classification loss"):
        actor_loss(recon, [c1, c2], None, 1.0, 1.0)


def test_binary_prior_statistics() -> None:
    gen = torch.Generator().manual_seed(2)
    sample = sample_binary_prior(4000, 64, generator=gen)
    assert sample.shape == (4000, 64) and sample.dtype == torch.float32
    assert set(sample.unique().tolist()) == {0.0, 1.0}
    assert abs(sample.mean().item() - 0.5) < 0.005
    assert abs(sample.var().item() - 0.25) < 0.005
    per_bit = sample.mean(dim=0)  # every bit fair, not just the average
    assert (per_bit - 0.5).abs().max().item() < 0.04
    correlation = torch.corrcoef(sample[:, :8].T) - torch.eye(8)
    assert correlation.abs().max().item() < 0.06


def test_uniform_prior_statistics() -> None:
    gen = torch.Generator().manual_seed(3)
    sample = sample_uniform_prior(2000, 128, generator=gen, dtype=torch.float64)
    assert sample.shape == (2000, 128) and sample.dtype == torch.float64
    assert sample.min().item() >= 0.0 and sample.max().item() < 1.0
    assert abs(sample.mean().item() - 0.5) < 0.003
    assert abs(sample.var().item() - 1.0 / 12.0) < 0.002
    histogram = torch.histc(sample, bins=10, min=0.0, max=1.0) / sample.numel()
    assert (histogram - 0.1).abs().max().item() < 0.005


def test_positive_class_weights_from_known_labels() -> None:
    labels = torch.tensor(
        [[1, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1], [0, 0, 1, 1]], dtype=torch.float32
    )
    weights = positive_class_weights(labels)
    for c in range(4):
        pos = sum(int(labels[i, c]) for i in range(5))
        assert weights[c].item() == pytest.approx((5 - pos) / pos)
    assert weights.tolist() == pytest.approx([1.5, 4.0, 0.25, 0.0])


def test_positive_class_weights_guard_empty_classes() -> None:
    labels = torch.tensor([[1, 0, 0], [1, 0, 1], [0, 0, 1]])
    with pytest.raises(ValueError, match=r"classes \[1\] have no positive"):
        positive_class_weights(labels)
    assert positive_class_weights(labels, on_empty="clamp").tolist() == pytest.approx(
        [0.5, 3.0, 0.5]
    )
    with pytest.raises(ValueError, match="multi-hot"):
        positive_class_weights(torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="entries in"):
        positive_class_weights(torch.tensor([[2, 0], [0, 1]]))


def test_single_label_cross_entropy_by_hand() -> None:
    gen = torch.Generator().manual_seed(4)
    logits = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 1, 0])
    per_sample = []
    for i in range(5):
        norm = math.log(sum(math.exp(v) for v in logits[i].tolist()))
        per_sample.append(norm - logits[i, labels[i]].item())
    assert classification_loss(logits, labels).item() == pytest.approx(sum(per_sample) / 5)
    assert classification_loss(logits, labels, reduction="sum").item() == pytest.approx(
        sum(per_sample)
    )
    with pytest.raises(ValueError, match="multi-label"):
        classification_loss(logits, labels, pos_weight=torch.ones(3))


def test_multi_label_weighted_bce_by_hand() -> None:
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    labels = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]])
    weights = torch.tensor([2.0, 3.0, 0.5], dtype=torch.float64)
    per_sample = []
    for i in range(4):
        total = 0.0
        for c in range(3):
            v, y, w = logits[i, c].item(), labels[i, c].item(), weights[c].item()
            total += -(w * y * _log_sigmoid(v) + (1 - y) * _log_sigmoid(-v))
        per_sample.append(total / 3)
    got = classification_loss(logits, labels, pos_weight=weights)
    assert got.item() == pytest.approx(sum(per_sample) / 4)
    with pytest.raises(ValueError, match="pos_weight must have shape"):
        classification_loss(logits, labels, pos_weight=torch.ones(4))
    with pytest.raises(ValueError, match="must match class_logits"):
        classification_loss(logits, labels[:, :2])


def test_lambda_cls_zero_keeps_the_classifier_out_of_the_graph() -> None:
    torch.manual_seed(6)
    model = _small_model(num_classes=3)
    x, y = torch.rand(10, 20), torch.randint(0, 3, (10,))
    losses = tbh_losses(model, x, model(x), y, lambda_cls=0.0)
    assert losses.classification is None
    losses.actor.backward()
    assert model.classifier is not None
    assert all(p.grad is None for p in model.classifier.parameters())
    assert model.encoder.fc.weight.grad is not None
    assert model.encoder.fc.weight.grad.abs().sum() > 0

    model.zero_grad(set_to_none=True)
    supervised = tbh_losses(model, x, model(x), y, lambda_cls=1.0)
    assert supervised.classification is not None
    supervised.actor.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.classifier.parameters())


def test_lambda_cls_zero_is_exactly_unsupervised_tbh() -> None:
    """Same seed: a classifier-bearing model at lambda_cls = 0 gives the unsupervised loss and
    gradients bit for bit."""
    x, y = torch.rand(10, 20), torch.randint(0, 3, (10,))
    results = []
    for num_classes in (None, 3):
        torch.manual_seed(7)
        model = _small_model(num_classes=num_classes)
        gen = torch.Generator().manual_seed(8)
        losses = tbh_losses(model, x, model(x), y, lambda_cls=0.0, generator=gen)
        losses.actor.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((losses.actor.detach(), grads))
    (plain_loss, plain_grads), (zero_loss, zero_grads) = results
    assert torch.equal(plain_loss, zero_loss)
    assert plain_grads.keys() == zero_grads.keys()
    for name, grad in plain_grads.items():
        assert torch.equal(grad, zero_grads[name]), name


def test_tbh_losses_by_hand_and_two_group_backward() -> None:
    torch.manual_seed(9)
    model = _small_model(
        num_classes=4, discriminator_depth="paper", discriminator_hidden_features=5
    )
    x = torch.rand(12, 20)
    labels = (torch.rand(12, 4) < 0.4).float()
    labels[0] = 1.0  # every class has a positive
    weights = positive_class_weights(labels)
    out = model(x)
    losses = tbh_losses(
        model,
        x,
        out,
        labels,
        lambda_adv=0.5,
        lambda_cls=2.0,
        reduction="mean",
        pos_weight=weights,
        generator=torch.Generator().manual_seed(10),
    )
    gen = torch.Generator().manual_seed(10)  # the same prior draws, in tbh_losses' order
    prior_b = (torch.rand(12, 8, generator=gen) < 0.5).float()
    prior_z = torch.rand(12, 6, generator=gen)
    d_b, d_z = model.code_discriminator, model.continuous_discriminator
    expected_critic_b = critic_loss(d_b(prior_b), d_b(out.b))
    expected_critic_z = critic_loss(d_z(prior_z), d_z(out.z_graph))
    expected_recon = 0.5 * ((out.x_hat - x) ** 2).sum() / 12
    assert out.class_logits is not None
    expected_cls = classification_loss(out.class_logits, labels, weights, "mean")
    torch.testing.assert_close(losses.critic_code, expected_critic_b)
    torch.testing.assert_close(losses.critic_continuous, expected_critic_z)
    torch.testing.assert_close(losses.critic, expected_critic_b + expected_critic_z)
    torch.testing.assert_close(losses.reconstruction, expected_recon)
    torch.testing.assert_close(
        losses.actor,
        expected_recon - 0.5 * (expected_critic_b + expected_critic_z) + 2.0 * expected_cls,
    )

    actor_params, critic_params = model.actor_parameters(), model.critic_parameters()
    want_actor = torch.autograd.grad(losses.actor, actor_params, retain_graph=True)
    want_critic = torch.autograd.grad(losses.critic, critic_params, retain_graph=True)
    losses.actor.backward(inputs=actor_params, retain_graph=True)
    losses.critic.backward(inputs=critic_params)
    for param, want in zip(actor_params, want_actor, strict=True):
        torch.testing.assert_close(param.grad, want)
    for param, want in zip(critic_params, want_critic, strict=True):
        torch.testing.assert_close(param.grad, want)


def test_tbh_losses_reject_missing_supervision() -> None:
    model = _small_model()
    x = torch.rand(4, 20)
    with pytest.raises(ValueError, match="needs a model built with num_classes"):
        tbh_losses(model, x, model(x), torch.zeros(4, dtype=torch.long), lambda_cls=1.0)
    supervised = _small_model(num_classes=2)
    with pytest.raises(ValueError, match="needs labels"):
        tbh_losses(supervised, x, supervised(x), None, lambda_cls=1.0)


def test_a_few_adam_steps_reduce_reconstruction() -> None:
    """Driving the blocks like the LightningModule will: one forward, two optimisers."""
    torch.manual_seed(11)
    model = _small_model(num_classes=3)
    x = torch.rand(32, 20)
    y = torch.randint(0, 3, (32,))
    actor_opt = torch.optim.Adam(model.actor_parameters(), lr=3e-3, eps=1e-7)
    critic_opt = torch.optim.Adam(model.critic_parameters(), lr=3e-3, eps=1e-7)
    history = []
    for _ in range(30):
        losses = tbh_losses(model, x, model(x), y, lambda_cls=1.0)
        actor_opt.zero_grad(set_to_none=True)
        critic_opt.zero_grad(set_to_none=True)
        losses.actor.backward(inputs=model.actor_parameters(), retain_graph=True)
        losses.critic.backward(inputs=model.critic_parameters())
        actor_opt.step()
        critic_opt.step()
        assert losses.classification is not None
        history.append((losses.reconstruction.item(), losses.classification.item()))
    assert history[-1][0] < 0.8 * history[0][0]
    assert history[-1][1] < history[0][1]
