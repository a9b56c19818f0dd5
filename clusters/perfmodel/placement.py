"""Candidate internal uses of the capacity (docs/model.md, "Value, placements and break-evens").

Each candidate is a subset of the pools plus a sync algorithm and a batch split. All candidates
share the scenario's topology, so they are evaluated as one vectorized batch: a pool left out
simply gets ``gpus = 0``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .model import SPLIT_CODES, SYNC_CODES, Inputs, inputs_of
from .scenario import Scenario, SplitMode, SyncMode


@dataclass(frozen=True)
class Placement:
    """One candidate: which pools (indices into scenario.pools), how they sync and split."""

    key: str
    description: str
    pools: tuple[int, ...]
    sync: SyncMode
    split: SplitMode


def candidate_placements(scenario: Scenario) -> list[Placement]:
    """Every candidate internal use, the scenario as given first.

    Candidates: all pools as configured; all pools with the speed-proportional split (if the
    configured split is equal); all sites hierarchical (if configured flat ring); all sites with
    DiLoCo (if there are several sites); each site alone; each pair of sites (three or more
    sites); where some pools are leased, the leased pools only and the capacity not under lease
    only (across sites and per site: the baseline a reclaim is measured against); each
    accelerator model alone across sites; every subset of generations (two or more, short of
    all) across sites, with DiLoCo too when it spans sites; every subset of sites (two or more,
    short of all), as configured and with DiLoCo; each accelerator model within each site that
    has several. Duplicates (same pools, sync and split) are dropped, first wins. The search is
    complete over sites and generations (2^S + 2^G subsets), not over arbitrary pool subsets.
    """
    w = scenario.workload
    n = len(scenario.pools)
    everything = tuple(range(n))
    sites = scenario.sites
    sync = w.sync
    split = w.batch_split
    # Inside one site there is nothing for DiLoCo to save; use plain hierarchical DP there.
    local_sync: SyncMode = "hierarchical" if sync == "diloco" else sync

    cands: list[Placement] = [
        Placement("all", f"all pools, {sync}, {split} split (as given)", everything, sync, split)
    ]
    if split == "equal":
        cands.append(
            Placement(
                "all/proportional",
                f"all pools, {sync}, proportional split",
                everything,
                sync,
                "proportional",
            )
        )
    if len(sites) > 1:
        if sync == "flat_ring":
            cands.append(
                Placement(
                    "all/hierarchical",
                    "all pools, hierarchical sync",
                    everything,
                    "hierarchical",
                    split,
                )
            )
        cands.append(
            Placement(
                "all/diloco",
                f"all pools, DiLoCo across sites (H={w.diloco_inner_steps})",
                everything,
                "diloco",
                split,
            )
        )
    for site in sites:
        idx = tuple(i for i, p in enumerate(scenario.pools) if p.site == site)
        cands.append(Placement(f"site:{site}", f"{site} alone", idx, local_sync, split))
        mixed = len({scenario.pools[i].accelerator for i in idx}) > 1
        if mixed and split == "equal":
            cands.append(
                Placement(
                    f"site:{site}/proportional",
                    f"{site} alone, proportional split",
                    idx,
                    local_sync,
                    "proportional",
                )
            )
    # Every subset of two or more sites (not only pairs), as configured and with DiLoCo.
    for size in range(2, len(sites)):
        for group in combinations(sites, size):
            idx = tuple(i for i, p in enumerate(scenario.pools) if p.site in group)
            key = "+".join(group)
            cands.append(
                Placement(f"sites:{key}", f"{' and '.join(group)} together", idx, sync, split)
            )
            if sync != "diloco":
                cands.append(
                    Placement(
                        f"sites:{key}/diloco",
                        f"{' and '.join(group)}, DiLoCo across sites",
                        idx,
                        "diloco",
                        split,
                    )
                )
    leased = tuple(i for i, p in enumerate(scenario.pools) if p.leased)
    if leased:
        one_site = len({scenario.pools[i].site for i in leased}) == 1
        cands.append(
            Placement(
                "leased", "leased pools only", leased, local_sync if one_site else sync, split
            )
        )
        # The baseline a reclaim is measured against: the best use of the capacity that is
        # not under lease, across sites and in each site that has both kinds.
        free = tuple(i for i in everything if not scenario.pools[i].leased)
        if free:
            one_site = len({scenario.pools[i].site for i in free}) == 1
            cands.append(
                Placement(
                    "free",
                    "capacity not under lease only",
                    free,
                    local_sync if one_site else sync,
                    split,
                )
            )
        for site in sites:
            here = [i for i, p in enumerate(scenario.pools) if p.site == site]
            site_free = tuple(i for i in here if not scenario.pools[i].leased)
            if site_free and len(site_free) < len(here):
                cands.append(
                    Placement(
                        f"site:{site}/free",
                        f"{site}, capacity not under lease",
                        site_free,
                        local_sync,
                        split,
                    )
                )
    models = tuple(dict.fromkeys(p.accelerator for p in scenario.pools))
    for model in models:
        idx = tuple(i for i, p in enumerate(scenario.pools) if p.accelerator == model)
        one_site = len({scenario.pools[i].site for i in idx}) == 1
        cands.append(
            Placement(
                f"accelerator:{model}",
                f"{model} only, all sites",
                idx,
                local_sync if one_site else sync,
                split,
            )
        )
    # Every subset of two or more generations (accelerator models) across all sites: dropping
    # a slow generation can be worth more than keeping it in the synchronous group.
    for size in range(2, len(models)):
        for group in combinations(models, size):
            idx = tuple(i for i, p in enumerate(scenario.pools) if p.accelerator in group)
            one_site = len({scenario.pools[i].site for i in idx}) == 1
            cands.append(
                Placement(
                    f"accelerators:{'+'.join(group)}",
                    f"{', '.join(group)} only, all sites",
                    idx,
                    local_sync if one_site else sync,
                    split,
                )
            )
            if not one_site and sync != "diloco":
                cands.append(
                    Placement(
                        f"accelerators:{'+'.join(group)}/diloco",
                        f"{', '.join(group)} only, DiLoCo across sites",
                        idx,
                        "diloco",
                        split,
                    )
                )
    for site in sites:
        here = [i for i, p in enumerate(scenario.pools) if p.site == site]
        site_models = tuple(dict.fromkeys(scenario.pools[i].accelerator for i in here))
        if len(site_models) < 2:
            continue
        for model in site_models:
            idx = tuple(i for i in here if scenario.pools[i].accelerator == model)
            cands.append(
                Placement(
                    f"site:{site}/accelerator:{model}",
                    f"{model} only, {site}",
                    idx,
                    local_sync,
                    split,
                )
            )

    seen: set[tuple[tuple[int, ...], str, str]] = set()
    unique: list[Placement] = []
    for c in cands:
        sig = (c.pools, c.sync, c.split)
        if sig not in seen:
            seen.add(sig)
            unique.append(c)
    return unique


def placement_inputs(scenario: Scenario, placements: list[Placement]) -> Inputs:
    """The scenario's inputs as a 1-D batch, one row per placement (pools outside it at 0)."""
    base = inputs_of(scenario)
    n = len(scenario.pools)
    mask = np.zeros((len(placements), n))
    for row, c in enumerate(placements):
        mask[row, list(c.pools)] = 1.0
    return base.replace(
        gpus=base.gpus[None, :] * mask,
        sync=np.array([SYNC_CODES[c.sync] for c in placements]),
        batch_split=np.array([SPLIT_CODES[c.split] for c in placements]),
    )


def uses_leased(scenario: Scenario, placement: Placement) -> bool:
    """True if the placement uses any pool marked ``leased``."""
    return any(scenario.pools[i].leased for i in placement.pools)
