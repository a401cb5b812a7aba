"""Twin-Bottleneck Hashing (TBH) and supervised TBH as one LightningModule (docs/methods.md#tbh).

The :class:`hashing.tbh.TwinBottleneck` sits on the backbone's features in place of the base
module's Linear + tanh head. ``lambda_cls > 0`` is supervised TBH (a classifier on the binary
bottleneck); ``lambda_cls = 0`` is unsupervised TBH exactly, so the ablation is one override.

Training is manual optimisation with two optimisers from one forward pass: the actor (encoder,
bottlenecks, GCN, decoder, classifier, and the backbone when it is trainable) minimises
``reconstruction - lambda_adv * critic + lambda_cls * classification``; the critic (the two
discriminators) minimises the critic loss. Each loss is backpropagated into its own parameter
group only (``inputs=``), both before either optimiser steps.

Reconstruction target (not in the paper, which trains on fixed fc7 features). The default is the
released protocol carried over to any backbone: the backbone is frozen (``freeze_backbone``, in
eval mode, no gradient) and TBH reconstructs its features, exactly as it would reconstruct
precomputed fc7 vectors. Reconstructing the output of a *trainable* backbone invites collapse
(the backbone can make its features trivially easy to reconstruct, e.g. constant), so for end to
end training use ``reconstruction_target="input"``: the decoder then reconstructs the flattened
input image, a target the backbone cannot move. ``"features"`` with a trainable backbone is
allowed (a supervised loss may hold it in place) but warned about.

Weight of the supervised term (``lambda_cls_reference``). By default (``"reconstruction"``)
``lambda_cls`` is relative: on the first training batch the module measures the per-sample
reconstruction and classification losses and fixes ``scale = reconstruction / classification``
(a buffer, saved in checkpoints, never re-measured on resume); the loss then uses
``lambda_cls * scale``, so ``lambda_cls = 1`` makes the two terms equal at the start on any
input width or feature scale. ``"absolute"`` uses ``lambda_cls`` as is (one nat against one unit
of per-sample squared error, the earlier meaning, which depends on the input).

Diagnostics (see :mod:`hashing.tbh.diagnostics`): on the first batch of every epoch the norms of
the reconstruction's, the adversarial terms' and the classifier's gradients at the codes ``b``
are logged (``train/grad_b_*``) with the ratio ``train/grad_b_adv_over_recon``, and a warning is
raised when every code of an epoch's training batches is the same. The evaluated database's bit
balance and dead bits are every method's (:mod:`hashing.callbacks.code_balance`); the NaN/inf
guard, the checkpointed generator and the measured scale have their own modules in
:mod:`hashing.methods`.

Counting: Lightning counts every optimiser step in ``global_step``, so one batch advances it by
2; ``trainer.max_steps`` is in those units (the released 100,000 iterations are
``max_steps=200000``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_warn
from torch import Tensor, nn

from hashing.data.labels import labelled_rows
from hashing.methods.base import HashingModule, OptimizerFactory
from hashing.methods.checkpointed_generator import CheckpointedGenerator
from hashing.methods.finite_update import NonFiniteLossError, check_finite_update
from hashing.methods.measured_scale import MeasuredScale
from hashing.runs.errors import UserError
from hashing.tbh import (
    Decoder,
    TBHLosses,
    TBHOutput,
    TwinBottleneck,
    classification_loss,
    positive_class_weights,
    reconstruction_loss,
    tbh_losses,
)
from hashing.tbh.diagnostics import code_gradient_norms, gradient_ratio

RECONSTRUCTION_TARGETS = ("features", "input")
REDUCTIONS = ("sum", "mean")
CLASS_WEIGHTINGS = ("pos_neg_ratio", "none")
LAMBDA_CLS_REFERENCES = ("reconstruction", "absolute")
GENERATOR_STATE_KEY = "tbh_generator_state"


class TBH(HashingModule):
    """Backbone -> TwinBottleneck; codes are ``b`` at threshold 0.5, as ±1.

    Args:
        lambda_cls: weight of the classifier's loss on ``b``; 0 = unsupervised TBH. Relative to
            the reconstruction at the start of training unless ``lambda_cls_reference`` is
            "absolute".
        lambda_cls_reference: "reconstruction" (``lambda_cls`` times the measured initial ratio
            reconstruction / classification) or "absolute" (``lambda_cls`` as is).
        lambda_adv: weight of the adversarial (critic) terms in the actor loss.
        gamma: exponent of the code graph ``(1 - d_H/M) ** gamma`` (1.4 code, 1 paper).
        continuous_features: size L of the continuous bottleneck.
        hidden_features: width of the encoder and decoder hidden layers.
        decoder_activation: "relu" (released code, non-negative targets) or "identity" (paper).
        discriminator_depth: "code" (one FC) or "paper" (FC + ReLU + FC).
        discriminator_hidden_features: hidden width of the "paper" discriminators.
        stochastic_threshold: draw the threshold from U(0,1) in training (eval always uses 0.5).
        reconstruction_reduction: "sum" (released ``l2_loss``) or "mean" (per-sample mean); the
            classification loss is reduced the same way, so ``lambda_cls`` is always per sample.
        critic_probability_clip: None (the critic BCE from logits) or Keras' epsilon 1e-7 (the
            released BCE: discriminator probabilities clipped to ``[c, 1 - c]``).
        class_weighting: multi-label only: "pos_neg_ratio" (per-class ``#neg/#pos`` positive
            weights from the training labels) or "none".
        reconstruction_target: "features" (the backbone's detached output) or "input" (the
            flattened input; needs a backbone with an ``input_shape`` attribute).
        freeze_backbone: keep the backbone fixed (eval mode, no gradient, not optimised).
        critic_optimizer: optimiser partial for the discriminators; None = ``optimizer``'s.
        seed: seed of the generator that draws the priors (and stochastic thresholds); its state
            is saved in checkpoints so a resumed run draws what an uninterrupted one would.
        **kwargs: :class:`HashingModule` arguments (backbone, bits, num_classes, multi_label,
            optimizer, scheduler, scheduler_interval, name).
    """

    non_hyperparameters = (*HashingModule.non_hyperparameters, "critic_optimizer")
    #: what the code-balance callback's collapse warning advises
    collapse_advice = "For TBH: lower method.lambda_adv, or use labels (method=tbh_supervised)."

    def __init__(
        self,
        lambda_cls: float = 1.0,
        lambda_cls_reference: str = "reconstruction",
        lambda_adv: float = 1.0,
        gamma: float = 1.4,
        continuous_features: int = 512,
        hidden_features: int = 1024,
        decoder_activation: str = "relu",
        discriminator_depth: str = "code",
        discriminator_hidden_features: int = 1024,
        stochastic_threshold: bool = False,
        reconstruction_reduction: str = "sum",
        critic_probability_clip: float | None = None,
        class_weighting: str = "pos_neg_ratio",
        reconstruction_target: str = "features",
        freeze_backbone: bool = True,
        critic_optimizer: OptimizerFactory | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        _check_choice("reconstruction_reduction", reconstruction_reduction, REDUCTIONS)
        _check_choice("class_weighting", class_weighting, CLASS_WEIGHTINGS)
        _check_choice("reconstruction_target", reconstruction_target, RECONSTRUCTION_TARGETS)
        _check_choice("lambda_cls_reference", lambda_cls_reference, LAMBDA_CLS_REFERENCES)
        for key, value in (("lambda_cls", lambda_cls), ("lambda_adv", lambda_adv)):
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"method.{key} must be a finite number >= 0, got {value}")
        if critic_probability_clip is not None and not 0 < critic_probability_clip < 0.5:
            raise UserError(
                "method.critic_probability_clip must be null or in (0, 0.5) (Keras' epsilon "
                f"1e-7 as released), got {critic_probability_clip}"
            )
        # The base saves every init argument (defaults included) in self.hparams and then builds
        # the head through build_hash_layer(), which reads the network's options from there.
        super().__init__(**kwargs)
        self.lambda_cls = float(lambda_cls)
        self.lambda_cls_reference = lambda_cls_reference
        self.lambda_adv = float(lambda_adv)
        self.reconstruction_reduction = reconstruction_reduction
        self.critic_probability_clip = (
            None if critic_probability_clip is None else float(critic_probability_clip)
        )
        self.class_weighting = class_weighting
        self.reconstruction_target = reconstruction_target
        self.freeze_backbone = bool(freeze_backbone)
        self.critic_optimizer_factory = critic_optimizer
        self.seed = int(seed)
        self.automatic_optimization = False
        if self.freeze_backbone:
            self.backbone.requires_grad_(False)
            self.backbone.eval()
        elif reconstruction_target == "features":
            rank_zero_warn(
                "TBH reconstructs the features of a trainable backbone (freeze_backbone=false, "
                "reconstruction_target=features): the backbone can collapse its features to make "
                "them easy to reconstruct; prefer reconstruction_target=input for end to end."
            )
        self.register_buffer("pos_weight", torch.empty(0))
        # reconstruction / classification at the start of training (buffer ``cls_scale``);
        # checkpoints from before it were trained with the absolute weight, i.e. a scale of 1
        self.cls_scale_value = MeasuredScale(self, "cls_scale", legacy_value=1.0)
        self.priors_generator = CheckpointedGenerator(GENERATOR_STATE_KEY)
        self._measured_scale: float | None = None
        #: the classification weight of the current step (see :meth:`step_losses`)
        self._cls_weight = self.lambda_cls

    @property
    def label_use(self) -> str:  # type: ignore[override]
        """Supervised TBH reconstructs every item and classifies the labelled ones (``mask``);
        unsupervised TBH ignores labels (``none``); docs/labels.md."""
        return "mask" if self.lambda_cls != 0 else "none"

    # --- the network ----------------------------------------------------------------------
    @property
    def twin_bottleneck(self) -> TwinBottleneck:
        """The TBH network (the base module's ``hash_layer``)."""
        return self.hash_layer  # type: ignore[return-value]

    def build_hash_layer(self) -> nn.Module:
        """The TwinBottleneck on the backbone's features, with the classifier always built.

        The classifier exists even when ``lambda_cls = 0`` (it then never enters a loss), so
        tbh and tbh_supervised have one architecture, one state dict and the same initial
        weights in every other part for one seed.
        """
        hp = self.hparams
        in_features = int(self.backbone.out_features)
        network = TwinBottleneck(
            in_features=in_features,
            bits=self.bits,
            continuous_features=int(hp["continuous_features"]),
            hidden_features=int(hp["hidden_features"]),
            gamma=float(hp["gamma"]),
            decoder_activation=hp["decoder_activation"],
            discriminator_depth=hp["discriminator_depth"],
            discriminator_hidden_features=int(hp["discriminator_hidden_features"]),
            num_classes=self.num_classes,
            stochastic_threshold=bool(hp["stochastic_threshold"]),
        )
        if hp["reconstruction_target"] == "input":
            network.decoder = Decoder(
                network.decoder.fc_hidden.in_features,
                self._input_features(),
                network.decoder.fc_hidden.out_features,
                output_activation=hp["decoder_activation"],
            )
        return network

    def _input_features(self) -> int:
        """Flattened input size, from the backbone's ``input_shape`` (for the "input" target)."""
        shape = getattr(self.backbone, "input_shape", None)
        if shape is None:
            raise UserError(
                f"reconstruction_target='input' needs the input size, but backbone "
                f"{type(self.backbone).__name__} has no input_shape attribute; use "
                "reconstruction_target='features' or a backbone that keeps its input_shape"
            )
        return math.prod(int(d) for d in shape)

    def train(self, mode: bool = True) -> TBH:
        """Switch modes, keeping a frozen backbone in eval mode (no dropout, fixed BN stats)."""
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def features(self, x: Tensor) -> Tensor:
        """Backbone output, computed without a graph when the backbone is frozen."""
        if self.freeze_backbone:
            with torch.no_grad():
                return self.backbone(x)
        return self.backbone(x)

    def forward(self, x: Tensor) -> Tensor:
        """Relaxed codes ``2 p - 1`` in (-1, 1), ``p = sigmoid(l)`` the bits' probabilities."""
        logits = self.twin_bottleneck.binary_bottleneck.fc(
            self.twin_bottleneck.encoder(self.features(x))
        )
        return 2.0 * torch.sigmoid(logits) - 1.0

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """±1 codes: ``b`` at threshold 0.5 (``p > 0.5`` -> +1), as float (B, bits)."""
        return self.twin_bottleneck.encode(self.features(x))

    # --- preparation ------------------------------------------------------------------------
    def prepare(self, datamodule: pl.LightningDataModule, output_dir: Path) -> None:
        """Multi-label positive weights ``#neg/#pos`` from the training labels (if used)."""
        if not (self.multi_label and self.lambda_cls != 0 and self.class_weighting != "none"):
            return
        labels = datamodule.train_labels()
        empty = (labels.sum(dim=0) == 0).nonzero().flatten().tolist()
        if empty:
            rank_zero_warn(
                f"classes {empty} have no positive training label; their positive weight is set "
                "to the number of training items (it never applies: no target is positive)"
            )
        self.pos_weight = positive_class_weights(labels, on_empty="clamp").to(self.pos_weight)

    def _positive_weights(self) -> Tensor | None:
        if not (self.multi_label and self.class_weighting != "none"):
            return None
        if self.pos_weight.numel() == 0:
            raise RuntimeError(
                "multi-label positive weights are not computed: call "
                "prepare(datamodule, output_dir) before training (the pipeline does), or set "
                "method.class_weighting=none"
            )
        return self.pos_weight

    # --- randomness of the priors -----------------------------------------------------------
    def generator(self, device: torch.device) -> torch.Generator:
        """The priors' generator on ``device``, seeded ``seed + rank`` or restored from a ckpt."""
        return self.priors_generator.get(device, self.seed + self.global_rank, self.global_step)

    # --- losses -------------------------------------------------------------------------------
    def reconstruction_target_of(self, x: Tensor, features: Tensor) -> Tensor:
        """What the decoder reconstructs: detached features, or the flattened input."""
        if self.reconstruction_target == "input":
            return x.flatten(1)
        return features.detach()

    def classification_weight(self, scale: float | None = None) -> float:
        """The weight the loss gives the classification term: ``lambda_cls`` times the scale.

        ``scale`` defaults to the stored ``cls_scale`` (NaN until the first training batch has
        been measured, with the relative reference), read from its host-side copy.
        """
        if self.lambda_cls == 0 or self.lambda_cls_reference == "absolute":
            return self.lambda_cls
        return self.lambda_cls * (self.cls_scale_value.value if scale is None else scale)

    @torch.no_grad()
    def measure_classification_scale(
        self, output: TBHOutput, target: Tensor, labels: Tensor, labelled: Tensor | None = None
    ) -> float:
        """Mean per-sample reconstruction / classification on this batch (the relative scale;
        the classification over the ``labelled`` rows where some are unlabelled).

        Means are averaged over ranks under DDP, so every rank uses one scale. The training step
        stores it in ``cls_scale`` only once the step's update is known to be finite.
        """
        assert output.class_logits is not None
        parts = torch.stack(
            [
                reconstruction_loss(output.x_hat, target, "mean"),
                classification_loss(
                    output.class_logits,
                    labels,
                    self._positive_weights(),
                    reduction="mean",
                    labelled=labelled,
                ),
            ]
        )
        if self._trainer is not None:
            parts = self.trainer.strategy.reduce(parts, reduce_op="mean")
        recon, cls = (float(v) for v in parts)
        if not (math.isfinite(recon) and math.isfinite(cls) and recon > 0 and cls > 0):
            raise NonFiniteLossError(
                f"TBH: cannot measure the supervised weight's scale (reconstruction {recon:.4g}, "
                f"classification {cls:.4g} on the first batch); check the inputs, or set "
                "method.lambda_cls_reference=absolute"
            )
        return recon / cls

    def step_losses(self, x: Tensor, labels: Tensor) -> tuple[TBHOutput, TBHLosses]:
        """One forward pass and both objectives (``tbh_losses`` on the backbone's features).

        Items labelled ``UNLABELLED`` (a partly labelled training set, docs/labels.md) are
        reconstructed but not classified; the relative scale is measured on the first batch
        with a labelled item, and a batch without one has no classification term.
        """
        features = self.features(x)
        generator = self.generator(features.device)
        output = self.twin_bottleneck(features, generator)
        target = self.reconstruction_target_of(x, features)
        supervised = self.lambda_cls != 0
        labelled = self.labelled_rows_of(labels) if supervised else None
        self._measured_scale = None
        if (
            supervised
            and self.lambda_cls_reference != "absolute"
            and not self.cls_scale_value.measured
            and (labelled is None or bool(labelled.any()))
        ):
            self._measured_scale = self.measure_classification_scale(
                output, target, labels, labelled
            )
        weight = self.classification_weight(self._measured_scale)
        # not measured yet and no labelled item here: the term is 0, any finite weight will do
        self._cls_weight = weight if math.isfinite(weight) else self.lambda_cls
        losses = tbh_losses(
            self.twin_bottleneck,
            features,
            output,
            labels,
            lambda_adv=self.lambda_adv,
            lambda_cls=self._cls_weight,
            reduction=self.reconstruction_reduction,
            pos_weight=self._positive_weights() if supervised else None,
            generator=generator,
            target=target,
            probability_clip=self.critic_probability_clip,
            labelled=labelled,
        )
        return output, losses

    @staticmethod
    def labelled_rows_of(labels: Tensor) -> Tensor | None:
        """The batch's labelled rows (bool), or None when every row is labelled (then the
        loss is computed exactly as on a fully labelled training set)."""
        rows = labelled_rows(labels)
        return None if bool(rows.all()) else rows

    def code_gradients(self, output: TBHOutput, step: TBHLosses) -> dict[str, Tensor]:
        """Norms of each actor term's gradient at the codes ``b`` and adversarial/reconstruction.

        The adversarial term is ``-lambda_adv * (critic_code + critic_continuous)`` and the
        classification term is weighted as in the loss, so the norms add up to the actor's
        pull on the codes.
        """
        terms = {
            "recon": step.reconstruction,
            "adv": -self.lambda_adv * (step.critic_code + step.critic_continuous),
        }
        if step.classification is not None:
            terms["cls"] = self._cls_weight * step.classification
        norms = code_gradient_norms(output.b, terms)
        values = {f"grad_b_{name}": norm for name, norm in norms.items()}
        values["grad_b_adv_over_recon"] = gradient_ratio(norms["adv"], norms["recon"])
        if "cls" in norms:
            values["grad_b_cls_over_recon"] = gradient_ratio(norms["cls"], norms["recon"])
        return values

    # --- optimisation -----------------------------------------------------------------------
    def actor_parameters(self) -> list[nn.Parameter]:
        """Encoder, bottlenecks, GCN, decoder, the classifier if used, a trainable backbone."""
        classifier = self.twin_bottleneck.classifier
        # by identity, one pass over the classifier (not one per parameter: 2 ms a step)
        unused = (
            set()
            if self.lambda_cls != 0 or classifier is None
            else {id(p) for p in classifier.parameters()}
        )
        params = [p for p in self.twin_bottleneck.actor_parameters() if id(p) not in unused]
        if not self.freeze_backbone:
            params += [p for p in self.backbone.parameters() if p.requires_grad]
        return params

    def critic_parameters(self) -> list[nn.Parameter]:
        """The two discriminators."""
        return self.twin_bottleneck.critic_parameters()

    def configure_optimizers(self) -> Any:
        """Actor and critic optimisers (critic partial defaults to the actor's), and schedulers."""
        if self.optimizer_factory is None:
            raise UserError("no optimizer configured: set method.optimizer in the config")
        critic_factory = self.critic_optimizer_factory or self.optimizer_factory
        optimizers = [
            self.optimizer_factory(params=self.actor_parameters()),
            critic_factory(params=self.critic_parameters()),
        ]
        if self.scheduler_factory is None:
            return optimizers
        return optimizers, [self.scheduler_factory(optimizer=opt) for opt in optimizers]

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        """One forward pass; actor and critic gradients into their own groups; step both."""
        x, y, _ = batch
        actor_opt, critic_opt = self.optimizers()
        output, step = self.step_losses(x, y)
        if batch_idx == 0:
            for key, value in self.code_gradients(output, step).items():
                self.log(f"train/{key}", value.float(), on_step=False, on_epoch=True)
        actor_params, critic_params = self.actor_parameters(), self.critic_parameters()
        actor_opt.zero_grad(set_to_none=True)
        critic_opt.zero_grad(set_to_none=True)
        self.manual_backward(step.actor, inputs=actor_params, retain_graph=True)
        self.manual_backward(step.critic, inputs=critic_params)
        check_finite_update(
            {"actor": step.actor, "critic": step.critic},
            [*actor_params, *critic_params],
            f"global step {self.global_step} (epoch {self.current_epoch}, batch {batch_idx})",
            "TBH",
        )
        if self._measured_scale is not None:
            self.cls_scale_value.store(self, self._measured_scale)
        actor_opt.step()
        critic_opt.step()
        if self.scheduler_factory is not None and self.scheduler_interval == "step":
            for scheduler in self.lr_schedulers():
                scheduler.step()
        self._accumulate_step(output, step, y)
        return step.actor.detach()

    def on_train_epoch_end(self) -> None:
        """Log the epoch's training values; step epoch-interval schedulers (manual optimisation
        leaves them to the module)."""
        self._warn_if_training_collapsed()  # before the logging clears the epoch's sums
        self.log_training_epoch()
        if self.scheduler_factory is not None and self.scheduler_interval == "epoch":
            for scheduler in self.lr_schedulers():
                scheduler.step()

    def _accumulate_step(self, output: TBHOutput, step: TBHLosses, labels: Tensor) -> None:
        """Add the batch's losses, discriminator outputs and bit mean to the epoch's sums.

        Logged once per epoch by :meth:`on_train_epoch_end`: eleven ``self.log`` calls per step
        cost as much as the step itself on a small model.
        """
        values = {
            "loss": step.actor,
            "critic_loss": step.critic,
            "reconstruction": step.reconstruction,
            "critic_code": step.critic_code,
            "critic_continuous": step.critic_continuous,
            "d_code_real": step.code_real,
            "d_code_fake": step.code_fake,
            "d_continuous_real": step.continuous_real,
            "d_continuous_fake": step.continuous_fake,
            "bit_mean": output.b.mean(),
        }
        if step.classification is not None:
            values["classification"] = step.classification
            if not self.multi_label:
                assert output.class_logits is not None
                correct = output.class_logits.argmax(dim=1) == labels
                labelled = self.labelled_rows_of(labels)
                values["classification_accuracy"] = (
                    correct.float().mean()
                    if labelled is None  # else: among the labelled rows (0 without any)
                    else (correct & labelled).sum() / labelled.sum().clamp_min(1)
                )
        values["collapsed_batch"] = (output.b == output.b[:1]).all().float()
        self.accumulate_training_values(values, labels.shape[0])

    def _warn_if_training_collapsed(self) -> None:
        """Warn when in every training batch of the epoch all codes were one code.

        Reads the epoch's sum of ``collapsed_batch`` (one device sync per epoch). The sums are
        weighted by batch size, so every batch collapsed exactly when that sum equals the
        epoch's sample count (float32 holds these integer sums exactly up to 2**24 samples).
        """
        if self._train_sums is None:
            return
        collapsed = float(self._train_sums[self._train_keys.index("collapsed_batch")])
        if collapsed == self._train_count:
            rank_zero_warn(
                f"TBH: all codes collapsed to one code in every training batch of epoch "
                f"{self.current_epoch}. Once all codes are equal the reconstruction no longer "
                "reaches them (train/grad_b_recon is 0), so this does not recover: lower "
                "method.lambda_adv, or add labels (method=tbh_supervised). See "
                "docs/methods.md#tbh-collapse."
            )

    # --- checkpoints -------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the priors' generator state so a resumed run continues its draws."""
        self.priors_generator.save(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Size ``pos_weight`` to the stored one; restore the generator at first use."""
        state_dict = checkpoint.get("state_dict", {})
        self.cls_scale_value.upgrade(state_dict)
        stored = state_dict.get("pos_weight")
        if stored is not None:
            self.pos_weight = torch.empty_like(stored, device=self.pos_weight.device)
        self.priors_generator.load(checkpoint)


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"method.{key}={value!r} is invalid: allowed values are {allowed}")
