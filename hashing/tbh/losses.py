"""TBH objectives: reconstruction, WAE critic/actor losses, priors, and the supervised classifier.

Reductions (docs/methods.md#tbh-losses, released ``train/tbh_train.py``):

- reconstruction ``"sum"`` (default, the released code's ``tf.nn.l2_loss``):
  ``1/2 * sum_{i,d} (x_hat_id - x_id)^2``; ``"mean"``: the same per sample, averaged over the
  batch, ``1/(2B) * sum_{i,d} (x_hat_id - x_id)^2``.
- critic loss per discriminator: ``mean_i BCE(d(prior_i), 1) + mean_i BCE(d(encoded_i), 0)``,
  always batch means (as released, whatever the reconstruction reduction); BCE from logits, or
  Keras' clipped BCE on probabilities as released (``probability_clip``).
- actor loss: ``reconstruction - lambda_adv * (critic_b + critic_z) + lambda_cls * classification``.

Scale of ``lambda_cls``. The classification loss is a per-sample loss (softmax cross-entropy in
nats; multi-label: the positive-weighted BCE averaged over the C classes) reduced over the batch
*the same way as the reconstruction* (mean with "mean", sum with "sum"), so the weight passed
here weighs one sample's classification loss against one sample's ``1/2 ||x_hat - x||^2``,
independent of batch size and reduction. That alone does not make a weight portable: the
cross-entropy starts near ``log C`` (2.3 nats for 10 classes) while the per-sample
reconstruction grows with the input's width and scale (about 460 on 1280-d EfficientNet
features, thousands on 4096-d fc7), so one absolute weight swamps the labels on one input and
the reconstruction on another. :class:`hashing.methods.tbh.TBH` therefore passes
``lambda_cls * scale`` with ``scale`` = the measured ratio of the two terms at the start of
training (``lambda_cls_reference="reconstruction"``, the default): ``lambda_cls`` is then the
supervised term's size *relative to the reconstruction*, the same on any input. With
``lambda_cls = 0`` the classifier is never called by the loss, so it stays out of the autograd
graph (its parameters get no gradient) and the objective is exactly unsupervised TBH.

The reduction does move the reconstruction/adversarial balance: the critic terms are batch means,
so "mean" makes them B times heavier relative to reconstruction than the released "sum" does
(``lambda_adv = 1/B`` with "mean" restores the released balance).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hashing.tbh.networks import TBHOutput, TwinBottleneck

__all__ = [
    "Reduction",
    "TBHLosses",
    "actor_loss",
    "classification_loss",
    "critic_loss",
    "positive_class_weights",
    "reconstruction_loss",
    "sample_binary_prior",
    "sample_uniform_prior",
    "tbh_losses",
]

Reduction = Literal["sum", "mean"]
_REDUCTIONS = ("sum", "mean")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def reconstruction_loss(x_hat: Tensor, x: Tensor, reduction: Reduction = "sum") -> Tensor:
    """``1/2 * sum (x_hat - x)^2`` over batch and dims ("sum"), or that divided by B ("mean")."""
    _check_reduction(reduction)
    if x_hat.shape != x.shape or x.dim() < 1:
        raise ValueError(
            f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must have one (B, ...) shape"
        )
    total = 0.5 * (x_hat - x).pow(2).sum()
    return total if reduction == "sum" else total / x.shape[0]


def critic_loss(
    real_logits: Tensor, fake_logits: Tensor, probability_clip: float | None = None
) -> Tensor:
    """``mean BCE(d(prior), 1) + mean BCE(d(encoded), 0)`` for one discriminator, from its logits.

    ``probability_clip=None``: BCE-with-logits, unbounded, its gradient never vanishes on the
    winning side. ``probability_clip=c`` is Keras' BCE on the sigmoid's output as the released code
    computes it (``c = 1e-7``, Keras' epsilon): ``p`` clipped to ``[c, 1 - c]``, then
    ``-log(p + c)`` and ``-log(1 - p + c)``. The two agree to about ``c`` where
    ``c < p < 1 - c``; outside (``|logit| > ~16`` for 1e-7) the clipped loss is flat, so neither
    the critic nor the actor gets a gradient from that sample (docs/tbh_reproduction.md).
    """
    if probability_clip is None:
        real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return real + fake
    clip = float(probability_clip)
    if not 0.0 < clip < 0.5:
        raise ValueError(f"probability_clip must lie in (0, 0.5) (Keras uses 1e-7), got {clip}")
    real_p = torch.sigmoid(real_logits).clamp(clip, 1.0 - clip)
    fake_p = torch.sigmoid(fake_logits).clamp(clip, 1.0 - clip)
    return -(real_p + clip).log().mean() - (1.0 - fake_p + clip).log().mean()


def actor_loss(
    reconstruction: Tensor,
    critic_losses: Sequence[Tensor],
    classification: Tensor | None = None,
    lambda_adv: float = 1.0,
    lambda_cls: float = 1.0,
) -> Tensor:
    """``reconstruction - lambda_adv * sum(critic_losses) + lambda_cls * classification``.

    ``classification`` must be given when ``lambda_cls != 0`` and is ignored (never touched) when
    ``lambda_cls == 0``.
    """
    loss = reconstruction - lambda_adv * torch.stack(list(critic_losses)).sum()
    if lambda_cls != 0:
        if classification is None:
            raise ValueError(f"lambda_cls = {lambda_cls} needs a classification loss, got None")
        loss = loss + lambda_cls * classification
    return loss


def sample_binary_prior(
    num: int,
    bits: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``num`` samples of Bernoulli(0.5)^bits as {0,1} floats (the code discriminator's prior)."""
    return (torch.rand(num, bits, device=device, generator=generator) < 0.5).to(dtype)


def sample_uniform_prior(
    num: int,
    features: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``num`` samples of U(0,1)^features (the continuous discriminator's prior)."""
    return torch.rand(num, features, device=device, generator=generator).to(dtype)


def positive_class_weights(labels: Tensor, on_empty: Literal["raise", "clamp"] = "raise") -> Tensor:
    """Per-class ``#neg / #pos`` from a multi-hot (N, C) training label matrix, float32 (C,).

    A class with no positive has no defined ratio: ``on_empty="raise"`` (default) names such
    classes in a ValueError; ``"clamp"`` counts them as having one positive (weight ``N``), which
    is harmless since a weight only scales positive targets and those never occur for that class
    in the data the weights came from. A class positive in every row gets weight 0.
    """
    if labels.dim() != 2:
        raise ValueError(
            f"labels must be a multi-hot (N, C) matrix, got shape {tuple(labels.shape)}; "
            "single-label data uses softmax cross-entropy without class weights"
        )
    if labels.numel() and not bool(((labels == 0) | (labels == 1)).all()):
        raise ValueError("labels must be multi-hot with entries in {0, 1}")
    if on_empty not in ("raise", "clamp"):
        raise ValueError(f"on_empty must be 'raise' or 'clamp', got {on_empty!r}")
    positives = labels.double().sum(dim=0)
    negatives = labels.shape[0] - positives
    empty = (positives == 0).nonzero().flatten().tolist()
    if empty and on_empty == "raise":
        raise ValueError(
            f"classes {empty} have no positive in the training labels, so #neg/#pos is undefined; "
            "drop them or pass on_empty='clamp'"
        )
    return (negatives / positives.clamp_min(1.0)).float()


def classification_loss(
    class_logits: Tensor,
    labels: Tensor,
    pos_weight: Tensor | None = None,
    reduction: Reduction = "mean",
    labelled: Tensor | None = None,
) -> Tensor:
    """Per-sample classification loss reduced over the batch ("mean" or "sum").

    Single-label (labels (B,) long): softmax cross-entropy. Multi-label (labels (B, C) multi-hot):
    sigmoid BCE with optional per-class ``pos_weight`` (C,), averaged over classes per sample.
    ``labelled`` (B,) bool keeps only those rows: the loss is their sum, or their mean, and 0
    (with a zero gradient) when there are none (docs/labels.md).
    """
    _check_reduction(reduction)
    if labelled is not None:
        if not bool(labelled.any()):
            return class_logits.sum() * 0.0
        class_logits, labels = class_logits[labelled], labels[labelled]
    if class_logits.dim() != 2:
        raise ValueError(f"class_logits must be (B, C), got shape {tuple(class_logits.shape)}")
    batch, num_classes = class_logits.shape
    if labels.dim() == 1:
        if labels.dtype.is_floating_point or labels.shape[0] != batch:
            raise ValueError(
                f"single-label labels must be (B,) = ({batch},) integer class indices, got "
                f"{labels.dtype} of shape {tuple(labels.shape)}"
            )
        if pos_weight is not None:
            raise ValueError("pos_weight applies to multi-label (B, C) labels only")
        per_sample = F.cross_entropy(class_logits, labels, reduction="none")
    elif labels.dim() == 2:
        if labels.shape != class_logits.shape:
            raise ValueError(
                f"multi-hot labels must match class_logits {tuple(class_logits.shape)}, got "
                f"{tuple(labels.shape)}"
            )
        if pos_weight is not None and pos_weight.shape != (num_classes,):
            raise ValueError(
                f"pos_weight must have shape ({num_classes},), got {tuple(pos_weight.shape)}"
            )
        per_sample = F.binary_cross_entropy_with_logits(
            class_logits, labels.to(class_logits.dtype), pos_weight=pos_weight, reduction="none"
        ).mean(dim=1)
    else:
        raise ValueError(f"labels must be (B,) or (B, C), got shape {tuple(labels.shape)}")
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


class TBHLosses(NamedTuple):
    """Everything one TBH step needs: the two losses to optimise and their parts for logging.

    ``code_real`` ... ``continuous_fake`` are the discriminators' mean probabilities on prior
    (real) and encoded (fake) samples, detached: the numbers that show a collapsing critic.
    """

    actor: Tensor
    critic: Tensor
    reconstruction: Tensor
    critic_code: Tensor
    critic_continuous: Tensor
    classification: Tensor | None
    code_real: Tensor
    code_fake: Tensor
    continuous_real: Tensor
    continuous_fake: Tensor


def tbh_losses(
    model: TwinBottleneck,
    x: Tensor,
    output: TBHOutput,
    labels: Tensor | None = None,
    *,
    lambda_adv: float = 1.0,
    lambda_cls: float = 1.0,
    reduction: Reduction = "sum",
    pos_weight: Tensor | None = None,
    generator: torch.Generator | None = None,
    target: Tensor | None = None,
    probability_clip: float | None = None,
    labelled: Tensor | None = None,
) -> TBHLosses:
    """Actor and critic losses of one forward pass (priors drawn here, one per batch row).

    ``lambda_cls != 0`` needs a model with a classifier and ``labels``; ``lambda_cls = 0`` leaves
    the classifier out of every loss. The critic loss also depends on actor parameters through
    the encoded inputs: backpropagate each loss into its own group only, e.g.
    ``actor.backward(inputs=model.actor_parameters(), retain_graph=True)`` then
    ``critic.backward(inputs=model.critic_parameters())``, and step both optimisers afterwards.
    A ``generator`` for the priors must live on ``x``'s device. ``target`` is what the decoder
    reconstructs (default ``x``, the network's input). ``probability_clip``: see
    :func:`critic_loss` (None = BCE with logits; 1e-7 = the released Keras BCE). ``labelled``
    (B,) bool: the rows whose labels the classification term uses (None: every row).
    """
    batch = x.shape[0]
    prior_b = sample_binary_prior(
        batch, output.b.shape[1], device=x.device, dtype=output.b.dtype, generator=generator
    )
    prior_z = sample_uniform_prior(
        batch,
        output.z_graph.shape[1],
        device=x.device,
        dtype=output.z_graph.dtype,
        generator=generator,
    )
    code_real = model.code_discriminator(prior_b)
    code_fake = model.code_discriminator(output.b)
    continuous_real = model.continuous_discriminator(prior_z)
    continuous_fake = model.continuous_discriminator(output.z_graph)
    critic_code = critic_loss(code_real, code_fake, probability_clip)
    critic_continuous = critic_loss(continuous_real, continuous_fake, probability_clip)
    recon = reconstruction_loss(output.x_hat, x if target is None else target, reduction)
    classification = None
    if lambda_cls != 0:
        if output.class_logits is None:
            raise ValueError(
                f"lambda_cls = {lambda_cls} needs a model built with num_classes; "
                "use lambda_cls = 0 for unsupervised TBH"
            )
        if labels is None:
            raise ValueError(f"lambda_cls = {lambda_cls} needs labels, got None")
        classification = classification_loss(
            output.class_logits, labels, pos_weight, reduction, labelled
        )
    actor = actor_loss(
        recon, (critic_code, critic_continuous), classification, lambda_adv, lambda_cls
    )
    return TBHLosses(
        actor=actor,
        critic=critic_code + critic_continuous,
        reconstruction=recon,
        critic_code=critic_code,
        critic_continuous=critic_continuous,
        classification=classification,
        code_real=torch.sigmoid(code_real.detach()).mean(),
        code_fake=torch.sigmoid(code_fake.detach()).mean(),
        continuous_real=torch.sigmoid(continuous_real.detach()).mean(),
        continuous_fake=torch.sigmoid(continuous_fake.detach()).mean(),
    )
