"""The four MossFuse losses (Du et al., arXiv:2412.04802, §3.3 and Fig. 2).

* L_SC  subspace clustering (modality decoupling), an InfoNCE form over global cosines.
* L_SCT self-supervised constraints: each decoder rebuilds an observed or estimated image.
* L_DE  degradation estimation: SRF(LR-HSI) must equal PSF↓(HR-MSI).
* L_MA  modality aggregation: the fused X̂ degraded by the estimated PSF/SRF must give back
  both inputs.

All reconstruction terms are mean absolute errors, as released. The estimated PSF and SRF
enter L_SCT and L_MA as constants (``detach``) and L_DE touches nothing but them, which is
the released two-pass update (L_SC + L_MA with the degradation frozen, then L_DE with only
the degradation trainable) written as one backward pass over disjoint parameter sets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hmifbench.methods.mossfuse.degradation import blur_decimate, spectral_project


def global_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of two tensors flattened over the whole batch into single vectors,
    ``⟨a, b⟩ / max(‖a‖·‖b‖, 1e-8)``.

    Summed elementwise rather than through ``reshape(-1)``, which would copy channels-last
    tensors; the value does not depend on the flattening order.
    """
    return (a * b).sum() / (torch.linalg.vector_norm(a) * torch.linalg.vector_norm(b)).clamp_min(1e-8)


def subspace_clustering_loss(fys, fyc, fxs, fxc) -> torch.Tensor:
    """L_SC = −log(e^{cos(F_Y^S, F_x^S)} / (e^{cos(F_Y^S, F_x^S)} + e^{cos(F_Y^S, F_Y^C)}
    + e^{cos(F_x^S, F_x^C)} + e^{cos(F_Y^C, F_x^C)})), temperature 1.

    Pulls the two modality-shared features together; pushes each shared feature away from its
    own complementary feature and the two complementary features apart. Computed as a
    log-sum-exp, the same value without the overflow-prone ratio.
    """
    pos = global_cosine(fys, fxs)
    logits = torch.stack([pos, global_cosine(fys, fyc), global_cosine(fxs, fxc),
                          global_cosine(fyc, fxc)])
    return torch.logsumexp(logits, dim=0) - pos


def self_supervised_terms(out: dict, msi, lr_hsi, upsample, scale: int, offset: int) -> dict:
    """The four L_SCT terms by name: ``msi_rec`` ‖Y − Ŷ‖₁, ``hsi_rec_at_lr_grid``
    ‖x − x̂[off::s, off::s]‖₁, ``lr_msi_vs_hsi_branch`` ‖up(ŷ_x) − ŷ‖₁ and
    ``lr_msi_vs_msi_branch`` ‖up(ŷ_Y) − ŷ‖₁.

    The HSI decoder draws x̂ on the HR grid; it is sampled back at the decimation phase. ŷ is
    the LR decoder's LR-MSI on the HR grid, compared with the two degradation-based LR-MSIs
    upsampled bilinearly by s (these are targets: no gradient into the degradation).
    """
    hsi_lr = out["hsi_rec"][:, :, offset::scale, offset::scale]
    return {"msi_rec": F.l1_loss(out["msi_rec"], msi),
            "hsi_rec_at_lr_grid": F.l1_loss(hsi_lr, lr_hsi),
            "lr_msi_vs_hsi_branch": F.l1_loss(upsample(out["lr_msi_from_hsi"].detach()), out["lr_msi"]),
            "lr_msi_vs_msi_branch": F.l1_loss(upsample(out["lr_msi_from_msi"].detach()), out["lr_msi"])}


def self_supervised_loss(out: dict, msi, lr_hsi, upsample, scale: int, offset: int) -> torch.Tensor:
    """L_SCT = ‖Y − Ŷ‖₁ + ‖x − x̂[off::s, off::s]‖₁ + ‖up(ŷ_x) − ŷ‖₁ + ‖up(ŷ_Y) − ŷ‖₁, the sum
    of :func:`self_supervised_terms`."""
    return sum(self_supervised_terms(out, msi, lr_hsi, upsample, scale, offset).values())


def degradation_loss(out: dict) -> torch.Tensor:
    """L_DE = ‖SRF(x) − PSF↓(Y)‖₁ on the LR grid; only the PSF/SRF parameters depend on it."""
    return F.l1_loss(out["lr_msi_from_hsi"], out["lr_msi_from_msi"])


def aggregation_loss(out: dict, msi, lr_hsi, scale: int, offset: int) -> torch.Tensor:
    """L_MA = ‖x − PSF↓(X̂)‖₁ + ‖Y − SRF(X̂)‖₁ with the current PSF/SRF estimates held fixed."""
    fused = out["fused"]
    psf, srf = out["psf"].detach(), out["srf"].detach()
    return (F.l1_loss(blur_decimate(fused, psf, scale, offset), lr_hsi)
            + F.l1_loss(spectral_project(fused, srf), msi))
