"""The circulant observation operator of HS–MS fusion and its Sylvester-equation solver.

With a circulant blur (periodic border) and uniform decimation, the quadratic data term of
HS–MS fusion has a closed-form minimiser in the Fourier domain (Wei, Dobigeon and Tourneret,
"Fast fusion of multi-band images based on solving a Sylvester equation", IEEE TIP 24(11),
2015). FUSE solves its whole problem with it and LTMR its quadratic ADMM sub-problem, so it
lives here rather than in either method's module.
"""

from __future__ import annotations

import numpy as np

from hmifbench.errors import InputError
from hmifbench.method import FusionProblem


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
