"""Twin-Bottleneck Hashing (TBH) building blocks as plain torch modules and functions.

Unsupervised TBH (Shen et al., CVPR 2020) and its supervised form (a classifier on the binary
bottleneck); docs/methods.md#tbh-parts. The LightningModule that trains them lives in
``hashing.methods``.
"""

from hashing.tbh.graph import (
    GraphConvolution,
    code_adjacency,
    hamming_distance_01,
    normalize_adjacency,
)
from hashing.tbh.losses import (
    TBHLosses,
    actor_loss,
    classification_loss,
    critic_loss,
    positive_class_weights,
    reconstruction_loss,
    sample_binary_prior,
    sample_uniform_prior,
    tbh_losses,
)
from hashing.tbh.networks import (
    BinaryBottleneck,
    ContinuousBottleneck,
    Decoder,
    Discriminator,
    Encoder,
    TBHOutput,
    TwinBottleneck,
)
from hashing.tbh.neuron import StochasticBinaryNeuron, binary_neuron, sample_threshold

__all__ = [
    "BinaryBottleneck",
    "ContinuousBottleneck",
    "Decoder",
    "Discriminator",
    "Encoder",
    "GraphConvolution",
    "StochasticBinaryNeuron",
    "TBHLosses",
    "TBHOutput",
    "TwinBottleneck",
    "actor_loss",
    "binary_neuron",
    "classification_loss",
    "code_adjacency",
    "critic_loss",
    "hamming_distance_01",
    "normalize_adjacency",
    "positive_class_weights",
    "reconstruction_loss",
    "sample_binary_prior",
    "sample_threshold",
    "sample_uniform_prior",
    "tbh_losses",
]
