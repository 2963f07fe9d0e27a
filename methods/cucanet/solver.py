"""CUCaNet's per-scene optimisation (PyTorch; imported by :meth:`CUCaNet.fuse` only)."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch

from hmifbench.methods import _deep
from hmifbench.methods.cucanet import network as N

#: Learning-rate multipliers of the sub-networks (released training script).
LR_MULTIPLIERS = {"enc_m": 0.5, "head_m": 0.5, "enc_h": 1.0, "head_h": 1.0, "dec_h": 1.0,
                  "dec_m": 1.0, "psf": 0.2, "psf2": 0.2, "spatial_att": 0.2,
                  "spectral_att": 0.2, "srf": 0.2}


def lr_factor(t: int, total: int, flat: int) -> float:
    """Multiplier of the base learning rate after ``t`` scheduler steps: 1 for the first
    ``flat`` iterations, then linear to 0 at ``total`` (``1 − max(0, t + 2 − flat) /
    (total − flat + 1)``, the released schedule: flat 2,000 then 8,001 decay steps)."""
    return 1.0 - max(0, t + 2 - flat) / float(total - flat + 1)


def degradation_modes(params, problem) -> tuple[str, str]:
    """'known' or 'learn' for the PSF and the SRF, from the ``*_mode`` parameters."""
    psf = params.psf_mode if params.psf_mode != "auto" else (
        "known" if problem.psf is not None else "learn")
    srf = params.srf_mode if params.srf_mode != "auto" else (
        "known" if problem.srf is not None else "learn")
    return psf, srf


def build_model(params, problem, psf_mode: str, srf_mode: str) -> N.Model:
    """The network and degradation layers for ``problem``, initialised from torch's seed."""
    rows, cols, bands = problem.hr_msi.shape[0], problem.hr_msi.shape[1], problem.bands
    s = problem.scale
    net = N.CUCaNet(bands, problem.msi_bands, s, (rows // s, cols // s),
                    endmembers=params.endmembers, width=params.width, abundance=params.abundance)
    if psf_mode == "known":
        psf = N.KnownPSF(problem.psf, s, problem.offset, problem.border, (rows, cols))
    else:
        psf = N.BlockPSF(s)
    if srf_mode == "known":
        srf = N.KnownSRF(problem.srf)
    else:
        srf = N.SupportSRF(N.srf_support(problem.srf, problem.msi_bands, bands), bands)
    return N.Model(net, psf, srf)


def _fingerprint(problem) -> str:
    h = hashlib.sha256()
    for a in (problem.lr_hsi, problem.hr_msi, problem.psf, problem.srf):
        if a is not None:
            h.update(np.ascontiguousarray(a, dtype=np.float32).tobytes())
    h.update(f"{problem.scale}/{problem.offset}/{problem.border}".encode())
    return h.hexdigest()


def _param_groups(model: N.Model, base_lr: float) -> list[dict]:
    parts = {"enc_m": model.net.enc_m, "head_m": model.net.head_m, "enc_h": model.net.enc_h,
             "head_h": model.net.head_h, "dec_h": model.net.dec_h, "dec_m": model.net.dec_m,
             "psf": model.psf, "psf2": model.net.psf2, "spatial_att": model.net.spatial_att,
             "spectral_att": model.net.spectral_att, "srf": model.srf}
    groups = []
    for name, module in parts.items():
        ps = [p for p in module.parameters() if p.requires_grad]
        if ps:
            groups.append({"params": ps, "lr": base_lr * LR_MULTIPLIERS[name], "name": name})
    return groups


def loss_terms(model: N.Model, out: dict, lr_hsi, hr_msi, params, learn_degradation: bool):
    """The weighted loss terms of paper eq. (9) (released weights as defaults)."""
    p, red, x = params, params.reduction, out["hr_hsi"]
    terms = {
        "hsi": p.hsi_weight * N.l1(lr_hsi, out["lr_hsi"], red),
        "msi": p.msi_weight * N.l1(hr_msi, out["hr_msi"], red),
        "psf": p.psf_weight * N.l1(lr_hsi, model.psf(x), red),
        "srf": p.srf_weight * N.l1(hr_msi, model.srf(x), red),
        "sum_to_one": p.sum_to_one_weight * (N.sum_to_one(out["abund_h"]) + N.sum_to_one(out["abund_m"])),
        "sparsity": p.sparsity_weight * (N.sparsity_kl(out["abund_h"]) + N.sparsity_kl(out["abund_m"])),
    }
    if learn_degradation:  # constant (no gradient) when both responses are given
        terms["lr_msi"] = p.lr_msi_weight * N.l1(model.srf(lr_hsi), model.psf(hr_msi), red)
    return terms


def solve(params, problem, *, seed: int, device, progress) -> dict:
    """Train CUCaNet on one scene; returns the estimate, degradation and bookkeeping."""
    dev = _deep.resolve_device(device)
    psf_mode, srf_mode = degradation_modes(params, problem)
    _deep.seed_everything(seed)
    model = build_model(params, problem, psf_mode, srf_mode).to(dev)
    lr_hsi = _deep.to_nchw(problem.lr_hsi, dev)
    hr_msi = _deep.to_nchw(problem.hr_msi, dev)
    if params.standardise_input:
        model.net.standardise_to(lr_hsi, hr_msi)
    total = params.iterations
    flat = int(round(params.lr_flat_fraction * total))
    optimizer = torch.optim.Adam(_param_groups(model, params.lr), betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_factor(t, total, flat))
    learn_degradation = "learn" in (psf_mode, srf_mode)

    def step(t: int) -> dict:
        optimizer.zero_grad(set_to_none=True)
        out = model.net(lr_hsi, hr_msi)
        terms = loss_terms(model, out, lr_hsi, hr_msi, params, learn_degradation)
        loss = torch.stack(list(terms.values())).sum()
        loss.backward()
        optimizer.step()
        scheduler.step()
        model.net.project()
        if isinstance(model.srf, N.SupportSRF):
            model.srf.project()
        # One device→host copy per step for all the logged values.
        values = torch.stack([loss.detach(), *(v.detach() for v in terms.values())]).tolist()
        return dict(zip(["loss", *terms], values))

    checkpoint = signature = None
    if params.checkpoint_dir:
        signature = {"params": dataclasses.asdict(params), "seed": int(seed),
                     "data": _fingerprint(problem), "modes": [psf_mode, srf_mode]}
        key = hashlib.sha256(repr(sorted(signature.items())).encode()).hexdigest()[:16]
        checkpoint = Path(params.checkpoint_dir) / f"cucanet-{key}.pt"
    info = _deep.run_iterations(step, total, modules={"model": model, "optimizer": optimizer,
                                                      "scheduler": scheduler},
                                checkpoint=checkpoint, signature=signature,
                                checkpoint_every=params.checkpoint_every,
                                record_every=params.record_every, progress=progress,
                                desc="cucanet")
    model.eval()
    with torch.no_grad():
        hr = _deep.to_hwc(model.net(lr_hsi, hr_msi)["hr_hsi"])
    table = model.parameter_table()
    return {"hr_hsi": hr, "info": info, "table": table, "device": str(dev),
            "modes": (psf_mode, srf_mode),
            "psf": (model.psf.as_centred_kernel(problem.offset) if psf_mode == "learn" else None),
            "srf": (model.srf.matrix().detach().double().cpu().numpy() if srf_mode == "learn" else None)}
