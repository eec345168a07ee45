"""The LightningModule: DFNet, its multi-scale loss, validation metrics and the optimiser."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from dfnet.checkpoint import init_from_weights
from dfnet.gan.lightning_step import AdversarialTraining
from dfnet.losses import DFNetLoss
from dfnet.metrics import per_image_bpe_sums, per_image_l1, per_image_psnr
from dfnet.model import DFNet, DFNetConfig, DFNetOutput, composite, set_initial_alpha
from dfnet.training.config import ConfigError, TrainConfig, plain
from dfnet.vgg import VGG16Features, load_vgg16_features

log = logging.getLogger(__name__)


class DFNetLightning(pl.LightningModule):
    """DFNet training: multi-scale losses on every batch, L1/BPE/PSNR on the fixed validation set.

    Batches are dicts ``{"image": (B,3,H,W) in [0,1], "hole_mask": (B,1,H,W), 1 = hole, ...}``. Only the
    DFNet weights are in ``state_dict`` (keys ``model.*``): the frozen VGG is rebuilt from its file.
    With ``discriminator.enabled`` the module also trains a discriminator (:mod:`dfnet.gan.lightning_step`,
    manual optimisation, keys ``discriminator.*``, a second optimiser).
    """

    def __init__(
        self, config: TrainConfig, vgg: VGG16Features | None = None, initialise: bool = True
    ) -> None:
        """``initialise=False`` skips ``config.init_weights`` (a resumed run loads its own checkpoint)."""
        super().__init__()
        self.config = config
        self.model = DFNet(config.model)
        if config.initial_alpha is not None and initialise:
            set_initial_alpha(self.model, config.initial_alpha)
        if config.init_weights and initialise:
            loaded, left = init_from_weights(self.model, config.init_weights)
            log.info(
                "initialised %d tensors from %s; %d keep their fresh initialisation",
                len(loaded),
                config.init_weights,
                len(left),
            )
        if vgg is None and config.loss.needs_vgg:
            vgg = load_vgg16_features(config.vgg.weights, config.vgg.allow_random)
        self.criterion = DFNetLoss(config.loss, vgg)
        self.adversarial: AdversarialTraining | None = None
        self.discriminator: torch.nn.Module | None = None
        if config.discriminator.enabled:
            self.adversarial = AdversarialTraining(config.discriminator)
            self.discriminator = self.adversarial.discriminator  # a submodule: moved, saved and restored
            self.automatic_optimization = False
        self._val_sums: Tensor | None = None
        self._train_terms = self._loss_terms  # replaced by its compiled version in on_fit_start

    # -- state: DFNet (and the discriminator) -----------------------------------------------
    def _trained_networks(self) -> dict[str, torch.nn.Module]:
        networks = {"model": self.model}
        if self.discriminator is not None:
            networks["discriminator"] = self.discriminator
        return networks

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The DFNet weights as ``model.<key>``, the discriminator's as ``discriminator.<key>`` (the VGG is an
        external, frozen asset)."""
        return {
            f"{name}.{k}": v
            for name, network in self._trained_networks().items()
            for k, v in network.state_dict(*args, **kwargs).items()
        }

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load ``model.<key>`` entries into the DFNet and ``discriminator.<key>`` into the discriminator."""
        results = []
        for name, network in self._trained_networks().items():
            prefix = f"{name}."
            inner = {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
            results.append(network.load_state_dict(inner, strict=strict, assign=assign))
        return results[0]  # the DFNet's missing and unexpected keys

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["dfnet_config"] = plain(self.model.config.to_dict())
        checkpoint["train_config"] = self.config.to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("dfnet_config")
        if saved is not None and DFNetConfig.from_dict(saved) != self.model.config:
            raise ConfigError(
                f"the checkpoint was trained with model config {saved}, "
                f"but this run's model config is {plain(self.model.config.to_dict())}"
            )
        has_discriminator = any(k.startswith("discriminator.") for k in checkpoint.get("state_dict", {}))
        if has_discriminator != (self.discriminator is not None):
            raise ConfigError(
                "cannot resume: the checkpoint was trained "
                + ("with" if has_discriminator else "without")
                + f" a discriminator and this run has discriminator.enabled={self.discriminator is not None}; "
                "start a new run from its weights with init_weights instead"
            )
        # The decay schedule follows this run's config, not the checkpoint's, so a resumed run can be
        # given another one (optim.lr_step / optim.lr_decay); step count and current lr are restored.
        for scheduler_state in checkpoint.get("lr_schedulers", []):
            scheduler_state["step_size"] = self.config.optim.lr_step
            scheduler_state["gamma"] = self.config.optim.lr_decay

    # -- steps ---------------------------------------------------------------------------------
    def _inputs(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        image, hole_mask = batch["image"], batch["hole_mask"]
        if self.config.trainer.channels_last:
            image = image.contiguous(memory_format=torch.channels_last)
            hole_mask = hole_mask.contiguous(memory_format=torch.channels_last)
        return image, hole_mask

    def forward(self, image: Tensor, hole_mask: Tensor) -> DFNetOutput:
        return self.model(image, hole_mask)

    def _loss_terms(self, image: Tensor, hole_mask: Tensor) -> dict[str, Tensor]:
        """Forward through every fusion block and the multi-scale loss (the part ``trainer.compile`` compiles)."""
        return self.criterion(self.model(image, hole_mask).results, image, hole_mask)

    def training_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> Tensor | None:
        image, hole_mask = self._inputs(batch)
        if self.adversarial is not None:  # manual optimisation: both networks stepped inside
            terms = self.adversarial.training_step(self, image, hole_mask)
        else:
            terms = self._train_terms(image, hole_mask)
        size = image.shape[0]
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items() if k != "total"}, batch_size=size)
        self.log("train/loss", terms["total"].detach(), prog_bar=True, on_epoch=True, batch_size=size)
        return terms["total"] if self.automatic_optimization else None

    def on_validation_epoch_start(self) -> None:
        # l1 sum, psnr sum, image count, BPE error sum, BPE pixel count
        self._val_sums = torch.zeros(5, dtype=torch.float64, device=self.device)

    def validation_step(self, batch: Mapping[str, Tensor], batch_idx: int) -> None:
        image, hole_mask = self._inputs(batch)
        result = composite(image, self.model.complete(image, hole_mask).to(image.dtype), hole_mask)
        bpe_error, bpe_pixels = per_image_bpe_sums(result, image, hole_mask)
        batch_sums = [
            per_image_l1(result, image).sum(),
            per_image_psnr(result, image).sum(),
            torch.tensor(float(image.shape[0]), device=image.device),
            bpe_error.sum(),
            bpe_pixels.sum(),
        ]
        self._val_sums += torch.stack([s.double() for s in batch_sums])

    def on_validation_epoch_end(self) -> None:
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        if sums[2] == 0:
            return
        metrics = {"val/l1": sums[0] / sums[2], "val/psnr": sums[1] / sums[2]}
        if sums[4] > 0:
            metrics["val/bpe"] = sums[3] / sums[4]
        self.log_dict({k: v.float() for k, v in metrics.items()}, prog_bar=True, sync_dist=False)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self) -> dict[str, Any] | tuple[list[Any], list[Any]]:
        """Adam with the step schedule for the DFNet; with a discriminator, its Adam and the same schedule second."""
        cfg = self.config.optim
        optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=cfg.lr,
            betas=tuple(cfg.betas),
            weight_decay=cfg.weight_decay,
            fused=cfg.fused or None,
        )
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_decay)
        if self.adversarial is not None:  # manual optimisation: the module steps both schedules itself
            discriminator_optimizer = self.adversarial.optimizer()
            discriminator_scheduler = torch.optim.lr_scheduler.StepLR(
                discriminator_optimizer, step_size=cfg.lr_step, gamma=cfg.lr_decay
            )
            schedulers = [
                {"scheduler": scheduler, "name": "lr"},
                {"scheduler": discriminator_scheduler, "name": "lr_discriminator"},
            ]
            return [optimizer, discriminator_optimizer], schedulers
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": cfg.lr_step_unit,
                "frequency": 1,
                "name": "lr",
            },
        }

    def on_fit_start(self) -> None:
        if self.config.trainer.channels_last:
            self.model.to(memory_format=torch.channels_last)
            if self.discriminator is not None:
                self.discriminator.to(memory_format=torch.channels_last)
            if self.criterion.vgg is not None:
                self.criterion.vgg.to(memory_format=torch.channels_last)
        if self.config.trainer.compile:
            self._train_terms = torch.compile(self._loss_terms)
