"""TBH networks: encoder, twin bottlenecks, GCN, decoder, discriminators and optional classifier.

Layer sizes follow docs/methods.md#tbh-parts and the released code; every linear layer is
Glorot-uniform with zero bias (Keras' ``Dense`` defaults, which the released code uses). Each part
initialises itself when built and the classifier is built last, so with the same seed a model with a
classifier has the same initial weights in every other part as one without (``lambda_cls = 0`` is
unsupervised TBH).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from hashing.tbh.graph import GraphConvolution, code_adjacency
from hashing.tbh.neuron import binary_neuron, sample_threshold

__all__ = [
    "BinaryBottleneck",
    "ContinuousBottleneck",
    "Decoder",
    "DecoderActivation",
    "Discriminator",
    "DiscriminatorDepth",
    "Encoder",
    "TBHOutput",
    "TwinBottleneck",
    "glorot_linear",
]

DecoderActivation = Literal["relu", "identity"]
DiscriminatorDepth = Literal["code", "paper"]
_DECODER_ACTIVATIONS = ("relu", "identity")
_DISCRIMINATOR_DEPTHS = ("code", "paper")


def _check_positive(**sizes: int) -> None:
    """Raise naming every size that is not a positive int."""
    bad = {
        name: value for name, value in sizes.items() if not (isinstance(value, int) and value > 0)
    }
    if bad:
        raise ValueError(f"sizes must be positive integers, got {bad}")


def glorot_linear(in_features: int, out_features: int) -> nn.Linear:
    """``nn.Linear`` with Glorot-uniform weight and zero bias (Keras ``Dense`` defaults)."""
    layer = nn.Linear(in_features, out_features)
    nn.init.xavier_uniform_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class Encoder(nn.Module):
    """Shared trunk ``ReLU(FC(in_features, hidden_features))`` feeding both bottlenecks."""

    def __init__(self, in_features: int, hidden_features: int = 1024) -> None:
        """Build the FC layer."""
        super().__init__()
        _check_positive(in_features=in_features, hidden_features=hidden_features)
        self.fc = glorot_linear(in_features, hidden_features)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_features) -> (B, hidden_features)."""
        return torch.relu(self.fc(x))


class BinaryBottleneck(nn.Module):
    """``l = FC(hidden, M)`` then the stochastic binary neuron: returns ``(b, p, l)``.

    The threshold is 0.5 (the released code, train and test) unless ``stochastic`` is set, in
    which case training mode draws ``eps ~ U(0,1)`` per entry; eval mode always uses 0.5.
    """

    def __init__(self, in_features: int, bits: int, stochastic: bool = False) -> None:
        """Build the FC layer; ``stochastic`` turns on U(0,1) thresholds in training mode."""
        super().__init__()
        _check_positive(in_features=in_features, bits=bits)
        self.fc = glorot_linear(in_features, bits)
        self.stochastic = stochastic

    def forward(
        self, hidden: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(B, hidden) -> codes b in {0,1}, probabilities p, logits l; each (B, bits)."""
        logits = self.fc(hidden)
        eps = sample_threshold(logits, self.stochastic and self.training, generator)
        code, prob = binary_neuron(logits, eps)
        return code, prob, logits


class ContinuousBottleneck(nn.Module):
    """``z = sigmoid(FC(hidden, L))`` (the released code; the paper's figure says ReLU)."""

    def __init__(self, in_features: int, out_features: int = 512) -> None:
        """Build the FC layer."""
        super().__init__()
        _check_positive(in_features=in_features, out_features=out_features)
        self.fc = glorot_linear(in_features, out_features)

    def forward(self, hidden: Tensor) -> Tensor:
        """(B, hidden) -> (B, L) in (0, 1)."""
        return torch.sigmoid(self.fc(hidden))


class Decoder(nn.Module):
    """``FC(L, hidden) + ReLU -> FC(hidden, D)`` then ReLU (released code) or identity (paper)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int = 1024,
        output_activation: DecoderActivation = "relu",
    ) -> None:
        """``output_activation``: "relu" suits non-negative inputs such as fc7 features."""
        super().__init__()
        _check_positive(
            in_features=in_features, out_features=out_features, hidden_features=hidden_features
        )
        if output_activation not in _DECODER_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {_DECODER_ACTIVATIONS}: {output_activation!r}"
            )
        self.fc_hidden = glorot_linear(in_features, hidden_features)
        self.fc_out = glorot_linear(hidden_features, out_features)
        self.output_activation = output_activation

    def forward(self, z: Tensor) -> Tensor:
        """(B, L) -> reconstruction (B, D)."""
        out = self.fc_out(torch.relu(self.fc_hidden(z)))
        return torch.relu(out) if self.output_activation == "relu" else out


class Discriminator(nn.Module):
    """WAE critic returning a logit per sample (the sigmoid lives in the BCE-with-logits loss).

    depth "code" (released code): one ``FC(in, 1)``; depth "paper": ``FC(in, hidden) + ReLU ->
    FC(hidden, 1)``. ``sigmoid(logit)`` is the
    probability the discriminator of docs/methods.md#tbh-parts outputs.
    """

    def __init__(
        self, in_features: int, depth: DiscriminatorDepth = "code", hidden_features: int = 1024
    ) -> None:
        """Build the layers for the chosen depth."""
        super().__init__()
        _check_positive(in_features=in_features, hidden_features=hidden_features)
        if depth not in _DISCRIMINATOR_DEPTHS:
            raise ValueError(f"depth must be one of {_DISCRIMINATOR_DEPTHS}, got {depth!r}")
        self.depth = depth
        if depth == "code":
            self.net: nn.Module = glorot_linear(in_features, 1)
        else:
            self.net = nn.Sequential(
                glorot_linear(in_features, hidden_features),
                nn.ReLU(),
                glorot_linear(hidden_features, 1),
            )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_features) -> logits (B,)."""
        return self.net(x).squeeze(-1)


class TBHOutput(NamedTuple):
    """One TBH forward pass: binary bottleneck (b, p, logits), continuous z, GCN output z_graph,
    reconstruction x_hat, and class_logits (None without a classifier)."""

    b: Tensor
    p: Tensor
    logits: Tensor
    z: Tensor
    z_graph: Tensor
    x_hat: Tensor
    class_logits: Tensor | None = None


class TwinBottleneck(nn.Module):
    """The whole TBH auto-encoder with its two discriminators and an optional classifier on b.

    Actor (``actor_parameters()``): encoder, both bottlenecks, GCN, decoder, classifier.
    Critic (``critic_parameters()``): ``code_discriminator`` (on b vs Bernoulli(0.5)^M) and
    ``continuous_discriminator`` (on z_graph vs U(0,1)^L). ``forward`` does not run the
    discriminators; :func:`hashing.tbh.losses.tbh_losses` does.
    """

    def __init__(
        self,
        in_features: int,
        bits: int,
        continuous_features: int = 512,
        hidden_features: int = 1024,
        gamma: float = 1.4,
        decoder_activation: DecoderActivation = "relu",
        discriminator_depth: DiscriminatorDepth = "code",
        discriminator_hidden_features: int = 1024,
        num_classes: int | None = None,
        stochastic_threshold: bool = False,
    ) -> None:
        """Sizes: input D = ``in_features``, M = ``bits``, L = ``continuous_features``.

        ``num_classes`` adds the supervised form's ``FC(M, C)`` classifier on b.
        """
        super().__init__()
        if not gamma > 0:
            raise ValueError(
                f"gamma must be > 0 (1.4 in the released code, 1 in the paper): {gamma}"
            )
        if num_classes is not None:
            _check_positive(num_classes=num_classes)
        self.in_features = in_features
        self.bits = bits
        self.gamma = float(gamma)
        self.encoder = Encoder(in_features, hidden_features)
        self.binary_bottleneck = BinaryBottleneck(hidden_features, bits, stochastic_threshold)
        self.continuous_bottleneck = ContinuousBottleneck(hidden_features, continuous_features)
        self.graph_convolution = GraphConvolution(continuous_features, continuous_features)
        self.decoder = Decoder(
            continuous_features, in_features, hidden_features, output_activation=decoder_activation
        )
        self.code_discriminator = Discriminator(
            bits, discriminator_depth, discriminator_hidden_features
        )
        self.continuous_discriminator = Discriminator(
            continuous_features, discriminator_depth, discriminator_hidden_features
        )
        self.classifier: nn.Linear | None = (
            glorot_linear(bits, num_classes) if num_classes is not None else None
        )

    def _check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"x must have shape (B, {self.in_features}) (in_features), got {tuple(x.shape)}"
            )

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> TBHOutput:
        """Encode, build the code graph of the batch, propagate z over it, decode, classify."""
        self._check_input(x)
        hidden = self.encoder(x)
        b, p, logits = self.binary_bottleneck(hidden, generator)
        z = self.continuous_bottleneck(hidden)
        z_graph = self.graph_convolution(z, code_adjacency(b, self.gamma))
        x_hat = self.decoder(z_graph)
        class_logits = self.classifier(b) if self.classifier is not None else None
        return TBHOutput(b, p, logits, z, z_graph, x_hat, class_logits)

    def encode(self, x: Tensor) -> Tensor:
        """Retrieval codes in {-1,+1} (float): ``2 b - 1`` with the threshold fixed at 0.5."""
        self._check_input(x)
        logits = self.binary_bottleneck.fc(self.encoder(x))
        code, _ = binary_neuron(logits, 0.5)
        return 2.0 * code - 1.0

    def actor_parameters(self) -> list[nn.Parameter]:
        """Parameters the actor optimiser updates (everything except the discriminators)."""
        modules: list[nn.Module] = [
            self.encoder,
            self.binary_bottleneck,
            self.continuous_bottleneck,
            self.graph_convolution,
            self.decoder,
        ]
        if self.classifier is not None:
            modules.append(self.classifier)
        return [param for module in modules for param in module.parameters()]

    def critic_parameters(self) -> list[nn.Parameter]:
        """Parameters the critic optimiser updates (the two discriminators)."""
        return [
            *self.code_discriminator.parameters(),
            *self.continuous_discriminator.parameters(),
        ]
