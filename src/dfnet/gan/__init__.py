"""The optional adversarial training (not in the paper), all in one place.

- :mod:`~dfnet.gan.discriminator`: its config section (``discriminator.*``), the patch discriminator and
  its optimiser;
- :mod:`~dfnet.gan.objectives`: the adversarial, feature-matching and R1 losses and the discriminator and
  generator updates of one batch;
- :mod:`~dfnet.gan.lightning_step`: the manual-optimisation training step that
  :class:`~dfnet.training.module.DFNetLightning` runs when ``discriminator.enabled`` (imports Lightning,
  so it is not re-exported here).
"""

from dfnet.gan.discriminator import (
    DiscriminatorConfig,
    DiscriminatorOutput,
    PatchDiscriminator,
    build_discriminator_optimizer,
)
from dfnet.gan.objectives import (
    adversarial_step,
    discriminator_loss,
    discriminator_step,
    feature_matching_loss,
    generator_adversarial_loss,
    generator_adversarial_terms,
    r1_penalty,
)

__all__ = [
    "DiscriminatorConfig",
    "DiscriminatorOutput",
    "PatchDiscriminator",
    "adversarial_step",
    "build_discriminator_optimizer",
    "discriminator_loss",
    "discriminator_step",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "generator_adversarial_terms",
    "r1_penalty",
]
