"""``mtf_glp``, ``mtf_glp_hpm``, ``sfim``: multiresolution-analysis (MRA) fusion, hypersharpened.

The three methods share one detail-injection scheme (Vivone et al. 2015, §III-B):

    X_k = Ỹ_k + G_k · (P_k − P_k,L)

where Ỹ_k is HSI band k interpolated to the HR grid, P_k a high-resolution image assigned to
band k (built from the MSI) and P_k,L its low-pass version, obtained exactly the way Ỹ was:
filtered with a low-pass kernel, decimated to the LR grid ("reduce") and interpolated back
("expand") — the generalised Laplacian pyramid (GLP) of Aiazzi et al. 2002. The methods
differ only in the low-pass kernel and the injection gain G_k:

=============  =======================================  ==========================================
method         low-pass kernel                          injection
=============  =======================================  ==========================================
mtf_glp        the sensor MTF (a Gaussian, or the PSF)  additive, G_k = cov(Ỹ_k, P_k,L)/var(P_k,L)
mtf_glp_hpm    the sensor MTF (a Gaussian, or the PSF)  multiplicative (HPM), G_k = Ỹ_k / P_k,L
sfim           an s×s average (box)                     multiplicative (HPM), G_k = Ỹ_k / P_k,L
=============  =======================================  ==========================================

so SFIM is MTF-GLP-HPM with the MTF-matched Gaussian replaced by Liu's box filter.

From pansharpening to HS–MS fusion, P_k is made by **hypersharpening** (Selva et al. 2015),
the adaptation used for GLP-HS and SFIM-HS by Yokoya et al. 2017: a synthetic HR image per HS
band, ``P_k = Σ_j w_kj M_j + w_k0``, whose weights regress the LR-HSI band k on the MSI bands
brought to the LR grid. The alternative **band assignment** (P_k = the MSI band that correlates
best with band k at LR, as :mod:`hmifbench.methods.gsa` does) is available as a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import numpy as np

from hmifbench.errors import InputError
from hmifbench.method import Fused, FusionProblem, Method, Resources, param

_CITATION = (
    "B. Aiazzi, L. Alparone, S. Baronti, A. Garzelli, M. Selva, PE&RS 72(5):591-596, 2006; "
    "G. Vivone et al., IEEE TGRS 53(5):2565-2586, 2015; "
    "M. Selva, B. Aiazzi, F. Butera, L. Chiarantini, S. Baronti, IEEE JSTARS 8(6):3008-3024, 2015; "
    "N. Yokoya, C. Grohnfeldt, J. Chanussot, IEEE GRSM 5(2):29-56, 2017")
_LICENCE = "BSD-3-Clause (hmifbench)"


def mtf_gaussian(scale: int, gnyq: float) -> np.ndarray:
    """The Gaussian low-pass kernel whose gain at the LR Nyquist frequency is ``gnyq``.

    A Gaussian of standard deviation σ (HR pixels) has the frequency response
    ``exp(−2π²σ²f²)``; setting it to ``gnyq`` at ``f = 1/(2s)`` gives
    ``σ = s·sqrt(−2 ln gnyq)/π`` (Aiazzi et al. 2006, §"MTF-tailored filters"). The kernel is
    sampled on the odd support ``2⌈3σ⌉ + 1`` and normalised to sum 1.

    Parameters
    ----------
    scale : int
        Resolution ratio s.
    gnyq : float
        MTF gain at Nyquist, in (0, 1). 0.41 is the Gaussian whose FWHM is one LR pixel
        (:func:`hmifbench.observation.fwhm_gaussian_psf`); 0.3 is the usual value for an
        unspecified MS sensor (Vivone et al. 2015).
    """
    from hmifbench.observation import gaussian_psf

    if not 0.0 < gnyq < 1.0:
        raise InputError(f"parameter 'gnyq' must be in (0, 1), got {gnyq}")
    sigma = scale * math.sqrt(-2.0 * math.log(gnyq)) / math.pi
    return gaussian_psf(2 * math.ceil(3 * sigma) + 1, sigma)


def lowpass_kernel(problem: FusionProblem, lowpass: str, gnyq: Optional[float],
                   use_psf: bool) -> tuple[np.ndarray, str]:
    """The analysis kernel of the pyramid and a short description of where it came from."""
    from hmifbench.observation import fwhm_gaussian_psf
    from hmifbench.observation import box_psf

    s = problem.scale
    if lowpass == "box":
        return box_psf(s), f"box {s}x{s}"
    if use_psf and problem.psf is not None:
        return problem.psf, "problem psf"
    if gnyq is None:
        return fwhm_gaussian_psf(s), "fwhm_gaussian_psf (FWHM one LR pixel)"
    return mtf_gaussian(s, gnyq), f"Gaussian, GNyq={gnyq}"


def _regress(design: np.ndarray, target: np.ndarray, method: str) -> np.ndarray:
    """Weights W with ``design @ W ≈ target`` (least squares or non-negative least squares)."""
    if method == "ls":
        # Normal equations: (b+1) unknowns, so the Gram matrix is tiny; a trace-relative ridge
        # of 1e-10 only guards against exactly collinear MSI bands.
        gram = design.T @ design
        gram += 1e-10 * np.trace(gram) / gram.shape[0] * np.eye(gram.shape[0])
        return np.linalg.solve(gram, design.T @ target)
    from scipy.optimize import nnls

    # Columns scaled to unit RMS so that NNLS's tolerance means the same for every band.
    scale = np.sqrt(np.mean(design**2, axis=0)) + 1e-12
    a = design / scale
    w = np.stack([nnls(a, target[:, k])[0] for k in range(target.shape[1])], axis=1)
    return w / scale[:, None]


def _tall_matmul(a: np.ndarray, w: np.ndarray, rows: int = 4096) -> np.ndarray:
    """``a @ w`` for a tall (N × b) ``a`` and a small ``w``, in blocks of ``rows`` rows.

    Each block is below OpenBLAS's threading threshold, so the product runs on one thread:
    for these memory-bound, skinny products that is as fast as threading on an idle machine
    and 20× faster on an oversubscribed one (spinning BLAS threads).
    """
    out = np.empty((a.shape[0], w.shape[1]), dtype=np.result_type(a, w))
    for i in range(0, a.shape[0], rows):
        np.matmul(a[i:i + rows], w, out=out[i:i + rows])
    return out


def mra_fuse(problem: FusionProblem, *, injection: str, lowpass: str, gnyq: Optional[float],
             use_psf: bool, detail_source: str, regression: str,
             hpm_floor: float = 1e-3) -> Fused:
    """Fuse by generalised-Laplacian-pyramid detail injection (module notes).

    Parameters
    ----------
    problem : FusionProblem
    injection : {"additive", "multiplicative"}
        CBD-style additive injection with regression gains (Aiazzi et al. 2006) or high-pass
        modulation (HPM; Aiazzi et al. 2003, Vivone et al. 2014).
    lowpass : {"mtf", "box"}
        Analysis kernel: the sensor MTF (the PSF when given and ``use_psf``, else a Gaussian
        with Nyquist gain ``gnyq``) or the s×s average of SFIM (Liu 2000).
    gnyq : float or None
        Nyquist gain of the Gaussian used when the PSF is unknown; None uses
        :func:`~hmifbench.observation.fwhm_gaussian_psf`.
    use_psf : bool
        Use ``problem.psf`` as the MTF when it is given.
    detail_source : {"hypersharpening", "band_assignment"}
        How the HR image P_k injected into HS band k is made from the MSI.
    regression : {"ls", "nnls"}
        Hypersharpening weights by least squares or non-negative least squares.
    hpm_floor : float
        HPM divides by P_k,L; values below ``hpm_floor · mean(P_k,L)`` are raised to it.
    """
    from hmifbench.observation import upsample_bicubic
    from hmifbench.observation import spatial_degrade

    s, off = problem.scale, problem.offset
    kernel, kernel_doc = lowpass_kernel(problem, lowpass, gnyq, use_psf)
    yh = problem.lr_hsi.astype(np.float64)
    h, w, B = yh.shape
    H, W, b = problem.hr_msi.shape
    n, N = h * w, H * W

    y_up = upsample_bicubic(yh, s, off).reshape(N, B)
    msi = problem.hr_msi.reshape(N, b).astype(np.float32)
    msi_lr = spatial_degrade(problem.hr_msi, kernel, s, off, problem.border)  # "reduce"
    msi_low = upsample_bicubic(msi_lr, s, off).reshape(N, b)                    # "expand"
    msi_lr = msi_lr.reshape(n, b).astype(np.float64)
    yh = yh.reshape(n, B)
    extras = {"lowpass": kernel_doc, "detail_source": detail_source}

    # Every P_k is affine in the MSI: P = M·W + c, P_L = M̃_L·W + c, with W (b × B) the
    # regression weights (hypersharpening) or a one-hot selection (band assignment, c = 0).
    if detail_source == "hypersharpening":
        design = np.concatenate([msi_lr, np.ones((n, 1))], axis=1)
        coef = _regress(design, yh, regression)  # (b+1, B)
        weights, const = coef[:b], coef[b]
        extras["weights"] = coef.tolist()
    elif detail_source == "band_assignment":
        z = lambda a: (a - a.mean(0)) / (a.std(0) + 1e-12)
        group = (z(yh).T @ z(msi_lr) / n).argmax(axis=1)
        weights, const = np.eye(b)[:, group], np.zeros(B)
        extras["band_groups"] = group.tolist()
    else:  # validate_params keeps this unreachable
        raise InputError(f"unknown detail_source {detail_source!r}")

    if injection == "additive":
        # g_k = cov(Ỹ_k, P_k,L) / var(P_k,L) from the (b × b) and (b × B) covariances of M̃_L,
        # without forming the N × B image P_L; then X = Ỹ + (M − M̃_L)·(W·g).
        low_c = msi_low - msi_low.mean(0, dtype=np.float64).astype(np.float32)
        cov_ll = (low_c.T @ low_c).astype(np.float64) / N
        # float32 products suffice for a ratio of covariances; the N × B image stays float32.
        cov_ly = (low_c.T @ y_up).astype(np.float64) / N - np.outer(
            low_c.mean(0, dtype=np.float64), y_up.mean(0, dtype=np.float64))
        var_p = np.einsum("jk,jl,lk->k", weights, cov_ll, weights)
        cov_p = np.einsum("jk,jk->k", weights, cov_ly)
        gains = cov_p / np.maximum(var_p, 1e-12 * np.maximum(var_p.max(), 1e-300))
        out = _tall_matmul(msi - msi_low, (weights * gains).astype(np.float32))
        out += y_up
        extras["gains"] = gains.tolist()
    else:
        w32, c32 = weights.astype(np.float32), const.astype(np.float32)
        pan_low = _tall_matmul(msi_low, w32)
        pan_low += c32
        floor = hpm_floor * np.abs(pan_low).mean(0) + 1e-12
        np.maximum(pan_low, floor, out=pan_low)
        out = _tall_matmul(msi, w32)
        out += c32
        out *= y_up
        out /= pan_low
    return Fused(out.reshape(H, W, B), extras=extras)


def _validate(p) -> None:
    if p.gnyq is not None and not 0.0 < p.gnyq < 1.0:
        raise InputError(f"parameter 'gnyq' must be in (0, 1) or null, got {p.gnyq}")
    if p.detail_source not in ("hypersharpening", "band_assignment"):
        raise InputError("parameter 'detail_source' must be 'hypersharpening' or "
                         f"'band_assignment', got {p.detail_source!r}")
    if p.regression not in ("ls", "nnls"):
        raise InputError(f"parameter 'regression' must be 'ls' or 'nnls', got {p.regression!r}")


_GNYQ_DOC = ("MTF gain at the LR Nyquist frequency of the Gaussian low-pass used when the PSF is "
             "unknown (or use_psf is false); null = the suite's fwhm_gaussian_psf, a Gaussian with a "
             "one-LR-pixel FWHM (GNyq = 0.41), as in gsa. 0.3 is Vivone et al.'s value for an "
             "unspecified sensor")
_USE_PSF_DOC = "use the problem's PSF as the sensor MTF when it is given (known setting)"
_SOURCE_DOC = ("'hypersharpening': one synthetic HR image per HS band regressed from the MSI "
               "(Selva 2015; Yokoya 2017's GLP-HS/SFIM-HS); 'band_assignment': the MSI band that "
               "correlates best with the HS band at LR")


class MTFGLP(Method):
    """MTF-GLP-HS: MTF-matched generalised Laplacian pyramid with additive injection.

    Aiazzi, Alparone, Baronti, Garzelli, Selva, "MTF-tailored multiscale fusion of
    high-resolution MS and Pan imagery", PE&RS 72(5), 2006; injection gains as in Vivone et al.,
    "A critical comparison among pansharpening algorithms", IEEE TGRS 53(5), 2015 (eq. of the
    MRA family, X_k = Ỹ_k + g_k (P_k − P_k,L) with g_k = cov(Ỹ_k, P_k,L) / var(P_k,L));
    adapted to HS–MS fusion by hypersharpening (Selva et al., IEEE JSTARS 8(6), 2015) as GLP-HS
    in Yokoya, Grohnfeldt, Chanussot, IEEE GRSM 5(2), 2017.

    Algorithm
    ---------
    1. Ỹ = bicubic interpolation of the LR-HSI, aligned with the decimation phase.
    2. M_L = the MSI filtered with the MTF kernel (the known PSF; otherwise a Gaussian with
       Nyquist gain ``gnyq``) and decimated to the LR grid; M̃_L = M_L interpolated back like Ỹ.
    3. Hypersharpening: regress each LR-HSI band on [M_L, 1] (least squares), giving weights
       w_k; P_k = [M, 1]·w_k and P_k,L = [M̃_L, 1]·w_k.
    4. X_k = Ỹ_k + g_k (P_k − P_k,L), g_k = cov(Ỹ_k, P_k,L) / var(P_k,L).

    Differences from the reference implementations: the "expand" step uses the suite's Keys
    bicubic interpolator (not the 23-tap polynomial of Aiazzi et al.) so that Ỹ and P_k,L are
    made by the same operator; decimation follows the suite's phase convention.
    """

    name = "mtf_glp"
    family = "linear"
    blind = True  # uses the PSF when it is given, otherwise an MTF-matched Gaussian
    resources = Resources(mem_mb=2000, runtime_min=10)
    citation = _CITATION
    licence = _LICENCE
    injection = "additive"

    @dataclass
    class Params:
        gnyq: Optional[float] = param(None, _GNYQ_DOC)
        use_psf: bool = param(True, _USE_PSF_DOC)
        detail_source: Literal["hypersharpening", "band_assignment"] = param(
            "hypersharpening", _SOURCE_DOC)
        regression: Literal["ls", "nnls"] = param(
            "ls", "hypersharpening weights: unconstrained ('ls', as GLP-HS) or non-negative "
                  "('nnls') least squares")

    @classmethod
    def validate_params(cls, p):
        _validate(p)

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        p = self.params
        return mra_fuse(problem, injection=self.injection, lowpass="mtf", gnyq=p.gnyq,
                        use_psf=p.use_psf, detail_source=p.detail_source,
                        regression=p.regression)


class MTFGLPHPM(MTFGLP):
    """MTF-GLP-HPM-HS: MTF-matched GLP with multiplicative (high-pass modulation) injection.

    Aiazzi, Alparone, Baronti, Garzelli, Selva, "An MTF-based spectral distortion minimizing
    model for pan-sharpening of very high resolution multispectral images of urban areas",
    URBAN 2003, and PE&RS 72(5), 2006; Vivone et al., IEEE GRSL 11(5), 2014 and IEEE TGRS
    53(5), 2015 (HPM: X_k = Ỹ_k · P_k / P_k,L); hypersharpened for HS–MS fusion as in Selva
    et al. 2015 and Yokoya et al. 2017.

    As :class:`MTFGLP`, steps 1–3, except that the hypersharpening weights are non-negative
    least squares by default (the choice of Yokoya et al.'s SFIM-HS), so that the synthetic
    image P_k stays positive and the ratio P_k / P_k,L is meaningful. Step 4 becomes
    ``X_k = Ỹ_k · P_k / max(P_k,L, ε_k)``, with ε_k = 10⁻³ · mean|P_k,L| guarding the division.
    """

    name = "mtf_glp_hpm"
    injection = "multiplicative"

    @dataclass
    class Params(MTFGLP.Params):
        regression: Literal["ls", "nnls"] = param(
            "nnls", "hypersharpening weights: non-negative ('nnls', keeps P_k > 0 for the "
                    "ratio) or unconstrained ('ls') least squares")


class SFIM(Method):
    """SFIM-HS: smoothing-filter-based intensity modulation, hypersharpened.

    Liu, "Smoothing filter-based intensity modulation: a spectral preserve image fusion
    technique for improving spatial details", Int. J. Remote Sens. 21(18), 2000:
    X_k = Ỹ_k · P_k / P_k,L with P_k,L the HR image smoothed by an averaging filter whose size
    is the resolution ratio; adapted to HS–MS fusion by hypersharpening with non-negative least
    squares as SFIM-HS in Yokoya et al., IEEE GRSM 5(2), 2017.

    It is :class:`MTFGLPHPM` with the MTF Gaussian replaced by the s×s box: P_k,L is the box
    average decimated to the LR grid (a block mean under the suite's phase convention) and
    interpolated back exactly like Ỹ. Liu filters at full resolution without decimation and
    Yokoya's toolbox uses block means with nearest-neighbour expansion; we keep the pyramid's
    reduce/expand so that Ỹ and P_k,L share one interpolator. The PSF, known or not, is not
    used: the box is the method.
    """

    name = "sfim"
    family = "linear"
    blind = True
    resources = Resources(mem_mb=2000, runtime_min=10)
    citation = ("J. G. Liu, Int. J. Remote Sens. 21(18):3461-3472, 2000; "
                "N. Yokoya, C. Grohnfeldt, J. Chanussot, IEEE GRSM 5(2):29-56, 2017")
    licence = _LICENCE

    @dataclass
    class Params:
        detail_source: Literal["hypersharpening", "band_assignment"] = param(
            "hypersharpening", _SOURCE_DOC)
        regression: Literal["ls", "nnls"] = param(
            "nnls", "hypersharpening weights: non-negative ('nnls', as SFIM-HS) or "
                    "unconstrained ('ls') least squares")

    @classmethod
    def validate_params(cls, p):
        if p.detail_source not in ("hypersharpening", "band_assignment"):
            raise InputError("parameter 'detail_source' must be 'hypersharpening' or "
                             f"'band_assignment', got {p.detail_source!r}")
        if p.regression not in ("ls", "nnls"):
            raise InputError(f"parameter 'regression' must be 'ls' or 'nnls', got {p.regression!r}")

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        p = self.params
        return mra_fuse(problem, injection="multiplicative", lowpass="box", gnyq=None,
                        use_psf=False, detail_source=p.detail_source, regression=p.regression)
