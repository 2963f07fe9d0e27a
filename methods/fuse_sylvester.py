"""``fuse``: fast fusion of multi-band images by a closed-form Sylvester-equation solution.

Besides the :class:`FUSE` method, this module holds the Fourier-domain machinery that solves
the generalised Sylvester equation of HS–MS fusion with a circulant blur and uniform
decimation; :mod:`hmifbench.methods.ltmr` reuses it for its quadratic ADMM sub-problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmifbench.errors import InputError
from hmifbench.methods.base import Fused, FusionProblem, Method, Resources, param


# --------------------------------------------------------------------------------------------
# Circulant observation operator and the Sylvester solver (shared with LTMR)
# --------------------------------------------------------------------------------------------

def transfer_function(psf, shape, offset: int) -> np.ndarray:
    """2-D DFT of the periodic blur whose decimation at phase 0 equals ours at ``offset``.

    :func:`hmifbench.observation.spatial_degrade` keeps HR pixel ``s·i + offset`` of the
    blurred image, with the kernel centred at ``(k − 1) // 2``. Shifting the kernel by
    ``offset`` folds that phase into the blur, so that the periodic model becomes
    ``decimate(ifft2(fft2(x) · G))[s·i] `` with decimation phase 0 — the form in which the
    sampling operator is diagonalised blockwise by the DFT (Wei et al. 2015, Lemma 1).

    Parameters
    ----------
    psf : ndarray (k0, k1)
        The blur kernel, in the correlation convention of :mod:`hmifbench.observation`.
    shape : (int, int)
        The HR grid (rows, cols) on which the blur is periodic.
    offset : int
        Decimation phase of the problem.

    Returns
    -------
    ndarray (rows, cols), complex128
    """
    h = np.asarray(psf, dtype=np.float64)
    rows, cols = shape
    k0, k1 = h.shape
    c0, c1 = (k0 - 1) // 2, (k1 - 1) // 2
    # y[p] = Σ_ab h[a,b] x[p + offset + a − c0, ...] = Σ_q g[q] x[p − q]  (circular)
    ii = (-(offset + np.arange(k0) - c0)) % rows
    jj = (-(offset + np.arange(k1) - c1)) % cols
    g = np.zeros((rows, cols))
    np.add.at(g, (ii[:, None], jj[None, :]), h)
    return np.fft.fft2(g)


def periodic_degrade(x, G: np.ndarray, scale: int) -> np.ndarray:
    """Blur the channels-first stack ``x`` (c, rows, cols) periodically with ``G`` and keep
    every ``scale``-th pixel from phase 0 (the phase is already inside ``G``)."""
    blurred = np.fft.ifft2(np.fft.fft2(x, axes=(-2, -1)) * G, axes=(-2, -1)).real
    return blurred[..., ::scale, ::scale]


def periodic_adjoint(y, G: np.ndarray, scale: int) -> np.ndarray:
    """Adjoint of :func:`periodic_degrade`: zero-filled upsampling, then the adjoint blur."""
    c, h, w = y.shape
    up = np.zeros((c, h * scale, w * scale))
    up[:, ::scale, ::scale] = y
    return np.fft.ifft2(np.fft.fft2(up, axes=(-2, -1)) * np.conj(G), axes=(-2, -1)).real


class SylvesterSolver:
    """Solve ``A·U·C₂ + Bm·U = RHS`` for U (p × N) in closed form.

    ``C₂ = (BS)(BS)ᵀ`` with B a periodic blur and S a uniform decimation by ``scale``
    (both acting on the rows of U seen as images); A and Bm are symmetric p × p, A positive
    definite and Bm positive definite. This is Eq. (11) of Wei, Dobigeon, Tourneret, "Fast
    fusion of multi-band images based on solving a Sylvester equation", IEEE TIP 24(11),
    2015 (C₁ = A⁻¹Bm, C₃ = A⁻¹RHS), solved as in its Algorithm 1:

    1. the generalised eigen-decomposition ``Bm·Q = A·Q·Λ`` with ``QᵀAQ = I`` turns the
       equation into p decoupled ones, ``λ_l ũ_l + ũ_l C₂ = c̃_l`` with ``Ũ = Q⁻¹U`` and
       ``C̃ = QᵀRHS``;
    2. in the 2-D DFT domain ``C₂`` is block diagonal: the d = s² frequencies that alias onto
       one LR frequency form a block ``(1/d)·w·wᴴ`` with ``w = conj(G)`` on that group
       (Lemma 1), so each block is inverted by the Sherman–Morrison formula:
       ``x = (c − w·(wᴴc) / (dλ + ‖w‖²)) / λ``.

    Costs two FFTs per subspace component; no iteration.
    """

    def __init__(self, G: np.ndarray, scale: int, A: np.ndarray, Bm: np.ndarray):
        from scipy.linalg import eigh

        self.G, self.scale = G, int(scale)
        rows, cols = G.shape
        s = self.scale
        self.lr_shape = (rows // s, cols // s)
        try:
            lam, Q = eigh(Bm, A)
        except np.linalg.LinAlgError as exc:
            raise InputError(f"the fusion normal equations are singular ({exc}); "
                             "increase the prior or ADMM weight") from None
        if not np.all(lam > 0):
            raise InputError("the fusion normal equations are not positive definite; "
                             "increase the prior or ADMM weight")
        self.lam, self.Q = lam, Q
        # Σ over each alias group of |G|², laid out on the LR frequency grid.
        self.g_energy = self._group_sum(np.abs(G) ** 2)

    def _group_sum(self, z):
        """Sum over the s² HR frequencies that alias onto each LR frequency."""
        s = self.scale
        h, w = self.lr_shape
        return z.reshape(*z.shape[:-2], s, h, s, w).sum(axis=(-4, -2))

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """U (p, rows, cols) from the right-hand side (p, rows, cols)."""
        p = rhs.shape[0]
        s = self.scale
        h, w = self.lr_shape
        d = s * s
        c = np.fft.fft2(np.tensordot(self.Q.T, rhs, axes=1), axes=(-2, -1))
        lam = self.lam[:, None, None]
        # wᴴc with w = conj(G):  Σ_group G·c
        wc = self._group_sum(self.G * c)                         # (p, h, w)
        coef = wc / (d * lam + self.g_energy)                     # (p, h, w)
        tiled = np.tile(coef, (1, s, s))                          # back onto the HR grid
        x = (c - np.conj(self.G) * tiled) / lam
        u_tilde = np.fft.ifft2(x, axes=(-2, -1)).real
        return np.tensordot(self.Q, u_tilde, axes=1).reshape(p, h * s, w * s)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def spectral_subspace(lr_hsi: np.ndarray, dim: int) -> np.ndarray:
    """Orthonormal basis (B × dim) of the dominant spectral subspace of the LR-HSI (SVD of the
    uncentred band × pixel matrix), signs fixed so each vector has a positive sum."""
    B = lr_hsi.shape[2]
    Y = lr_hsi.reshape(-1, B).T.astype(np.float64)
    U, _, _ = np.linalg.svd(Y, full_matrices=False)
    E = U[:, :dim]
    return E * np.where(E.sum(axis=0) < 0, -1.0, 1.0)


def regression_noise_std(lr_hsi: np.ndarray) -> np.ndarray:
    """Per-band noise std by multiple regression of each band on all others.

    Bioucas-Dias & Nascimento, "Hyperspectral subspace identification", IEEE TGRS 46(8), 2008
    (the noise estimator of HySime): the residual sum of squares of band i regressed on the
    other bands is ``1 / (G⁻¹)_ii`` with G the band Gram matrix.
    """
    B = lr_hsi.shape[2]
    Y = lr_hsi.reshape(-1, B).astype(np.float64)
    n = Y.shape[0]
    G = Y.T @ Y
    G += 1e-10 * np.trace(G) / B * np.eye(B)
    rss = 1.0 / np.diag(np.linalg.inv(G))
    return np.sqrt(np.maximum(rss, 0.0) / max(n - B + 1, 1))


def mad_noise_std(image: np.ndarray) -> np.ndarray:
    """Per-band noise std from the median absolute deviation of the finest diagonal Haar
    detail (Donoho & Johnstone, Biometrika 81(3), 1994): ``σ = median|d| / 0.6745``."""
    x = image.astype(np.float64)
    r, c = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
    x = x[:r, :c]
    d = (x[0::2, 0::2] - x[1::2, 0::2] - x[0::2, 1::2] + x[1::2, 1::2]) / 2.0
    return np.median(np.abs(d.reshape(-1, x.shape[2])), axis=0) / 0.6745


def _is_5_smooth(n: int) -> bool:
    for f in (2, 3, 5):
        while n % f == 0:
            n //= f
    return n == 1


def auto_pad(problem: FusionProblem, psf: np.ndarray) -> tuple[int, int]:
    """LR pixels of symmetric padding (rows, cols) that keep the periodic wrap-around away
    from the image: none when the problem's own border is periodic, else at least the PSF
    radius plus one LR pixel, rounded up to multiples of s, plus one; then grown until the
    padded LR size has no prime factor above 5 (fast FFTs)."""
    if problem.border == "wrap":
        return 0, 0
    s = problem.scale
    radius = (max(psf.shape) - 1) // 2 + s
    least = int(np.ceil(radius / s)) + 1
    pads = []
    for n in problem.lr_hsi.shape[:2]:
        pad = least
        while not _is_5_smooth(n + 2 * pad):
            pad += 1
        pads.append(pad)
    return pads[0], pads[1]


def resolve_pad(problem: FusionProblem, psf: np.ndarray, pad: int | None) -> tuple[int, int]:
    """The (rows, cols) padding in LR pixels: ``pad`` for both axes, or :func:`auto_pad`."""
    return auto_pad(problem, psf) if pad is None else (int(pad), int(pad))


def pad_pair(lr_hsi, hr_msi, scale: int, pad: tuple[int, int]):
    """Symmetric ('half-sample') padding of the LR-HSI by ``pad`` = (rows, cols) LR pixels and
    of the HR-MSI by ``scale·pad`` HR pixels, so LR pixel i still sits at HR pixel
    ``s·i + offset``.

    With the default phase ``offset = s/2 − 1`` the mirrored LR samples land one HR pixel
    away from where the mirrored MSI would put them; the mismatch lies in the padding only,
    which is cropped off afterwards.
    """
    pr, pc = pad
    if pr == 0 and pc == 0:
        return lr_hsi, hr_msi
    lr = np.pad(lr_hsi, ((pr, pr), (pc, pc), (0, 0)), mode="symmetric")
    hr = np.pad(hr_msi, ((scale * pr, scale * pr), (scale * pc, scale * pc), (0, 0)),
                mode="symmetric")
    return lr, hr


def crop_padding(x: np.ndarray, scale: int, pad: tuple[int, int]) -> np.ndarray:
    """Undo :func:`pad_pair` on an HR cube (rows, cols, bands)."""
    pr, pc = scale * pad[0], scale * pad[1]
    return x[pr:x.shape[0] - pr, pc:x.shape[1] - pc]


def known_or_estimated_degradation(problem: FusionProblem, method_name: str):
    """(psf, srf, estimated) for a method that needs both: the problem's own, or, for the
    missing ones, those of :func:`hmifbench.methods.hysure.estimate_degradation` (HySure's
    quadratic estimator; blind setting)."""
    if problem.psf is not None and problem.srf is not None:
        return problem.psf, problem.srf, False
    try:
        from hmifbench.methods.hysure import estimate_degradation
    except ImportError:
        raise InputError(f"method {method_name!r} needs the psf and srf (known setting); the "
                         "blind estimator hmifbench.methods.hysure.estimate_degradation is "
                         "not available") from None
    psf, srf = estimate_degradation(problem.lr_hsi, problem.hr_msi, problem.scale,
                                    offset=problem.offset, border=problem.border,
                                    psf=problem.psf, srf=problem.srf)
    return np.asarray(psf, dtype=np.float64), np.asarray(srf, dtype=np.float64), True


# --------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------

class FUSE(Method):
    """FUSE: HS–MS fusion as the closed-form solution of a Sylvester equation.

    Q. Wei, N. Dobigeon, J.-Y. Tourneret, "Fast fusion of multi-band images based on solving a
    Sylvester equation", IEEE TIP 24(11):4109–4121, 2015.

    Model (the paper's Sec. II, in our array layout): bands × pixels matrices
    ``Y_h = X·B·S + N_h``, ``Y_m = R·X + N_m``, and ``X = E·U`` with E (B × p) an orthonormal
    spectral subspace learnt from the LR-HSI by SVD (PCA without centring; ``subspace_dim``).
    The MAP estimate under the Gaussian prior ``u_i ~ N(μ_i, Σ)`` minimises

        ½‖Λ_h^{-½}(Y_h − E·U·B·S)‖² + ½‖Λ_m^{-½}(Y_m − R·E·U)‖² + ½·w·Σ_i (u_i − μ_i)ᵀ Σ⁻¹ (u_i − μ_i)

    whose normal equations are the generalised Sylvester equation ``C₁U + UC₂ = C₃`` of Sec. III
    ``EᵀΛ_h⁻¹E·U·(BS)(BS)ᵀ + ((RE)ᵀΛ_m⁻¹RE + wΣ⁻¹)·U = EᵀΛ_h⁻¹Y_h(BS)ᵀ + (RE)ᵀΛ_m⁻¹Y_m + wΣ⁻¹μ``,
    (after multiplying by (EᵀΛ_h⁻¹E)⁻¹), solved exactly by :class:`SylvesterSolver` (Sec. III,
    Lemma 1 and Algorithm 1). No iteration.

    Choices the paper leaves to the user (ours, documented):

    * μ: the LR-HSI upsampled by phase-aligned bicubic interpolation, projected on E (the
      paper's experiments use an interpolated HSI as the prior mean).
    * Σ: the sample covariance of μ's coefficients (plus a 1e-8·trace ridge), scaled by
      ``1/prior_weight``. With exact MSI data, the MAP then injects the MSI detail into the
      subspace components by the regression that Σ implies.
    * Λ_h, Λ_m: diagonal. The HSI noise is estimated per band by multiple regression (HySime's
      estimator), the MSI noise by the wavelet MAD; both floored at ``min_noise_std`` = 1e-4,
      the noise level implied by the authors' released code (unit noise covariance on data
      scaled by 10⁴).

    Boundary handling (the FFT diagonalisation assumes a periodic blur): unless the
    problem's border is ``"wrap"``, the LR-HSI and the HR-MSI are symmetrically padded by
    ``pad`` LR pixels (``s·pad`` HR pixels), fused on the periodic padded grid, and cropped.
    Without padding (``pad=0``) on reflect101-simulated data, the wrap-around discontinuity
    produces ringing along the image border that costs about 10 dB of PSNR at ×8 on small
    scenes (tests/test_fuse_sylvester.py checks that padding gains at least 3 dB). The
    padded LR samples sit one HR pixel off the mirrored MSI (see :func:`pad_pair`); that
    residual mismatch lies in the cropped margin.

    Blind setting: a PSF or SRF not given is estimated by
    :func:`hmifbench.methods.hysure.estimate_degradation` (HySure's quadratic estimator) and
    returned in :class:`Fused`.
    """

    name = "fuse"
    family = "linear"
    blind = True  # with hysure.estimate_degradation when the PSF or SRF is not given
    needs_psf = False
    needs_srf = False
    resources = Resources(mem_mb=2000, runtime_min=10)
    citation = ("Q. Wei, N. Dobigeon, J.-Y. Tourneret, IEEE TIP 24(11):4109-4121, 2015")
    licence = "BSD-3-Clause (hmifbench)"

    @dataclass
    class Params:
        subspace_dim: int = param(10, "dimension p of the spectral subspace (PCA of the LR-HSI); "
                                      "capped at the number of bands and of LR pixels")
        prior_weight: float = param(1.0, "weight w of the Gaussian prior (Σ⁻¹ is multiplied by it)")
        hsi_noise_std: float | None = param(None, "HSI noise std (reflectance units); None "
                                                  "estimates it per band by multiple regression")
        msi_noise_std: float | None = param(None, "MSI noise std; None estimates it per band "
                                                  "by the wavelet MAD")
        min_noise_std: float = param(1e-4, "floor of the noise std estimates")
        pad: int | None = param(None, "symmetric padding in LR pixels against the periodic-blur "
                                      "assumption; None: 0 for 'wrap' borders, else about PSF radius/s + 2")

    @classmethod
    def validate_params(cls, p):
        if p.subspace_dim < 1:
            raise InputError(f"parameter 'subspace_dim' must be >= 1, got {p.subspace_dim}")
        if not p.prior_weight > 0:
            raise InputError(f"parameter 'prior_weight' must be > 0, got {p.prior_weight}")
        for name in ("hsi_noise_std", "msi_noise_std"):
            v = getattr(p, name)
            if v is not None and not v > 0:
                raise InputError(f"parameter {name!r} must be > 0 or None, got {v}")
        if not p.min_noise_std > 0:
            raise InputError(f"parameter 'min_noise_std' must be > 0, got {p.min_noise_std}")
        if p.pad is not None and p.pad < 0:
            raise InputError(f"parameter 'pad' must be >= 0 or None, got {p.pad}")

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        self.check_problem(problem)
        prm = self.params
        psf, srf, estimated = known_or_estimated_degradation(problem, self.name)
        s, off = problem.scale, problem.offset
        yh = problem.lr_hsi.astype(np.float64)
        ym = problem.hr_msi.astype(np.float64)
        B = yh.shape[2]
        p = min(prm.subspace_dim, B, yh.shape[0] * yh.shape[1])

        sd_h = (np.full(B, prm.hsi_noise_std) if prm.hsi_noise_std is not None
                else regression_noise_std(yh))
        sd_m = (np.full(ym.shape[2], prm.msi_noise_std) if prm.msi_noise_std is not None
                else mad_noise_std(ym))
        sd_h = np.maximum(sd_h, prm.min_noise_std)
        sd_m = np.maximum(sd_m, prm.min_noise_std)

        pad = resolve_pad(problem, psf, prm.pad)
        yh_p, ym_p = pad_pair(yh, ym, s, pad)
        E, coef = self.map_coefficients(yh_p, ym_p, psf, srf, s, off, p, sd_h, sd_m)
        Hp, Wp = ym_p.shape[:2]
        x = (E @ coef.reshape(p, -1)).T.reshape(Hp, Wp, B)
        x = crop_padding(x, s, pad)
        return Fused(x.astype(np.float32),
                     psf=psf if problem.psf is None else None,
                     srf=srf if problem.srf is None else None,
                     iterations=None,
                     extras={"subspace_dim": int(p), "pad_lr": list(pad),
                             "hsi_noise_std": sd_h.tolist(), "msi_noise_std": sd_m.tolist(),
                             "degradation": "estimated" if estimated else "given"})

    def map_coefficients(self, yh, ym, psf, srf, s, off, p, sd_h, sd_m):
        """The subspace E (B × p) and the MAP coefficients U (p, rows, cols) on the grid of
        ``ym`` (the padded one), for noise stds ``sd_h`` (B,) and ``sd_m`` (b,)."""
        from hmifbench.methods._common import upsample_cubic

        H, W, b = ym.shape
        B = yh.shape[2]
        E = spectral_subspace(yh, p)                              # (B, p)
        RE = np.asarray(srf) @ E                                  # (b, p)
        wh, wm = 1.0 / sd_h**2, 1.0 / sd_m**2
        # Upsampling is linear per band, so it commutes with the projection on E.
        coef_lr = (yh.reshape(-1, B) @ E).reshape(*yh.shape[:2], p)
        mu = upsample_cubic(coef_lr, s, off).reshape(-1, p).T.astype(np.float64)   # (p, N)
        cov = np.cov(mu)
        cov = np.atleast_2d(cov) + 1e-8 * np.trace(np.atleast_2d(cov)) / p * np.eye(p)
        prec = self.params.prior_weight * np.linalg.inv(cov)

        A = E.T @ (wh[:, None] * E)
        Bm = RE.T @ (wm[:, None] * RE) + prec
        G = transfer_function(psf, (H, W), off)
        yh_sub = (E.T * wh) @ yh.reshape(-1, B).T                 # EᵀΛ_h⁻¹Y_h, (p, n)
        rhs = periodic_adjoint(yh_sub.reshape(p, *yh.shape[:2]), G, s)
        rhs += ((RE.T * wm) @ ym.reshape(-1, b).T + prec @ mu).reshape(p, H, W)
        return E, SylvesterSolver(G, s, A, Bm).solve(rhs)
