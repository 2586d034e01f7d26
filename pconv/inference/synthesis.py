"""Texture for large holes: patch synthesis steered by the network's fill.

The network gets a hole's structure and colour right on average but fills large holes
with a smooth, low-detail colour; patch-based synthesis copies real texture from the
photo's own known pixels but has no notion of what belongs where. :func:`synthesize`
combines them. It rebuilds each hole from patches of the known region, choosing for
every hole pixel the known patch that best matches a blend of

- the **guide**: the network's fill there (structure and colour), and
- the **texture being built**: the current estimate of the synthesis,

coarse to fine over an image pyramid, with expectation-maximisation steps as in Wexler,
Shechtman and Irani (*Space-Time Completion of Video*, PAMI 2007): match every hole
patch to its nearest known patch, then let each hole pixel take the weighted mean of
the matched patches that cover it. Nearest patches are found with PatchMatch (Barnes et
al., *PatchMatch: A Randomized Correspondence Algorithm for Structural Image Editing*,
SIGGRAPH 2009), run in parallel over all hole pixels (propagation by jumps of 8, 4, 2
and 1 pixels, then random search at halving radii), on patch descriptors: the patches'
projections on their first principal components, computed as one convolution. The
guide term is the guided synthesis of *Image Analogies* (Hertzmann et al., SIGGRAPH
2001) with the network's fill as the analogy's target; neural patch synthesis (Yang et
al., *High-Resolution Image Inpainting using Multi-Scale Neural Patch Synthesis*,
CVPR 2017) steers texture by a network's fill in the same spirit.

Only hole pixels change. The synthesized fill still has to meet the known pixels: the
Inpainter blends it into the hole's border afterwards (:mod:`pconv.inference.blending`).

Tensors: images ``(N, 3, H, W)`` with values in [0, 1]; ``mask`` ``(N, 1, H, W)`` with
1 = known, 0 = hole.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["synthesize"]

#: Side of the compared patches, in pixels at each pyramid level.
PATCH = 7
#: Principal components kept per patch descriptor (for the texture, and again for the guide).
COMPONENTS = 8
#: Weight of the guide (the network's fill) against the texture being built.
GUIDE_WEIGHT = 1.0
#: σ, in pixels of each level, of the blur under which the sources are compared with the guide.
GUIDE_BLUR = 3.0
#: σ, in pixels, of the spatial weight of a patch's votes around its centre: small, so
#: that each pixel mostly takes its own match's centre and texture is not averaged away.
VOTE_SPREAD = 0.5
#: Votes come from the patches centred up to this many pixels away.
VOTE_RADIUS = 1
#: The pyramid's coarsest level has its longer side at most this large.
COARSEST_SIDE = 64
#: Expectation-maximisation steps at the coarsest level, and at each finer one.
EM_STEPS = (4, 2)
#: PatchMatch rounds (propagation and random search) in each step.
PATCHMATCH_ROUNDS = 2
#: σ of the frequency split of the result: the guide's frequencies under it, the
#: synthesis's above it (0: the synthesis alone).
DETAIL_SPLIT = 2.0
#: Radius of the random search at the levels under the coarsest.
FINE_SEARCH_RADIUS = 8
#: Known pixels kept around each hole's box as the source of patches.
SOURCE_MARGIN = 96


def synthesize(image: Tensor, fill: Tensor, mask: Tensor, *, seed: int = 0) -> Tensor:
    """``fill`` with its holes rebuilt from patches of ``image``'s known pixels, steered
    by ``fill`` itself; its known pixels are ``fill``'s (composite it with ``image``).

    Args:
        image: ``(N, 3, H, W)``, the known pixels (values in holes are ignored).
        fill: ``(N, 3, H, W)``, the network's output: the guide.
        mask: ``(N, 1, H, W)``, 1 = known, 0 = hole.
        seed: seed of the random search; equal inputs and seeds give equal results.

    Returns float32 ``(N, 3, H, W)``. An image whose holes have no known patch in
    reach (too little known image around them) comes back as ``fill``.
    """
    image, fill, mask = image.float(), fill.float(), mask.float()
    result = fill.clone()
    generator = torch.Generator().manual_seed(seed)
    for i in range(len(fill)):
        hole = mask[i, 0] < 0.5
        if not hole.any():
            continue
        rows, columns = _region(hole, SOURCE_MARGIN)
        known = ~hole[rows, columns]
        composite = torch.where(known, image[i, :, rows, columns], fill[i, :, rows, columns])
        synthesized = _synthesize(composite, known, generator)
        result[i, :, rows, columns] = torch.where(known, result[i, :, rows, columns], synthesized)
    return result


def _region(hole: Tensor, margin: int) -> tuple[slice, slice]:
    """The rows and columns of ``hole``'s bounding box grown by ``margin`` pixels."""
    rows, columns = hole.any(dim=1).nonzero()[:, 0], hole.any(dim=0).nonzero()[:, 0]
    height, width = hole.shape
    return (
        slice(max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)),
        slice(max(0, int(columns[0]) - margin), min(width, int(columns[-1]) + 1 + margin)),
    )


def _synthesize(composite: Tensor, known: Tensor, generator: torch.Generator) -> Tensor:
    """``composite`` ``(3, H, W)`` (the known pixels, the guide in the hole) with its
    hole (``known`` False) synthesized, coarse to fine, then split by frequency: the
    guide's low frequencies, the synthesis's high ones (:data:`DETAIL_SPLIT`)."""
    match, coarser = None, None
    for guide, level_known in reversed(_pyramid(composite, known)):
        sources, target = _Sources(guide, level_known, generator), _Target(level_known)
        if not sources.count:
            return composite  # no known patch anywhere: keep the guide
        if coarser is None:
            match, estimate = sources.random(target.count), guide
        else:
            match = sources.snap(_upsampled_match(match, coarser, target))
            estimate = _vote(guide, target, match, torch.zeros(target.count))
        blurred_guide = _blur(guide, GUIDE_BLUR)
        for step in range(EM_STEPS[0] if coarser is None else EM_STEPS[1]):
            wanted = sources.wanted(estimate, blurred_guide)[:, target.index].T  # (K, C)
            # The first match follows the guide alone: the first estimate, the guide
            # itself, is smooth and would favour flat patches.
            first = coarser is None and step == 0
            match, distance = _patchmatch(
                wanted, match, target, sources, generator, coarsest=coarser is None, guide_only=first
            )
            estimate = _vote(guide, target, match, distance)
        coarser = target
    if DETAIL_SPLIT:
        detailed = _blur(composite, DETAIL_SPLIT) + estimate - _blur(estimate, DETAIL_SPLIT)
        estimate = torch.where(known, composite, detailed)
    return estimate


def _pyramid(composite: Tensor, known: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Levels ``(image (3, h, w), known (h, w))``, finest first, halving until the longer
    side is at most :data:`COARSEST_SIDE` (or the shorter one would fall under 2 patches).
    A coarse pixel is known only where all four finer ones are."""
    levels = [(composite, known)]
    while max(levels[-1][1].shape) > COARSEST_SIDE and min(levels[-1][1].shape) >= 4 * PATCH:
        image, known = levels[-1]
        coarse_image = F.avg_pool2d(image[None], 2, ceil_mode=True)[0]
        coarse_known = -F.max_pool2d(-known[None, None].float(), 2, ceil_mode=True)[0, 0] > 0.5
        levels.append((coarse_image, coarse_known))
    return levels


class _Target:
    """The hole pixels of one level: their flat indices and coordinates."""

    def __init__(self, known: Tensor) -> None:
        self.shape = known.shape
        self.index = (~known).flatten().nonzero()[:, 0]
        self.rows, self.columns = self.index // known.shape[1], self.index % known.shape[1]
        self.count = len(self.index)
        self.slot = torch.full((known.numel(),), -1, dtype=torch.long)  # flat index → target number
        self.slot[self.index] = torch.arange(self.count)


class _Sources:
    """The known patches of one level (centres whose whole patch is known and inside the
    image) and the descriptors of patches."""

    def __init__(self, image: Tensor, known: Tensor, generator: torch.Generator) -> None:
        self.shape = known.shape
        self.image, self.generator = image, generator
        radius = PATCH // 2
        whole = -F.max_pool2d(-known[None, None].float(), PATCH, stride=1, padding=radius)[0, 0] > 0.5
        whole[:radius], whole[-radius:], whole[:, :radius], whole[:, -radius:] = False, False, False, False
        self.valid = whole
        self.index = whole.flatten().nonzero()[:, 0]
        self.count = len(self.index)
        if self.count:
            self.basis = self._principal_components()
            features = self.wanted(image, _blur(image, GUIDE_BLUR)).T  # (H·W, C)
            self.features = features.contiguous()
            self.guide_features = features[:, COMPONENTS:].contiguous()

    def wanted(self, texture: Tensor, guide: Tensor) -> Tensor:
        """Descriptors ``(2·COMPONENTS, H·W)`` of patches of ``texture`` and of the blurred
        ``guide``, the guide's weighted by :data:`GUIDE_WEIGHT`. Sources are described by
        their own pixels and their blurred pixels: the guide, smooth like the network's
        fill, is compared with the sources' blur, so it steers structure and colour and
        does not favour flat patches."""
        return torch.cat([self.describe(texture), GUIDE_WEIGHT**0.5 * self.describe(guide)])

    def _principal_components(self) -> Tensor:
        """``(COMPONENTS, 3, PATCH, PATCH)``: the main directions of the known patches."""
        picks = self.random(min(self.count, 4096))
        offsets = torch.arange(PATCH) - PATCH // 2
        rows = (picks // self.shape[1])[:, None, None] + offsets[None, :, None]  # (P, PATCH, 1)
        columns = (picks % self.shape[1])[:, None, None] + offsets[None, None, :]  # (P, 1, PATCH)
        patches = (
            self.image[:, rows, columns].permute(1, 0, 2, 3).flatten(1)
        )  # (P, 3·PATCH²), as conv weights
        patches = patches - patches.mean(dim=0)
        _, vectors = torch.linalg.eigh(patches.T @ patches)
        components = min(COMPONENTS, vectors.shape[1])
        return vectors[:, -components:].T.reshape(components, 3, PATCH, PATCH).contiguous()

    def describe(self, image: Tensor) -> Tensor:
        """Every pixel's patch descriptor, ``(C, H·W)``."""
        padded = F.pad(image[None], (PATCH // 2,) * 4, mode="replicate")
        return F.conv2d(padded, self.basis)[0].flatten(1)

    def random(self, count: int) -> Tensor:
        """``count`` random source centres (flat indices)."""
        return self.index[torch.randint(self.count, (count,), generator=self.generator)]

    def snap(self, centres: Tensor) -> Tensor:
        """``centres`` (flat indices), each replaced by a random source where it is none."""
        bad = ~self.valid.flatten()[centres]
        if bad.any():
            centres = centres.clone()
            centres[bad] = self.random(int(bad.sum()))
        return centres


def _blur(image: Tensor, sigma: float) -> Tensor:
    """``image`` ``(3, H, W)`` blurred by a Gaussian of σ = ``sigma`` pixels."""
    radius = math.ceil(3 * sigma)
    taps = torch.exp(-torch.arange(-radius, radius + 1).float().square() / (2 * sigma**2))
    taps = (taps / taps.sum()).expand(3, 1, 1, -1)
    padded = F.pad(image[None], (radius,) * 4, mode="replicate")
    rows = F.conv2d(padded, taps, groups=3)
    return F.conv2d(rows, taps.transpose(2, 3), groups=3)[0]


def _upsampled_match(match: Tensor, coarse: _Target, fine: _Target) -> Tensor:
    """The coarse level's matches carried to the fine level's hole pixels: each fine pixel
    takes its coarse parent's match, doubled, plus its own offset in the parent."""
    width = coarse.shape[1]
    parent_rows = (fine.rows // 2).clamp(max=coarse.shape[0] - 1)
    parent = parent_rows * width + (fine.columns // 2).clamp(max=width - 1)
    slot = coarse.slot[parent]
    has_parent = slot >= 0
    source = match[slot.clamp(min=0)]
    rows = (source // width) * 2 + fine.rows % 2
    columns = (source % width) * 2 + fine.columns % 2
    rows = rows.clamp(max=fine.shape[0] - 1)
    columns = columns.clamp(max=fine.shape[1] - 1)
    centres = rows * fine.shape[1] + columns
    return torch.where(has_parent, centres, torch.zeros_like(centres))  # no parent: snapped later


def _patchmatch(
    wanted: Tensor,
    match: Tensor,
    target: _Target,
    sources: _Sources,
    generator: torch.Generator,
    *,
    coarsest: bool,
    guide_only: bool,
) -> tuple[Tensor, Tensor]:
    """Improve ``match`` (a source centre per target pixel) for the descriptors ``wanted``
    ``(K, C)``; returns it and the squared descriptor distances. At the coarsest level,
    matches start at random: propagation jumps far and the search spans the image; finer
    levels start from the coarser matches and only refine them nearby. ``guide_only``
    compares the guide's part of the descriptors alone."""
    height, width = sources.shape
    features = sources.guide_features if guide_only else sources.features
    if guide_only:
        wanted = wanted[:, COMPONENTS:].contiguous()
    valid = sources.valid.flatten()
    distance = (features[match] - wanted).square().sum(dim=1)

    def consider(candidates: Tensor) -> None:
        nonlocal match, distance
        candidates = torch.where(valid[candidates], candidates, match)
        new = (features[candidates] - wanted).square().sum(dim=1)
        better = new < distance
        match, distance = torch.where(better, candidates, match), torch.where(better, new, distance)

    rows, columns = target.rows, target.columns
    for _ in range(PATCHMATCH_ROUNDS):
        for jump in (8, 4, 2, 1) if coarsest else (2, 1):
            for dy, dx in ((jump, 0), (-jump, 0), (0, jump), (0, -jump)):
                # The neighbour's match, moved back by the step between them.
                neighbour_rows, neighbour_columns = rows + dy, columns + dx
                inside = (neighbour_rows >= 0) & (neighbour_rows < height)
                inside &= (neighbour_columns >= 0) & (neighbour_columns < width)
                neighbour = neighbour_rows.clamp(0, height - 1) * width + neighbour_columns.clamp(
                    0, width - 1
                )
                slot = target.slot[neighbour]
                usable = inside & (slot >= 0)
                source = match[slot.clamp(min=0)]
                source_rows, source_columns = source // width - dy, source % width - dx
                usable &= (source_rows >= 0) & (source_rows < height)
                usable &= (source_columns >= 0) & (source_columns < width)
                candidates = source_rows.clamp(0, height - 1) * width + source_columns.clamp(0, width - 1)
                consider(torch.where(usable, candidates, match))
        radius = max(height, width) if coarsest else FINE_SEARCH_RADIUS
        while radius >= 1:
            shift = torch.randint(-radius, radius + 1, (2, len(match)), generator=generator)
            source_rows = (match // width + shift[0]).clamp(0, height - 1)
            source_columns = (match % width + shift[1]).clamp(0, width - 1)
            consider(source_rows * width + source_columns)
            radius //= 2
    return match, distance


def _vote(image: Tensor, target: _Target, match: Tensor, distance: Tensor) -> Tensor:
    """``image`` with each hole pixel set to the weighted mean of what the matches of the
    hole pixels up to :data:`VOTE_RADIUS` away put there: weight exp(-distance / 2σ²)
    per match, σ² the 75th percentile of the distances (Wexler et al.), times a Gaussian
    of the offset of σ = :data:`VOTE_SPREAD`."""
    height, width = target.shape
    scale = distance.quantile(0.75).clamp(min=1e-8)
    weight = torch.exp(-distance / (2 * scale))
    flat = image.flatten(1)
    total = torch.zeros_like(flat)
    weights = torch.zeros(height * width)
    match_rows, match_columns = match // width, match % width
    for dy in range(-VOTE_RADIUS, VOTE_RADIUS + 1):
        for dx in range(-VOTE_RADIUS, VOTE_RADIUS + 1):
            rows, columns = target.rows + dy, target.columns + dx
            inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
            destination = (rows * width + columns)[inside]
            source = ((match_rows + dy) * width + match_columns + dx)[inside]
            vote = weight[inside] * math.exp(-(dy * dy + dx * dx) / (2 * VOTE_SPREAD**2))
            total.index_add_(1, destination, flat[:, source] * vote)
            weights.index_add_(0, destination, vote)
    result = flat.clone()
    hole = target.index
    result[:, hole] = total[:, hole] / weights[hole].clamp(min=1e-12)
    return result.reshape(image.shape)
