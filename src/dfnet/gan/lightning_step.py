"""The GAN part of a training step (optional, not in the paper): the discriminator, its optimiser and the
manual-optimisation step that trains both networks.

:class:`~dfnet.training.module.DFNetLightning` owns one :class:`AdversarialTraining` when
``discriminator.enabled`` and then switches Lightning to manual optimisation. One training batch:

1. the generator's forward pass and its paper losses (:class:`~dfnet.losses.DFNetLoss`);
2. one discriminator step on the real images and the detached composite (known pixels from the input,
   hole pixels from the finest result), through the *raw* discriminator optimiser;
3. the generator's adversarial terms against the updated discriminator, added to its loss; one backward,
   optional gradient-norm clipping (``optim.grad_clip``) and one step through Lightning's optimiser;
4. the generator's learning-rate schedule stepped by hand (Lightning leaves it to the module in manual mode):
   after every step for ``optim.lr_step_unit=step``, after an epoch's last batch for ``epoch``. Both happen where
   Lightning's automatic optimisation does them, before the ``on_train_batch_end`` callbacks that write
   checkpoints, so a checkpoint holds the same schedule state with or without the discriminator.

Only the generator's step goes through Lightning's ``LightningOptimizer``, and Lightning counts those as
``global_step``; so ``trainer.max_steps``, the checkpoint and image intervals and the LR schedule keep counting
generator steps (one per batch), exactly as without the discriminator. The price: the discriminator's step
bypasses the precision plugin, so ``16-mixed`` (which needs a gradient scaler) is refused; ``bf16-mixed`` and
``32`` need none. The discriminator's learning rate starts at ``discriminator.lr`` and follows the generator's
schedule (both decay by ``optim.lr_decay`` every ``optim.lr_step``); for the first ``discriminator.start_step``
steps the generator trains on the paper losses alone (a warm-up) and the discriminator waits.

Lazy R1 (``discriminator.r1_every``) counts discriminator steps, which equal ``global_step`` (one per batch),
so a resumed run applies it on the same steps as an uninterrupted one.

Under DDP each backward pass reaches one network only, so DDP must be told to find the unused parameters
(:func:`dfnet.training.fit.ddp_strategy`).

The step reads the Lightning module's ``model``, ``criterion`` and ``config`` attributes (those of
:class:`~dfnet.training.module.DFNetLightning`); it takes any ``LightningModule`` that has them, so this
package does not import the training package that uses it.
"""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch import Tensor

from dfnet.gan.discriminator import DiscriminatorConfig, PatchDiscriminator, build_discriminator_optimizer
from dfnet.gan.objectives import adversarial_step
from dfnet.model import composite


class AdversarialTraining:
    """The discriminator of a run and the manual-optimisation step that trains it with the generator."""

    def __init__(self, config: DiscriminatorConfig) -> None:
        self.config = config
        self.discriminator = PatchDiscriminator(config)

    def optimizer(self) -> torch.optim.Adam:
        """The discriminator's own Adam (``discriminator.lr``, ``discriminator.betas``)."""
        return build_discriminator_optimizer(self.discriminator, self.config)

    def training_step(
        self, module: pl.LightningModule, image: Tensor, hole_mask: Tensor
    ) -> dict[str, Tensor]:
        """One discriminator and one generator update on a batch; returns every loss term (``total``: the
        generator's whole loss), detached."""
        generator_optimizer, discriminator_optimizer = module.optimizers()
        output = module.model(image, hole_mask)
        terms = module.criterion(output.results, image, hole_mask)
        total, gan_terms = terms["total"], {}
        if module.trainer.global_step >= self.config.start_step:  # after the generator-only warm-up
            fake = composite(image, output.results[0].to(image.dtype), hole_mask)
            gan_terms = adversarial_step(
                self.discriminator,
                discriminator_optimizer.optimizer,  # raw: global_step counts generator steps only
                image,
                fake,
                hole_mask,
                self.config,
                step=module.trainer.global_step,
                backward=module.manual_backward,
            )
            total = total + gan_terms.pop("adversarial_total")
        generator_optimizer.zero_grad(set_to_none=True)
        module.manual_backward(total)
        clip = module.config.optim.grad_clip
        if clip is not None:
            module.clip_gradients(generator_optimizer, gradient_clip_val=clip, gradient_clip_algorithm="norm")
        generator_optimizer.step()
        if module.config.optim.lr_step_unit == "step" or epoch_ends_with_this_batch(module.trainer):
            step_schedule(module)
        return {**{k: v.detach() for k, v in terms.items()}, **gan_terms, "total": total.detach()}


def step_schedule(module: pl.LightningModule) -> None:
    """Step the generator's and the discriminator's learning-rate schedules once (manual optimisation leaves
    them to the module); they step together, through the warm-up too, so the two rates keep their ratio."""
    schedulers = module.lr_schedulers()
    for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
        if scheduler is not None:
            # in the warm-up the discriminator's optimiser has not stepped yet: torch warns about the order
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
                scheduler.step()


def epoch_ends_with_this_batch(trainer: pl.Trainer) -> bool:
    """Whether the batch being trained is the epoch's last (Lightning's own test before stepping epoch schedules)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    return progress.is_last_batch or progress.current.ready == trainer.num_training_batches


__all__ = ["AdversarialTraining", "epoch_ends_with_this_batch", "step_schedule"]
