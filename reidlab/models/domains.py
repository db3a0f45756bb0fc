"""Domain-specific BatchNorm (DSBN): one set of BatchNorm statistics and affine weights per domain.

Chang et al., "Domain-Specific Batch Normalization for Unsupervised Domain Adaptation", CVPR 2019, as
SpCL uses it for domain adaptation (``spcl/models/dsbn.py``; ``examples/spcl_train_uda.py`` converts its
model with ``convert_dsbn``). A labelled source dataset and the unlabelled target have different image
statistics (cameras, lighting, resolution); one BatchNorm for both normalises each with the statistics of
their mixture. With DSBN every BatchNorm layer of the backbone and of the neck has one BatchNorm per
domain, while every convolution is shared.

* :func:`convert_domain_batchnorm` turns a model's BatchNorm layers into :class:`DomainBatchNorm` layers,
  each domain starting from a copy of the layer's weights and running statistics (``convert_dsbn``).
* Inside :func:`domain_split`, a batch made of consecutive domain chunks (``source`` images first, then
  ``target`` images) goes through one forward pass, every chunk through its own domain's BatchNorms
  (SpCL puts the source half and the target half of its batch through ``DSBN2d`` the same way).
* Anywhere else (evaluation, feature extraction, a plain training forward) the default domain, the
  target, is used: the model deployed on the target is the target-domain model.

SpCL's ``DSBN2d`` always uses the target BatchNorm in eval mode and splits any training batch into two
halves; here the split is said explicitly (:func:`domain_split`), so a batch whose chunks differ in size
and an eval-mode forward of a chosen domain (:func:`use_domain`) work too. :func:`domain_model` makes a
plain model of one domain (SpCL's ``convert_bn``).

To be taught in notebook 06 (domain adaptation and camera-aware proxies).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

__all__ = [
    "DOMAINS",
    "DomainBatchNorm",
    "convert_domain_batchnorm",
    "domain_model",
    "domain_split",
    "has_domain_batchnorm",
    "use_domain",
]

DOMAINS = ("source", "target")
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


class DomainBatchNorm(nn.Module):
    """One BatchNorm layer per domain (DSBN); the route of the current batch picks which one(s) apply.

    Args:
        norm: the BatchNorm layer to specialise (``BatchNorm1d`` or ``BatchNorm2d``); every domain starts from
            a copy of it (weights, running statistics, and which parameters train: the BN neck keeps its bias
            frozen in every domain).
        domains: the domain names, in the order of :attr:`norms`.
        default: the domain of a forward pass outside :func:`domain_split` (the target).

    Attributes:
        norms: ``ModuleDict`` domain -> BatchNorm layer.
        route: ``((domain, size), ...)`` while inside :func:`domain_split`: the batch is that many rows of
            each domain, in this order; None otherwise.
    """

    def __init__(self, norm: nn.Module, domains: tuple[str, ...] = DOMAINS, default: str = "target") -> None:
        super().__init__()
        if not isinstance(norm, _BATCH_NORMS):
            raise TypeError(f"norm must be a BatchNorm1d or BatchNorm2d layer, got {type(norm).__name__}")
        if default not in domains:
            raise ValueError(f"default must be one of the domains {domains}, got {default!r}")
        self.norms = nn.ModuleDict({domain: copy.deepcopy(norm) for domain in domains})
        self.default = default
        self.route: tuple[tuple[str, int], ...] | None = None

    @property
    def domains(self) -> tuple[str, ...]:
        return tuple(self.norms)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise ``x (B, C, ...)``: every chunk of the route with its domain's BatchNorm."""
        if self.route is None:
            return self.norms[self.default](x)
        sizes = [size for _, size in self.route]
        if sum(sizes) != x.shape[0]:
            raise ValueError(f"the domain route {self.route} covers {sum(sizes)} rows, the batch has {x.shape[0]}")
        chunks = x.split(sizes)
        return torch.cat([self.norms[domain](chunk.contiguous()) for (domain, _), chunk in zip(self.route, chunks)])

    def extra_repr(self) -> str:
        return f"domains={self.domains}, default={self.default!r}"


def convert_domain_batchnorm(model: nn.Module, domains: tuple[str, ...] = DOMAINS,
                             default: str = "target") -> nn.Module:
    """Replace every BatchNorm layer of ``model`` (backbone and neck) by a :class:`DomainBatchNorm`, in place.

    Each domain starts from a copy of the layer (SpCL's ``convert_dsbn`` loads the layer's state into both
    ``BN_S`` and ``BN_T``), so the converted model computes what the original did until the domains are
    trained apart. reidlab's choice: a parameter that did not train (the BN neck's frozen bias) stays frozen
    in every domain; ``convert_dsbn`` builds fresh layers, which leaves the neck's bias trainable as a side
    effect.

    Returns:
        ``model`` itself.
    """
    if has_domain_batchnorm(model):
        raise ValueError("the model already has domain-specific BatchNorm layers")
    for name, child in list(model.named_children()):
        if isinstance(child, _BATCH_NORMS):
            setattr(model, name, DomainBatchNorm(child, domains, default))
        else:
            convert_domain_batchnorm(child, domains, default)
    return model


def has_domain_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` holds :class:`DomainBatchNorm` layers."""
    return any(isinstance(module, DomainBatchNorm) for module in model.modules())


def _layers(model: nn.Module) -> list[DomainBatchNorm]:
    layers = [module for module in model.modules() if isinstance(module, DomainBatchNorm)]
    if not layers:
        raise ValueError("the model has no domain-specific BatchNorm layers: convert it with "
                         "reidlab.models.convert_domain_batchnorm first")
    return layers


@contextmanager
def domain_split(model: nn.Module, sizes: Mapping[str, int]) -> Iterator[None]:
    """Inside the block, a forward pass of ``model`` takes a batch of consecutive domain chunks.

    Example: ``with domain_split(model, {"source": 32, "target": 32}): out = model(images)``, where the first 32
    images are source images and the last 32 target images; each chunk goes through its own domain's
    BatchNorms (in training mode: its own batch statistics, its own running averages).

    Args:
        model: a model converted by :func:`convert_domain_batchnorm` (or a module wrapping it, e.g. DDP's).
        sizes: domain -> number of rows, in batch order.
    """
    layers = _layers(model)
    unknown = [domain for domain in sizes if domain not in layers[0].norms]
    if unknown:
        raise ValueError(f"unknown domain(s) {unknown}; the model's domains are {layers[0].domains}")
    route = tuple((domain, int(size)) for domain, size in sizes.items())
    for layer in layers:
        layer.route = route
    try:
        yield
    finally:
        for layer in layers:
            layer.route = None


@contextmanager
def use_domain(model: nn.Module, domain: str) -> Iterator[None]:
    """Inside the block, forward passes of ``model`` use ``domain``'s BatchNorms (outside: the target's)."""
    layers = _layers(model)
    if domain not in layers[0].norms:
        raise ValueError(f"unknown domain {domain!r}; the model's domains are {layers[0].domains}")
    defaults = [layer.default for layer in layers]
    for layer in layers:
        layer.default = domain
    try:
        yield
    finally:
        for layer, default in zip(layers, defaults):
            layer.default = default


def domain_model(model: nn.Module, domain: str = "target") -> nn.Module:
    """A copy of ``model`` with plain BatchNorm layers: those of ``domain`` (SpCL's ``convert_bn``)."""
    plain = copy.deepcopy(model)
    _layers(plain)  # raises for a model without domain layers

    def collapse(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, DomainBatchNorm):
                if domain not in child.norms:
                    raise ValueError(f"unknown domain {domain!r}; the model's domains are {child.domains}")
                setattr(module, name, child.norms[domain])
            else:
                collapse(child)

    collapse(plain)
    return plain
