"""``upsample``: bicubic interpolation of the LR-HSI, the floor every fusion method must beat."""

from __future__ import annotations

from hmifbench.method import Fused, FusionProblem, Method, Resources


class Upsample(Method):
    """Bicubic (Keys, a = −0.5) upsampling of the LR-HSI; the HR-MSI is ignored.

    LR pixel i is placed at HR position ``s·i + offset`` (the problem's decimation phase), so
    the interpolation is aligned with the simulation. Keys, "Cubic convolution interpolation
    for digital image processing", IEEE TASSP 29(6), 1981.
    """

    name = "upsample"
    family = "linear"
    blind = True
    resources = Resources(mem_mb=1000, runtime_min=5)
    citation = "R. Keys, IEEE Trans. ASSP 29(6):1153-1160, 1981"
    licence = "BSD-3-Clause (hmifbench)"

    def fuse(self, problem: FusionProblem, *, state=None, seed=0, device="auto", progress=None):
        from hmifbench.observation import upsample_bicubic

        return Fused(upsample_bicubic(problem.lr_hsi, problem.scale, problem.offset))
