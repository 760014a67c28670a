"""The two models the course compares: a conditional VAE and an auxiliary-classifier GAN.

- :class:`ConditionalVAE` (``vae.py``) maximises the evidence lower bound of the paper's Eq. (1),
  estimated with ``L`` reparameterised samples as in Eqs. (2)-(3), with a diagonal Gaussian
  encoder q(z|x, y), a standard normal prior and a Bernoulli (binary images) or Gaussian (colour
  images) decoder p(x|z, y). An optional ``beta`` weighs the KL term.
- :class:`ACGAN` (``acgan.py``) plays the game of Eq. (6): the discriminator ascends Eq. (8) and
  also names the class; the generator uses the non-saturating form of Eq. (7) by default.

Both are built from one description of the architecture (``architecture.py``) and share the
sampling API (``conditional.py``). Labels are class indices ``(B,)`` (one-hot encoded inside the
models), or multi-hot vectors ``(B, K)`` for several CelebA attributes at once. Every sampling
helper returns images in [0, 1], whatever range the model trains on.

Written by students in notebook 03; trained in notebooks 04 (MNIST), 05 (GANs that fail), 06
(CIFAR-10) and 07 (CelebA).
"""
from ..data import MAX_SIDE, MIN_SIDE
from ..fast_layers import MaskDropout
from .acgan import ACGAN, GAN_LOSSES
from .architecture import MAX_START, Architecture, build_downsampler, build_upsampler
from .conditional import gradient_step
from .vae import LIKELIHOODS, ConditionalVAE

__all__ = [
    "ACGAN", "Architecture", "ConditionalVAE", "GAN_LOSSES", "LIKELIHOODS", "MAX_SIDE",
    "MAX_START", "MIN_SIDE", "MaskDropout", "build_downsampler", "build_upsampler", "gradient_step",
]
