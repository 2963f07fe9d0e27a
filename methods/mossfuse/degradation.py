"""Degradation estimation of MossFuse: a learnable SRF and a parametric Gaussian PSF.

The SRF is a free (b × B) matrix initialised to ones, used row-normalised
(``R_ij = r_ij / Σ_j r_ij``). The PSF is an anisotropic Gaussian parametrised as in BSRDM
(Z. Yue et al., "Blind Image Super-resolution with Elaborate Degradation Modeling on Noise
and Kernel", CVPR 2022, §3.2): ``Σ⁻¹ = MᵀM`` with M = Q ⊙ [[1, 0], [1, 1]] lower-triangular,
Q initialised to 5·I (σ = 0.2 px), sampled on a k × k grid and normalised to sum 1.

Alignment follows :mod:`hmifbench.observation`: ``(h ⋆ X)[p, q] = Σ_ij h[i, j] X[p + i − c,
q + j − c]`` with ``c = (k − 1) // 2``, and LR pixel i is the blurred HR pixel ``s·i + offset``.
With k = s − 1 and offset = s/2 − 1 (MossFuse at ×32: a 31×31 kernel, sample [15::32]) every
window lies inside the image and no padding happens, which is exactly the released operator
(a valid convolution with stride s). Larger kernels are padded by reflection (the simulation's
default ``reflect101`` border), only where a window leaves the image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def gaussian_kernel(q: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """The normalised Gaussian ``exp(−½ zᵀ MᵀM z)`` on ``grid`` (k, k, 2 offsets from the
    centre), with M the lower triangle of ``q`` (2 × 2). Returns (k, k) summing to 1."""
    m = torch.tril(q)
    inv_sigma = m.t() @ m
    quad = torch.einsum("ija,ab,ijb->ij", grid, inv_sigma, grid)
    raw = torch.exp(-0.5 * quad)
    return raw / raw.sum()


def blur_decimate(x: torch.Tensor, kernel: torch.Tensor, scale: int, offset: int,
                  size: tuple[int, int] | None = None) -> torch.Tensor:
    """``decimate_s(kernel ⋆ x)`` for (N, C, H, W) input: the same kernel on every channel,
    LR pixel i = blurred HR pixel ``s·i + offset``; (N, C, h, w) with ``(h, w) = size``
    (default ``(H/s, W/s)``). ``x`` may carry extra context around the region the LR grid
    covers (then ``offset`` counts from its edge, and ``size`` says how many LR pixels)."""
    n, c, hh, ww = x.shape
    k0, k1 = kernel.shape
    c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
    h, w = size if size is not None else (hh // scale, ww // scale)
    # Reflect-pad only the sides where a window leaves the image.
    top, left = max(c0 - offset, 0), max(c1 - offset, 0)
    bottom = max(scale * (h - 1) + offset - c0 + k0 - hh, 0)
    right = max(scale * (w - 1) + offset - c1 + k1 - ww, 0)
    if top or bottom or left or right:
        x = F.pad(x, (left, right, top, bottom), mode="reflect")
    r0, q0 = offset - c0 + top, offset - c1 + left
    x = x[:, :, r0:r0 + scale * (h - 1) + k0, q0:q0 + scale * (w - 1) + k1]
    weight = kernel.to(x.dtype).expand(c, 1, k0, k1)
    return F.conv2d(x, weight, stride=scale, groups=c)


def context_margin(psf_size: int, scale: int, offset: int) -> int:
    """HR pixels of context needed on each side of a patch so that every blur window of its
    LR pixels lies inside (0 for the released k = s − 1 at the default phase)."""
    c = (psf_size - 1) // 2
    return max(c - offset, offset - c + psf_size - scale, 0)


def spectral_project(x: torch.Tensor, srf: torch.Tensor) -> torch.Tensor:
    """``X · Rᵀ`` for (N, B, H, W) input and a (b × B) SRF: (N, b, H, W)."""
    return F.conv2d(x, srf[:, :, None, None].to(x.dtype))


class DegradationEstimator(nn.Module):
    """The released code's ``BlindNet``: 93 SRF entries (3 × 31) and a 2 × 2 PSF parameter.

    ``forward(lr_hsi, msi)`` returns ``(ŷ_x, ŷ_Y, R, h)``: the LR-MSI predicted from the LR-HSI,
    ``clamp(R·x, 0, 1)``; the LR-MSI predicted from the HR-MSI, ``clamp(decimate(h ⋆ Y), 0, 1)``;
    the row-normalised SRF R (b × B); the PSF h (k × k). L_DE compares the first two, which
    agree exactly (without noise) at the true PSF and SRF.
    """

    def __init__(self, bands: int, msi_bands: int, scale: int, psf_size: int, offset: int):
        super().__init__()
        if psf_size < 1:
            raise ValueError(f"psf_size must be >= 1, got {psf_size}")
        if not 0 <= offset < scale:
            raise ValueError(f"offset must be in [0, {scale}), got {offset}")
        self.scale, self.offset, self.psf_size = int(scale), int(offset), int(psf_size)
        self.srf = nn.Parameter(torch.ones(msi_bands, bands))
        # Q[0, 1] is masked out of M (tril) and never receives a gradient, as released.
        self.psf_param = nn.Parameter(5.0 * torch.eye(2))
        r = torch.arange(psf_size, dtype=torch.float32) - (psf_size - 1) // 2
        self.register_buffer("grid", torch.stack(torch.meshgrid(r, r, indexing="ij"), dim=-1),
                             persistent=False)

    def srf_matrix(self) -> torch.Tensor:
        """R = srf / row sums (rows sum to 1; entries are not constrained to be ≥ 0)."""
        return self.srf / self.srf.sum(dim=1, keepdim=True)

    def psf_kernel(self) -> torch.Tensor:
        return gaussian_kernel(self.psf_param, self.grid)

    def psf_covariance(self) -> torch.Tensor:
        """Σ = (MᵀM)⁻¹ in (row, col) pixel coordinates of the HR grid."""
        m = torch.tril(self.psf_param.detach())
        return torch.linalg.inv(m.t() @ m)

    def forward(self, lr_hsi, msi, margin: int = 0):
        """``msi`` may carry ``margin`` HR pixels of context on every side (see
        :func:`context_margin`), so that no blur window needs padding."""
        srf, psf = self.srf_matrix(), self.psf_kernel()
        y_x = spectral_project(lr_hsi, srf).clamp(0.0, 1.0)
        y_y = blur_decimate(msi, psf, self.scale, self.offset + margin,
                            size=tuple(lr_hsi.shape[-2:])).clamp(0.0, 1.0)
        return y_x, y_y, srf, psf
