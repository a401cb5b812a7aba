"""TBH LightningModule: wiring, two-optimiser manual steps, checkpoints, NaN guard, diagnostics."""

from __future__ import annotations

import inspect
import math
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from hashing.backbones.identity import Identity
from hashing.backbones.mlp import MLP
from hashing.callbacks import RetrievalEvaluation
from hashing.callbacks.code_balance import CodeBalance
from hashing.methods.finite_update import NonFiniteLossError, all_finite
from hashing.methods.tbh import TBH
from hashing.tbh import tbh_losses

CONF = Path(__file__).resolve().parents[1] / "conf" / "method"
SHAPE = (1, 4, 4)
SMALL = {"continuous_features": 12, "hidden_features": 24}


def make_tbh(
    seed: int = 0, hidden_dims: tuple[int, ...] = (10,), num_classes: int = 3, **kwargs: Any
) -> TBH:
    torch.manual_seed(seed)
    options: dict[str, Any] = {
        "backbone": MLP(SHAPE, hidden_dims=hidden_dims),
        "bits": 6,
        "num_classes": num_classes,
        "optimizer": partial(torch.optim.Adam, lr=1e-3, eps=1e-7),
        **SMALL,
    }
    options.update(kwargs)
    return TBH(**options)


def batches(n: int = 48, num_classes: int = 3, seed: int = 0) -> TensorDataset:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, *SHAPE, generator=gen)
    y = torch.randint(0, num_classes, (n,), generator=gen)
    return TensorDataset(x, y, torch.arange(n))


def trainer(tmp_path: Path, max_epochs: int, **kwargs: Any) -> pl.Trainer:
    options: dict[str, Any] = {
        "max_epochs": max_epochs,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "deterministic": True,
        "default_root_dir": tmp_path,
    }
    options.update(kwargs)
    return pl.Trainer(**options)


def loader(dataset: TensorDataset, batch_size: int = 16) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, shuffle=False)


def test_config_keys_reach_the_network() -> None:
    model = make_tbh(
        gamma=1.0,
        decoder_activation="identity",
        discriminator_depth="paper",
        discriminator_hidden_features=7,
        stochastic_threshold=True,
    )
    net = model.twin_bottleneck
    assert net.gamma == 1.0
    assert net.encoder.fc.in_features == model.backbone.out_features == 10
    assert net.encoder.fc.out_features == 24 and net.binary_bottleneck.fc.out_features == 6
    assert net.continuous_bottleneck.fc.out_features == 12
    assert net.decoder.output_activation == "identity" and net.decoder.fc_out.out_features == 10
    assert net.code_discriminator.net[0].out_features == 7
    assert net.binary_bottleneck.stochastic
    assert net.classifier is not None and net.classifier.out_features == 3
    assert model.automatic_optimization is False


def test_encode_is_b_at_one_half_as_pm1_and_forward_is_relaxed() -> None:
    model = make_tbh().eval()
    x = batches(20)[:][0]
    net = model.twin_bottleneck
    logits = net.binary_bottleneck.fc(torch.relu(net.encoder.fc(model.backbone(x))))
    prob = torch.sigmoid(logits)
    expected = torch.where(prob > 0.5, 1.0, -1.0)
    codes = model.encode(x)
    assert torch.equal(codes, expected)
    assert torch.allclose(model(x), 2 * prob - 1)
    assert model.predict_step((x,), 0).shape == (20, 6)


@pytest.mark.parametrize("lambda_cls", [0.0, 0.7])
def test_step_losses_equal_tbh_losses_with_the_same_draws(lambda_cls: float) -> None:
    model = make_tbh(lambda_cls=lambda_cls, lambda_adv=0.3, reconstruction_reduction="mean")
    x, y, _ = batches(16)[:]
    generator = model.generator(torch.device("cpu"))
    state = generator.get_state()
    _, step = model.step_losses(x, y)
    replay = torch.Generator().manual_seed(0)
    replay.set_state(state)
    features = model.backbone(x)
    output = model.twin_bottleneck(features, replay)
    reference = tbh_losses(
        model.twin_bottleneck,
        features,
        output,
        y,
        lambda_adv=0.3,
        lambda_cls=1.0,
        reduction="mean",
        generator=replay,
    )
    # the relative weight: lambda_cls times reconstruction / classification on this first batch
    assert reference.classification is not None
    weight = lambda_cls * reference.reconstruction / reference.classification
    expected = (
        reference.reconstruction
        - 0.3 * (reference.critic_code + reference.critic_continuous)
        + weight * reference.classification
    )
    assert step.actor.item() == pytest.approx(expected.item(), rel=1e-5)
    assert step.critic.item() == pytest.approx(reference.critic.item(), rel=1e-6)
    real = torch.sigmoid(model.twin_bottleneck.code_discriminator(output.b)).mean()
    assert step.code_fake.item() == pytest.approx(real.item(), rel=1e-6)


def test_lambda_cls_zero_leaves_the_classifier_out_of_the_loss_graph() -> None:
    x, y, _ = batches(16)[:]
    unsupervised = make_tbh(lambda_cls=0.0)
    _, step = unsupervised.step_losses(x, y)
    assert step.classification is None
    step.actor.backward()
    classifier = unsupervised.twin_bottleneck.classifier
    assert all(p.grad is None for p in classifier.parameters())
    assert unsupervised.twin_bottleneck.encoder.fc.weight.grad is not None
    assert not any(p is q for p in unsupervised.actor_parameters() for q in classifier.parameters())

    supervised = make_tbh(lambda_cls=1.0)
    _, step = supervised.step_losses(x, y)
    step.actor.backward()
    assert supervised.twin_bottleneck.classifier.weight.grad.abs().sum() > 0
    # the same seed builds the same network: lambda_cls alone separates the two methods
    for (name, a), (_, b) in zip(
        unsupervised.state_dict().items(), supervised.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b) or name == "cls_scale", name


def test_both_optimisers_step_every_batch_and_the_classifier_is_untouched_at_zero(
    tmp_path: Path,
) -> None:
    model = make_tbh(lambda_cls=0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(batches(48)))
    actor, critic = fit.optimizers
    for optimizer in (actor, critic):
        steps = {int(s["step"]) for s in optimizer.state_dict()["state"].values()}
        assert steps == {3}, steps
    assert len(critic.param_groups[0]["params"]) == len(model.critic_parameters())
    after = model.state_dict()
    assert fit.global_step == 2 * 3  # Lightning counts both optimisers' steps
    for key in before:
        changed = not torch.equal(before[key], after[key])
        if key.startswith("hash_layer.classifier") or key.startswith("backbone"):
            assert not changed, f"{key} must stay fixed"
        elif key.startswith(("hash_layer.", "pos_weight")) and before[key].numel():
            assert changed, f"{key} was not updated"


def test_resume_from_checkpoint_is_exact_and_holds_both_optimizer_states(
    tmp_path: Path,
) -> None:
    data = loader(batches(48))
    scheduler = partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    uninterrupted = make_tbh(scheduler=scheduler)
    trainer(tmp_path / "a", max_epochs=4).fit(uninterrupted, data)

    first = make_tbh(scheduler=scheduler)
    checkpoints = tmp_path / "ckpt"
    interrupted = trainer(
        tmp_path / "b",
        max_epochs=2,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=checkpoints, save_last=True)],
    )
    interrupted.fit(first, data)
    stored = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert len(stored["optimizer_states"]) == 2
    assert all(state["state"] for state in stored["optimizer_states"])
    assert len(stored["lr_schedulers"]) == 2
    assert "tbh_generator_state" in stored

    resumed = make_tbh(seed=123, scheduler=scheduler)
    continued = trainer(tmp_path / "c", max_epochs=4)
    continued.fit(resumed, data, ckpt_path=checkpoints / "last.ckpt")
    assert continued.current_epoch == 4 and continued.global_step == 4 * 3 * 2
    for (name, a), (_, b) in zip(
        uninterrupted.state_dict().items(), resumed.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), f"{name} differs after resuming"
    for opt_a, opt_b in zip(uninterrupted.optimizers(), resumed.optimizers(), strict=True):
        assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"] == 1e-3 / 16


class PoisonBatch(pl.Callback):
    """Writes NaN into the inputs of one batch of one epoch."""

    def __init__(self, epoch: int, batch_idx: int) -> None:
        self.epoch, self.batch_idx = epoch, batch_idx

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch_idx:
            batch[0].fill_(float("nan"))


def test_nan_loss_stops_the_run_naming_the_step_and_keeps_the_last_good_checkpoint(
    tmp_path: Path,
) -> None:
    model = make_tbh()
    checkpoints = tmp_path / "ckpt"
    fit = trainer(
        tmp_path,
        max_epochs=3,
        enable_checkpointing=True,
        callbacks=[ModelCheckpoint(dirpath=checkpoints, save_last=True), PoisonBatch(1, 1)],
    )
    expected = r"TBH: non-finite loss at global step 8 \(epoch 1, batch 1\): actor="
    with pytest.raises(NonFiniteLossError, match=expected):
        fit.fit(model, loader(batches(48)))
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    saved = torch.load(checkpoints / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 0 and saved["global_step"] == 6
    assert all(torch.isfinite(v).all() for v in saved["state_dict"].values())
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch=0-step=6.ckpt", "last.ckpt"]


def test_frozen_backbone_features_are_the_reconstruction_target(tmp_path: Path) -> None:
    model = make_tbh(backbone=MLP(SHAPE, hidden_dims=(10,), dropout=0.5))
    model.train()
    assert not model.backbone.training, "a frozen backbone must stay in eval mode"
    assert all(not p.requires_grad for p in model.backbone.parameters())
    x = batches(8)[:][0]
    features = model.features(x)
    assert not features.requires_grad
    assert torch.equal(model.reconstruction_target_of(x, features), model.backbone(x))
    ids = {id(p) for p in model.actor_parameters()}
    assert not any(id(p) in ids for p in model.backbone.parameters())


def test_input_target_trains_the_backbone_end_to_end() -> None:
    model = make_tbh(reconstruction_target="input", freeze_backbone=False)
    assert model.twin_bottleneck.decoder.fc_out.out_features == math.prod(SHAPE)
    x, y, _ = batches(8)[:]
    output, step = model.step_losses(x, y)
    assert output.x_hat.shape == (8, math.prod(SHAPE))
    target = 0.5 * (output.x_hat - x.flatten(1)).pow(2).sum()
    assert step.reconstruction.item() == pytest.approx(target.item(), rel=1e-6)
    step.actor.backward(inputs=model.actor_parameters())
    assert model.backbone.net[1].weight.grad.abs().sum() > 0
    ids = {id(p) for p in model.actor_parameters()}
    assert all(id(p) in ids for p in model.backbone.parameters())


def test_features_target_with_a_trainable_backbone_warns() -> None:
    with pytest.warns(UserWarning, match="collapse"):
        make_tbh(freeze_backbone=False)


def test_input_target_needs_a_backbone_that_knows_its_input() -> None:
    backbone = MLP(SHAPE)
    del backbone.input_shape
    with pytest.raises(ValueError, match="no input_shape attribute"):
        make_tbh(backbone=backbone, reconstruction_target="input")


def test_multi_label_positive_weights_come_from_the_training_labels() -> None:
    labels = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 1], [0, 0, 1], [1, 0, 0]]).float()
    model = make_tbh(multi_label=True)
    with pytest.raises(RuntimeError, match="prepare"):
        model.step_losses(batches(5)[:][0], labels)
    model.prepare(SimpleNamespace(train_labels=lambda: labels), Path("."))
    expected = []
    for c in range(3):
        positives = sum(1 for row in labels.tolist() if row[c] == 1)
        expected.append((len(labels) - positives) / positives)
    assert model.pos_weight.tolist() == pytest.approx(expected)
    x = batches(5)[:][0]
    output, step = model.step_losses(x, labels)
    logits = output.class_logits.double()
    by_hand = 0.0
    for i in range(5):
        for c in range(3):
            p = torch.sigmoid(logits[i, c]).item()
            y = labels[i, c].item()
            by_hand -= (expected[c] * y * math.log(p) + (1 - y) * math.log(1 - p)) / 3
    assert step.classification.item() == pytest.approx(by_hand, rel=1e-5)
    unweighted = make_tbh(multi_label=True, class_weighting="none")
    unweighted.prepare(SimpleNamespace(train_labels=lambda: labels), Path("."))
    assert unweighted.pos_weight.numel() == 0
    assert unweighted.step_losses(x, labels)[1].classification is not None


def test_positive_weights_load_from_a_checkpoint_without_prepare() -> None:
    labels = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 0, 1], [1, 0, 0]]).float()
    model = make_tbh(multi_label=True)
    model.prepare(SimpleNamespace(train_labels=lambda: labels), Path("."))
    checkpoint = {"state_dict": model.state_dict()}
    fresh = make_tbh(seed=5, multi_label=True)
    fresh.on_load_checkpoint(checkpoint)
    fresh.load_state_dict(checkpoint["state_dict"])
    assert fresh.pos_weight.tolist() == pytest.approx([1.0, 3.0, 1 / 3])


def test_training_logs_epoch_means_of_losses_and_discriminator_outputs(tmp_path: Path) -> None:
    model = make_tbh(optimizer=partial(torch.optim.SGD, lr=0.0), reconstruction_reduction="mean")
    data = batches(48)
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(data))
    logged = {k: float(v) for k, v in fit.callback_metrics.items()}
    net = model.twin_bottleneck
    reconstruction, fake, correct = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, 48, 16):
            x, y, _ = data[start : start + 16]
            features = model.backbone(x)
            output = net(features)
            for i in range(16):
                reconstruction += 0.5 * float(((output.x_hat[i] - features[i]) ** 2).sum())
                fake += float(torch.sigmoid(net.code_discriminator(output.b[i : i + 1])))
                correct += int(output.class_logits[i].argmax() == y[i])
    assert logged["train/reconstruction"] == pytest.approx(reconstruction / 48, rel=1e-5)
    assert logged["train/d_code_fake"] == pytest.approx(fake / 48, rel=1e-5)
    assert logged["train/classification_accuracy"] == pytest.approx(correct / 48)
    for key in ("d_code_real", "d_continuous_real", "d_continuous_fake", "critic_loss"):
        assert math.isfinite(logged[f"train/{key}"])


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("reconstruction_reduction", "none", "method.reconstruction_reduction='none'"),
        ("class_weighting", "inverse", "method.class_weighting='inverse'"),
        ("reconstruction_target", "pixels", "method.reconstruction_target='pixels'"),
        ("lambda_cls", -1.0, "method.lambda_cls must be"),
        ("lambda_adv", float("nan"), "method.lambda_adv must be"),
        ("gamma", 0.0, "gamma must be > 0"),
        ("decoder_activation", "tanh", "output_activation must be one of"),
        ("discriminator_depth", "deep", "depth must be one of"),
        ("critic_probability_clip", 0.5, "method.critic_probability_clip must be"),
    ],
)
def test_bad_values_are_rejected_early(key: str, value: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        make_tbh(**{key: value})


def composed_method(name: str) -> dict[str, Any]:
    """``method=<name>`` as Hydra composes it (unresolved)."""
    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"method={name}"])
    return OmegaConf.to_container(cfg.method)


def test_method_configs_cover_every_argument_and_differ_only_in_lambda_cls() -> None:
    # tbh_supervised is tbh plus its own two keys, by composition rather than a copy
    assert set(OmegaConf.load(CONF / "tbh_supervised.yaml")) == {"defaults", "name", "lambda_cls"}
    plain_s, plain_u = composed_method("tbh_supervised"), composed_method("tbh")
    assert plain_s["lambda_cls"] == 1.0 and plain_u["lambda_cls"] == 0.0
    assert (plain_s["name"], plain_u["name"]) == ("tbh_supervised", "tbh")
    differing = {k for k in plain_s if plain_s[k] != plain_u.get(k)}
    assert differing == {"name", "lambda_cls"} and plain_s.keys() == plain_u.keys()
    passed_by_pipeline = {"backbone", "bits", "num_classes", "multi_label", "kwargs", "self"}
    arguments = set(inspect.signature(TBH.__init__).parameters) - passed_by_pipeline
    arguments |= set(inspect.signature(TBH.__mro__[1].__init__).parameters) - passed_by_pipeline
    assert arguments <= set(plain_s) - {"_target_"}
    for key in ("gamma", "lambda_adv", "reconstruction_reduction", "freeze_backbone"):
        assert plain_s[key] == inspect.signature(TBH.__init__).parameters[key].default
    assert plain_s["optimizer"]["lr"] == 1e-4 and plain_s["optimizer"]["eps"] == 1e-7


def test_non_finite_gradient_with_finite_loss_also_stops_before_the_update(
    tmp_path: Path,
) -> None:
    model = make_tbh()
    weight = model.twin_bottleneck.decoder.fc_out.weight
    weight.register_hook(lambda grad: grad * float("inf"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"non-finite gradient at global step 0 "):
        trainer(tmp_path, max_epochs=1).fit(model, loader(batches(16)))
    for key, value in model.state_dict().items():
        # equal_nan: the supervised weight's scale stays unmeasured (NaN) after a refused step
        assert torch.allclose(value, before[key], rtol=0, atol=0, equal_nan=True), key


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_all_finite_agrees_with_isfinite_for_every_bad_entry_and_dtype(bad: float) -> None:
    gen = torch.Generator().manual_seed(0)
    tensors = [torch.randn(shape, generator=gen) for shape in [(7, 5), (3,), (), (64, 2)]]
    tensors.append(torch.randn(9, generator=gen).half())
    assert all_finite(tensors) and all_finite([])
    for which, tensor in enumerate(tensors):
        for position in (0, tensor.numel() - 1):
            poisoned = [t.clone() for t in tensors]
            poisoned[which].view(-1)[position] = bad
            assert not all_finite(poisoned), (which, position)
            assert not all(bool(torch.isfinite(t).all()) for t in poisoned)


def test_finite_gradients_whose_sum_overflows_do_not_stop_training(tmp_path: Path) -> None:
    model = make_tbh()
    weight = model.twin_bottleneck.decoder.fc_out.weight
    weight.register_hook(lambda grad: torch.full_like(grad, 3e38))  # finite; its sum is inf
    assert not all_finite([torch.full((4,), 3e38)])  # the fast check alone would say "maybe"
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(batches(16)))
    assert fit.global_step == 2 and torch.isfinite(weight).all()


# --- the supervised weight's scale, the preset's length, collapse diagnostics -----------------
def _features_model(width: int, **kwargs: Any) -> TBH:
    """TBH on (width,)-d features through an identity backbone (TBH's fixed-feature protocol)."""
    torch.manual_seed(0)
    return TBH(
        backbone=Identity((width,)),
        bits=6,
        num_classes=3,
        optimizer=partial(torch.optim.SGD, lr=0.0),
        **SMALL,
        **kwargs,
    )


def _initial_terms(model: TBH, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Per-sample reconstruction and cross-entropy of ``model`` on one batch, by hand."""
    with torch.no_grad():
        output = model.twin_bottleneck(x)
        recon = 0.5 * float(((output.x_hat - x) ** 2).sum(dim=1).mean())
        cls = float(torch.nn.functional.cross_entropy(output.class_logits, y))
    return recon, cls


@pytest.mark.parametrize("reference", ["reconstruction", "absolute"])
def test_supervised_weight_keeps_its_ratio_of_terms_when_features_are_padded_or_scaled(
    tmp_path: Path, reference: str
) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(32, 16, generator=gen)
    y = torch.randint(0, 3, (32,), generator=gen)
    # padded to 48-d with copies of the features (three times the squared error), or scaled x10
    variants = {"plain": x, "padded": torch.cat([x, x, x], 1), "scaled": 10 * x}
    ratios = {}
    for name, features in variants.items():
        model = _features_model(features.shape[1], lambda_cls=0.5, lambda_cls_reference=reference)
        recon, cls = _initial_terms(model, features[:16], y[:16])
        data = TensorDataset(features, y, torch.arange(32))
        trainer(tmp_path, max_epochs=1).fit(model, loader(data))  # two batches
        # the scale is the first batch's, kept for the second
        ratios[name] = model.classification_weight() * cls / recon
    if reference == "reconstruction":
        assert ratios == pytest.approx({name: 0.5 for name in variants}, rel=1e-4)
    else:  # the absolute weight's meaning moves with the input: what the relative one fixes
        assert ratios["scaled"] < ratios["plain"] / 5
        assert ratios["padded"] < ratios["plain"] / 2


@pytest.mark.parametrize("lambda_cls", [0.0, 0.5])
def test_actor_and_critic_split_the_parameters_by_name(lambda_cls: float) -> None:
    model = _features_model(8, lambda_cls=lambda_cls)
    names = {id(p): name for name, p in model.named_parameters()}
    actor = {names[id(p)] for p in model.actor_parameters()}
    critic = {names[id(p)] for p in model.critic_parameters()}
    discriminators = {n for n in names.values() if "discriminator" in n}
    classifier = {n for n in names.values() if n.startswith("hash_layer.classifier.")}
    assert classifier and discriminators and not actor & critic
    assert critic == discriminators
    # the classifier is built either way; only the supervised form trains it
    assert actor == set(names.values()) - discriminators - (classifier if not lambda_cls else set())


def test_tbh_fc7_preset_trains_the_released_100000_iterations(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=tbh_fc7"])
    model = make_tbh()
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(model, loader(batches(48)))  # 3 batches
    steps_per_iteration = fit.global_step / 3
    assert steps_per_iteration == 2  # actor and critic each count a step
    assert cfg.trainer.max_steps / steps_per_iteration == 100_000
    assert cfg.data.batch_size == 400 and cfg.method.optimizer.lr == 1e-4


def test_critic_probability_clip_reaches_the_losses() -> None:
    """The step's critic loss is Keras' clipped BCE when set: flat once a logit saturates."""
    model = make_tbh(lambda_cls=0.0, critic_probability_clip=1e-7)
    with torch.no_grad():  # a code critic so sure that every logit is beyond the clip
        model.twin_bottleneck.code_discriminator.net.bias.fill_(-40.0)
    x, y, _ = batches(16)[:]
    state = model.generator(torch.device("cpu")).get_state()
    _, step = model.step_losses(x, y)
    replay = torch.Generator().manual_seed(0)
    replay.set_state(state)
    features = model.backbone(x)
    output = model.twin_bottleneck(features, replay)
    clipped = tbh_losses(
        model.twin_bottleneck, features, output, lambda_cls=0.0, generator=replay,
        probability_clip=1e-7,
    )  # fmt: skip
    assert step.critic_code.item() == pytest.approx(clipped.critic_code.item(), rel=1e-6)
    # prior logits all -40: BCE(., 1) is 40 from logits, -log(2e-7) = 15.4 clipped
    assert step.critic_code.item() == pytest.approx(-math.log(2e-7), rel=1e-3)


def test_tbh_fc7_preset_trains_on_full_batches_only(tmp_path: Path) -> None:
    """The released pipeline (repeat, shuffle, batch) never yields a short batch; nor may ours."""
    import numpy as np
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    gen = np.random.default_rng(0)
    train_x = gen.random((1000, 6), dtype=np.float32)
    arrays = {"train_y": np.arange(1000) % 10, "test_x": train_x[:20], "test_y": np.arange(20) % 10}
    np.savez(tmp_path / "fc7.npz", train_x=train_x, **arrays)
    with initialize_config_dir(config_dir=str(CONF.parent), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=tbh_fc7"])
    data_cfg = OmegaConf.to_container(cfg.data, resolve=False)
    assert isinstance(data_cfg, dict)
    data_cfg.update(path=str(tmp_path / "fc7.npz"), split_dir=str(tmp_path), transform=None)
    datamodule = instantiate(data_cfg)
    datamodule.setup("fit")
    fit_size = len(datamodule.dataset("fit"))
    sizes = [len(batch[0]) for batch in datamodule.train_dataloader()]
    assert fit_size % 400 != 0  # a short last batch exists to be dropped
    assert sizes == [400] * (fit_size // 400)


def _collapse(model: TBH) -> TBH:
    """Every code all ones: zero binary-bottleneck weights and a positive bias."""
    with torch.no_grad():
        model.twin_bottleneck.binary_bottleneck.fc.weight.zero_()
        model.twin_bottleneck.binary_bottleneck.fc.bias.fill_(3.0)
    return model


@pytest.mark.parametrize("collapsed", [True, False])
def test_all_codes_equal_warns_on_a_collapsed_model_only(tmp_path: Path, collapsed: bool) -> None:
    model = make_tbh(optimizer=partial(torch.optim.SGD, lr=0.0))
    if collapsed:
        _collapse(model)
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, loader(batches(48)))
        balance = [CodeBalance(), RetrievalEvaluation(curves=False)]
        check = trainer(tmp_path, max_epochs=1, callbacks=balance)
        check.validate(model, [loader(batches(10, seed=1)), loader(batches(40, seed=2))])
    messages = [str(w.message) for w in caught]
    train_warned = any("collapsed to one code in every training batch" in m for m in messages)
    val_warned = any(
        "every val database code is the same code" in m and "method.lambda_adv" in m
        for m in messages
    )
    assert (train_warned, val_warned) == (collapsed, collapsed)
    logged = {k: float(v) for k, v in check.callback_metrics.items()}
    assert logged["val/all_codes_equal"] == float(collapsed)
    assert float(fit.callback_metrics["train/collapsed_batch"]) == float(collapsed)


def test_gradient_at_the_codes_shows_the_absorbing_state(tmp_path: Path) -> None:
    healthy, collapsed = make_tbh(), _collapse(make_tbh())
    x, y, _ = batches(16)[:]
    for model in (healthy, collapsed):
        output, step = model.step_losses(x, y)
        values = model.code_gradients(output, step)
        grad_recon = torch.autograd.grad(step.reconstruction, output.b, retain_graph=True)[0]
        assert float(values["grad_b_recon"]) == pytest.approx(float(grad_recon.norm()))
        assert float(values["grad_b_adv"]) > 0 and float(values["grad_b_cls"]) > 0
        model._last = values  # type: ignore[attr-defined]
    # identical codes: the graph is all ones whatever b is, so the reconstruction cannot move b
    assert float(collapsed._last["grad_b_recon"]) == 0.0  # type: ignore[attr-defined]
    assert math.isinf(float(collapsed._last["grad_b_adv_over_recon"]))  # type: ignore[attr-defined]
    ratio = healthy._last["grad_b_adv"] / healthy._last["grad_b_recon"]  # type: ignore[attr-defined]
    assert float(healthy._last["grad_b_adv_over_recon"]) == pytest.approx(float(ratio))  # type: ignore[attr-defined]
    fit = trainer(tmp_path, max_epochs=1)
    fit.fit(make_tbh(lambda_adv=0.0), loader(batches(48)))
    assert float(fit.callback_metrics["train/grad_b_adv"]) == 0.0
    assert float(fit.callback_metrics["train/grad_b_recon"]) > 0.0


def test_loaded_supervised_scale_is_used_without_being_measured_again(tmp_path: Path) -> None:
    trained = make_tbh(lambda_cls=0.5)
    trainer(tmp_path, max_epochs=1).fit(trained, loader(batches(48)))
    scale = float(trained.cls_scale)
    assert math.isfinite(scale)
    fresh = make_tbh(seed=7, lambda_cls=0.5)
    assert math.isnan(fresh.classification_weight())
    fresh.load_state_dict(trained.state_dict())
    assert fresh.classification_weight() == trained.classification_weight() == 0.5 * scale
    x, y, _ = batches(16, seed=4)[:]
    fresh.step_losses(x, y)
    assert fresh._measured_scale is None  # the loaded scale holds; nothing is re-measured


def test_a_single_collapsed_batch_does_not_warn_and_is_weighted_by_its_size(
    tmp_path: Path,
) -> None:
    import warnings

    model = make_tbh(optimizer=partial(torch.optim.SGD, lr=0.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = trainer(tmp_path, max_epochs=1)
        fit.fit(model, loader(batches(49)))  # 16 + 16 + 16 + 1: a one-item batch is one code
    assert not any("collapsed to one code" in str(w.message) for w in caught)
    assert float(fit.callback_metrics["train/collapsed_batch"]) == pytest.approx(1 / 49)
