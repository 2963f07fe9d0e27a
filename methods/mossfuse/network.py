"""The MossFuse network: two decoupling encoders, three self-supervised decoders, the fusion
decoder with Spatial- and Spectral-Aware Aggregation, and the degradation estimator.

S. Du, Y. Zou, Z. Wang, X. Li, Y. Li, C. Shang, Q. Shen, "Unsupervised Hyperspectral and
Multispectral Image Fusion via Self-Supervised Modality Decoupling", arXiv:2412.04802.
Written from the paper and a reading of the released code (docs/references.md); the layer
layout and widths follow the authors' released configuration so that the parameter counts
agree module by module (585,485 in total for width 48 and one block).

Building blocks cited:

* Transformer block with multi-Dconv head transposed attention (MDTA) and gated-Dconv
  feed-forward network (GDFN): S. W. Zamir et al., "Restormer", CVPR 2022, Eqs. (1)–(4).
* Large-kernel block with dilated re-parameterisation, squeeze-and-excitation and global
  response normalisation: X. Ding et al., "UniRepLKNet", CVPR 2024 (§3, Fig. 2); GRN from
  S. Woo et al., "ConvNeXt V2", CVPR 2023, Eqs. (1)–(3).

Tensors are (N, C, H, W). Every feature map lives on the HR grid: the LR-HSI is upsampled
bilinearly by s before its encoder, as in the released code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hmifbench.methods.mossfuse.degradation import DegradationEstimator

#: When False, layer norm and the attention's L2 normalisation run as literal,
#: unfused formulas (the reference formulation); the benchmark uses it to show that the fused
#: forms below change timings, not results.
FAST_OPS = True


def pointwise(x, conv: nn.Conv2d):
    """A 1×1 convolution (no bias) as a matrix product over channels.

    On channels-last input the permuted view is contiguous, so this is a single GEMM without
    copies (PyTorch's CPU conv falls back to im2col for 1×1 kernels); the result is
    channels-last as well. With ``FAST_OPS`` off it is the plain convolution.
    """
    if not FAST_OPS:
        return conv(x)
    w = conv.weight.reshape(conv.out_channels, conv.in_channels)
    return F.linear(x.permute(0, 2, 3, 1), w).permute(0, 3, 1, 2)


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channels of every pixel, with a learned scale and bias.

    ``y = (x − μ_c) / sqrt(σ²_c + 1e-5) · w + b``, with μ_c and σ²_c (biased) taken over the
    channels of each pixel (Restormer's "WithBias" layer norm).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        if FAST_OPS:
            # One fused kernel on the channels-last view instead of five elementwise passes.
            y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, 1e-5)
            return y.permute(0, 3, 1, 2)
        mu = x.mean(1, keepdim=True)
        var = x.var(1, keepdim=True, unbiased=False)
        return (x - mu) / torch.sqrt(var + 1e-5) * self.weight[:, None, None] + self.bias[:, None, None]


def project_split(x, pw: nn.Conv2d, dw: nn.Conv2d, parts: int):
    """``dw(pw(x))`` (a 1×1 conv then a 3×3 depthwise conv) split into ``parts`` equal
    channel groups.

    The fast form computes each group from its slice of the two weights, so no full-size
    tensor is chunked (chunk's backward concatenates full-size gradients).
    """
    if not FAST_OPS:
        return dw(pw(x)).chunk(parts, dim=1)
    step = pw.out_channels // parts
    w = pw.weight.reshape(pw.out_channels, pw.in_channels)
    xt = x.permute(0, 2, 3, 1)
    out = []
    for i in range(parts):
        sl = slice(i * step, (i + 1) * step)
        y = F.linear(xt, w[sl]).permute(0, 3, 1, 2)
        out.append(F.conv2d(y, dw.weight[sl], padding=dw.padding, groups=step))
    return out


def pixel_norms(x, eps: float = 1e-12):
    """L2 norm over the pixels of (N, P, C) input, at least ``eps``: (N, C).

    Computed as one batched vector–matrix product ``1ᵀ (x ⊙ x)`` per image: the reduction of
    ``vector_norm(x, dim=1)`` runs across the contiguous channel axis and is dozens of times
    slower on a CPU (it was 30 % of the 512² forward pass). Same value to float rounding.
    The floor is applied before the square root, so the gradient stays finite at 0.
    """
    ones = x.new_ones(x.shape[0], 1, x.shape[1])
    return torch.bmm(ones, x * x)[:, 0].clamp_min(eps * eps).sqrt()


def _pixels(x):
    """(N, C, H, W) → (N, HW, C); a view for channels-last input."""
    n, c = x.shape[:2]
    return x.permute(0, 2, 3, 1).reshape(n, -1, c)


def _image(x, like):
    """(N, HW, C) → (N, C, H, W) channels-last, shaped like ``like``."""
    n, c, h, w = like.shape
    return x.reshape(n, h, w, c).permute(0, 3, 1, 2)


def attention_matrix(q, k, heads: int, temperature):
    """The channel attention of Restormer, Eq. (2), as a block-diagonal (N, C, C) matrix A:
    for head h, ``A_h = softmax(τ_h · q̂_h k̂_hᵀ)`` with q̂, k̂ L2-normalised over the pixels;
    the attention output is ``A v`` (per pixel, over channels).
    """
    n, c = q.shape[:2]
    d = c // heads
    qf, kf = _pixels(q), _pixels(k)
    # One (C × C) GEMM over the pixels, then keep the diagonal head blocks: cheaper on CPU than
    # per-head products, which need full-size layout copies.
    gram = (qf.transpose(1, 2) @ kf).view(n, heads, d, heads, d)
    gram = gram.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)  # (N, heads, d, d)
    # Normalising the Gram entries equals normalising q and k (F.normalize's eps = 1e-12).
    qn = pixel_norms(qf).view(n, heads, d, 1)
    kn = pixel_norms(kf).view(n, heads, 1, d)
    attn = (gram / (qn * kn) * temperature).softmax(dim=-1)
    eye = torch.eye(heads, dtype=attn.dtype, device=attn.device)
    return torch.einsum("nhij,hg->nhigj", attn, eye).reshape(n, c, c)


def transposed_attention(q, k, v, heads: int, temperature):
    """Channel ("transposed") attention of Restormer, Eq. (2): per head,
    ``softmax(τ · q̂ k̂ᵀ) v`` where q̂, k̂ are q, k L2-normalised over the pixels.

    q, k, v : (N, C, H, W); temperature : (heads, 1, 1). Returns (N, C, H, W).
    """
    if not FAST_OPS:
        n, c, h, w = q.shape
        q, k, v = (t.reshape(n, heads, c // heads, h * w) for t in (q, k, v))
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        attn = (attn * temperature).softmax(dim=-1)
        return (attn @ v).reshape(n, c, h, w)
    a = attention_matrix(q, k, heads, temperature)
    return _image(_pixels(v) @ a.transpose(1, 2), v)


class GatedFeedForward(nn.Module):
    """GDFN (Restormer Eq. 4): 1×1 conv to 2·hidden, 3×3 depthwise conv, GELU(a) ⊙ b, 1×1 conv."""

    def __init__(self, channels: int, expansion: float = 2.0):
        super().__init__()
        hidden = int(channels * expansion)
        self.project_in = nn.Conv2d(channels, hidden * 2, 1, bias=False)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project_out = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x):
        a, b = project_split(x, self.project_in, self.dwconv, 2)
        return pointwise(F.gelu(a) * b, self.project_out)


class ChannelSelfAttention(nn.Module):
    """MDTA (Restormer Eq. 2): q, k, v from a 1×1 then a 3×3 depthwise conv, channel attention
    per head with a learned temperature, 1×1 output projection."""

    def __init__(self, channels: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3,
                                    bias=False)
        self.project_out = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        q, k, v = project_split(x, self.qkv, self.qkv_dwconv, 3)
        if not FAST_OPS:
            return self.project_out(transposed_attention(q, k, v, self.heads, self.temperature))
        # Fold the output projection into the attention: W·(A v) = (W A) v, one GEMM.
        a = attention_matrix(q, k, self.heads, self.temperature)
        w = self.project_out.weight.reshape(self.project_out.out_channels, -1)
        return _image(_pixels(v) @ (w @ a).transpose(1, 2), v)


class TransformerBlock(nn.Module):
    """Restormer block: ``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``."""

    def __init__(self, channels: int, heads: int, expansion: float = 2.0):
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels)
        self.attn = ChannelSelfAttention(channels, heads)
        self.norm2 = ChannelLayerNorm(channels)
        self.ffn = GatedFeedForward(channels, expansion)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class SpatialGate(nn.Module):
    """A one-channel spatial map in (0, 1): 1×1 convs C → C/8 → C/8 → 1 with ReLU, sigmoid."""

    def __init__(self, channels: int):
        super().__init__()
        r = max(channels // 8, 1)
        self.body = nn.Sequential(nn.Conv2d(channels, r, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(r, r, 1, bias=False), nn.ReLU(),
                                  nn.Conv2d(r, 1, 1, bias=False), nn.Sigmoid())

    def forward(self, x):
        c1, _, c2, _, c3, _ = self.body
        y = F.relu(pointwise(F.relu(pointwise(x, c1)), c2))
        return torch.sigmoid(pointwise(y, c3))


class ChannelGate(nn.Module):
    """Per-channel weights in (0, 1) from the global average: Linear C → C/8 → C/8 → C with
    GELU, sigmoid; returned as (N, C, 1, 1)."""

    def __init__(self, channels: int):
        super().__init__()
        r = max(channels // 8, 1)
        self.body = nn.Sequential(nn.Linear(channels, r, bias=False), nn.GELU(),
                                  nn.Linear(r, r, bias=False), nn.GELU(),
                                  nn.Linear(r, channels, bias=False), nn.Sigmoid())

    def forward(self, x):
        return self.body(x.mean(dim=(2, 3)))[:, :, None, None]


class GuidedChannelAttention(nn.Module):
    """The cross attention inside the two aggregation blocks (MossFuse §3, Fig. 2).

    ``kind="spatial"`` (Spatial-Aware Aggregation): ``q ← q ⊙ SA(g)``, O = channel attention,
    ``g' = DWConv3×3(g) ⊙ CA(O)``, output ``Proj(O + g')``.
    ``kind="spectral"`` (Spectral-Aware Aggregation): ``q ← q ⊙ CA(g)``,
    ``g' = Conv1×1(g) ⊙ SA(O)`` (a dense 1×1 conv, as released).
    x is the (layer-normed) main feature, g the guiding complementary feature (not normed).
    """

    def __init__(self, channels: int, heads: int, kind: str):
        super().__init__()
        if kind not in ("spatial", "spectral"):
            raise ValueError(f"kind must be 'spatial' or 'spectral', got {kind!r}")
        self.kind = kind
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, channels * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(channels * 3, channels * 3, 3, padding=1, groups=channels * 3,
                                    bias=False)
        self.project_out = nn.Conv2d(channels, channels, 1, bias=False)
        self.spatial_gate = SpatialGate(channels)
        self.channel_gate = ChannelGate(channels)
        if kind == "spatial":
            self.guide_conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        else:
            self.guide_conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x, guide):
        q, k, v = project_split(x, self.qkv, self.qkv_dwconv, 3)
        if self.kind == "spatial":
            q = q * self.spatial_gate(guide)
            o = transposed_attention(q, k, v, self.heads, self.temperature)
            g = self.guide_conv(guide) * self.channel_gate(o)
        else:
            q = q * self.channel_gate(guide)
            o = transposed_attention(q, k, v, self.heads, self.temperature)
            g = pointwise(guide, self.guide_conv) * self.spatial_gate(o)
        return pointwise(o + g, self.project_out)


class AggregationBlock(nn.Module):
    """Spatial-Aware (``kind="spatial"``) or Spectral-Aware (``kind="spectral"``) Aggregation:
    a transformer block whose attention is :class:`GuidedChannelAttention`, guided by the
    complementary feature: ``x + GCA(LN(x), g)`` then ``x + GDFN(LN(x))``."""

    def __init__(self, channels: int, heads: int, kind: str, expansion: float = 2.0):
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels)
        self.attn = GuidedChannelAttention(channels, heads, kind)
        self.norm2 = ChannelLayerNorm(channels)
        self.ffn = GatedFeedForward(channels, expansion)

    def forward(self, x, guide):
        x = x + self.attn(self.norm1(x), guide)
        return x + self.ffn(self.norm2(x))


class DilatedLargeKernel(nn.Module):
    """UniRepLKNet's dilated re-parameterisable 7×7 depthwise conv (training form): a 7×7
    depthwise conv + BN plus depthwise branches (5×5, d=1), (3×3, d=2), (3×3, d=3), each + BN,
    summed. All four branches see the same receptive field of 7×7."""

    BRANCHES = ((5, 1), (3, 2), (3, 3))

    def __init__(self, channels: int):
        super().__init__()
        self.large = nn.Conv2d(channels, channels, 7, padding=3, groups=channels, bias=False)
        self.large_bn = nn.BatchNorm2d(channels)
        self.dilated = nn.ModuleList(
            nn.Conv2d(channels, channels, k, padding=(r * (k - 1) + 1) // 2, dilation=r,
                      groups=channels, bias=False) for k, r in self.BRANCHES)
        self.dilated_bn = nn.ModuleList(nn.BatchNorm2d(channels) for _ in self.BRANCHES)

    def forward(self, x):
        out = self.large_bn(self.large(x))
        for conv, bn in zip(self.dilated, self.dilated_bn):
            out = out + bn(conv(x))
        return out

    def folded(self, outer_bn: nn.BatchNorm2d):
        """(weight, bias) of the single 7×7 depthwise conv equal to ``outer_bn(self(x))`` with
        every BatchNorm at its running statistics (UniRepLKNet's structural
        re-parameterisation, §3.3): each dilated kernel is spread onto the 7×7 grid."""
        weight, bias = _fold_bn(self.large.weight, self.large_bn)
        for (k, r), conv, bn in zip(self.BRANCHES, self.dilated, self.dilated_bn):
            w, b = _fold_bn(conv.weight, bn)
            lo = 3 - r * (k - 1) // 2
            grid = torch.zeros_like(weight)
            grid[:, :, lo:lo + r * (k - 1) + 1:r, lo:lo + r * (k - 1) + 1:r] = w
            weight, bias = weight + grid, bias + b
        s = outer_bn.weight / torch.sqrt(outer_bn.running_var + outer_bn.eps)
        return weight * s[:, None, None, None], (bias - outer_bn.running_mean) * s + outer_bn.bias


def _fold_bn(weight, bn: nn.BatchNorm2d):
    """Conv weight and bias equal to ``bn(conv(x))`` for a bias-free conv, BN in eval mode."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return weight * s[:, None, None, None], bn.bias - bn.running_mean * s


class GlobalResponseNorm(nn.Module):
    """GRN (ConvNeXt V2, Eqs. 1–3) on channels-last input:
    ``(γ · N(x) + 1) · x + β`` with ``N(x)_c = ‖x_c‖₂ / (mean_c ‖x_c‖₂ + 1e-6)`` over pixels."""

    def __init__(self, channels: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x):  # x: (N, H, W, C)
        gx = torch.linalg.vector_norm(x, dim=(1, 2), keepdim=True)
        nx = gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)
        return (self.gamma * nx + 1) * x + self.beta


class SqueezeExcite(nn.Module):
    """SE block: global average, 1×1 conv C → C/4 (bias), ReLU, 1×1 conv C/4 → C (bias),
    sigmoid, channel reweighting."""

    def __init__(self, channels: int):
        super().__init__()
        r = max(channels // 4, 1)
        self.down = nn.Conv2d(channels, r, 1, bias=True)
        self.up = nn.Conv2d(r, channels, 1, bias=True)

    def forward(self, x):
        w = torch.sigmoid(self.up(F.relu(self.down(x.mean(dim=(2, 3), keepdim=True)))))
        return x * w


class LargeKernelBlock(nn.Module):
    """UniRepLKNet block: ``x + γ · BN(W₂ · GRN(GELU(W₁ · SE(BN(DLK(x))))))``.

    ``kernel_size`` 7 uses :class:`DilatedLargeKernel` + BN first; 0 skips that step (the
    released encoders use one 7 and two 0 blocks per head). γ is a per-channel layer scale
    initialised to 1e-6, so the block starts close to the identity. BatchNorm uses batch
    statistics in training and running statistics in eval mode.
    """

    def __init__(self, channels: int, kernel_size: int, expansion: int = 4):
        super().__init__()
        if kernel_size not in (0, 7):
            raise ValueError("kernel_size must be 0 or 7")
        self.token_mixer = (nn.Sequential(DilatedLargeKernel(channels), nn.BatchNorm2d(channels))
                            if kernel_size else nn.Identity())
        self.se = SqueezeExcite(channels)
        hidden = expansion * channels
        self.pwconv1 = nn.Linear(channels, hidden)
        self.grn = GlobalResponseNorm(hidden)
        self.pwconv2 = nn.Linear(hidden, channels, bias=False)
        self.out_bn = nn.BatchNorm2d(channels)
        self.gamma = nn.Parameter(1e-6 * torch.ones(channels))

    def forward(self, x):
        if not FAST_OPS:
            y = self.se(self.token_mixer(x)).permute(0, 2, 3, 1)
            y = self.pwconv2(self.grn(F.gelu(self.pwconv1(y))))
            y = self.out_bn(y.permute(0, 3, 1, 2))
            return x + self.gamma[:, None, None] * y
        folded = not self.training and not isinstance(self.token_mixer, nn.Identity)
        if folded:  # eval: the four BN'd depthwise branches and the BN are one 7×7 conv
            w, b = self.token_mixer[0].folded(self.token_mixer[1])
            t = F.conv2d(x, w, b, padding=3, groups=x.shape[1])
        else:
            t = self.token_mixer(x)
        z = F.gelu(self.pwconv1(self.se(t).permute(0, 2, 3, 1)))  # (N, H, W, 4C)
        # GRN folded into the second projection: W·((γ·N(z) + 1) ⊙ z + β) =
        # (W·diag(γ·N(z) + 1))·z + W·β, one batched GEMM instead of two full-size passes.
        n, h, w_, c4 = z.shape
        gx = pixel_norms(z.reshape(n, -1, c4))  # (N, 4C)
        scale = self.grn.gamma * (gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)) + 1
        weight = self.pwconv2.weight[None] * scale[:, None, :]  # (N, C, 4C)
        bias = self.pwconv2.weight @ self.grn.beta
        if self.training:
            y = torch.baddbmm(bias, z.reshape(n, -1, c4), weight.transpose(1, 2))
            y = self.out_bn(y.reshape(n, h, w_, -1).permute(0, 3, 1, 2))
            return x + self.gamma[:, None, None] * y
        # eval: the output BN (running statistics) and the layer scale fold in as well.
        s = self.out_bn.weight / torch.sqrt(self.out_bn.running_var + self.out_bn.eps)
        g = self.gamma * s
        bias = self.gamma * (s * (bias - self.out_bn.running_mean) + self.out_bn.bias)
        y = torch.baddbmm(bias, z.reshape(n, -1, c4), (weight * g[None, :, None]).transpose(1, 2))
        return x + y.reshape(n, h, w_, -1).permute(0, 3, 1, 2)


def _transformers(channels: int, heads: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(TransformerBlock(channels, heads) for _ in range(count)))


def _output_head(channels: int, out_bands: int) -> nn.Sequential:
    """3×3 conv C → C/2, LeakyReLU(0.01), 3×3 conv C/2 → out; no output activation."""
    return nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False),
                         nn.LeakyReLU(),
                         nn.Conv2d(channels // 2, out_bands, 3, padding=1, bias=False))


class MSIEncoder(nn.Module):
    """HR-MSI encoder: 3×3 embedding, ``blocks`` transformer blocks, then two heads:
    shared (modality-shared F_Y^S): LK7, LK0, LK0, TB; complementary (F_Y^C): LK7, LK0, LK0.
    Without decoupling only the shared head exists."""

    def __init__(self, in_bands, channels, blocks, heads, decoupling=True):
        super().__init__()
        self.embed = nn.Conv2d(in_bands, channels, 3, padding=1, bias=False)
        self.trunk = _transformers(channels, heads, blocks)
        self.shared = nn.Sequential(LargeKernelBlock(channels, 7), LargeKernelBlock(channels, 0),
                                    LargeKernelBlock(channels, 0), TransformerBlock(channels, heads))
        self.complementary = (nn.Sequential(LargeKernelBlock(channels, 7), LargeKernelBlock(channels, 0),
                                            LargeKernelBlock(channels, 0)) if decoupling else None)

    def forward(self, y):
        t = self.trunk(self.embed(y))
        s = self.shared(t)
        return s, (self.complementary(t) if self.complementary is not None else s)


class HSIEncoder(nn.Module):
    """LR-HSI encoder (on the bilinearly upsampled HSI): 3×3 embedding, ``blocks`` transformer
    blocks, shared head TB, LK7, LK0, LK0 (F_x^S) and complementary head TB (F_x^C)."""

    def __init__(self, in_bands, channels, blocks, heads, decoupling=True):
        super().__init__()
        self.embed = nn.Conv2d(in_bands, channels, 3, padding=1, bias=False)
        self.trunk = _transformers(channels, heads, blocks)
        self.shared = nn.Sequential(TransformerBlock(channels, heads), LargeKernelBlock(channels, 7),
                                    LargeKernelBlock(channels, 0), LargeKernelBlock(channels, 0))
        self.complementary = TransformerBlock(channels, heads) if decoupling else None

    def forward(self, x_up):
        t = self.trunk(self.embed(x_up))
        s = self.shared(t)
        return s, (self.complementary(t) if self.complementary is not None else s)


class SelfDecoder(nn.Module):
    """A self-supervised decoder that rebuilds one input from its own two features:
    aggregation(F^S, F^C) (spatial for the MSI, spectral for the HSI), ``blocks − 1``
    transformer blocks, output head.

    ``unused_reduce`` is a 1×1 conv (2C → C) that the released decoders define but never call;
    it is kept, unused, so that parameter counts equal the released configuration's.
    """

    def __init__(self, out_bands, channels, blocks, heads, kind):
        super().__init__()
        self.unused_reduce = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.aggregate = AggregationBlock(channels, heads, kind)
        self.body = _transformers(channels, heads, blocks - 1)
        self.head = _output_head(channels, out_bands)

    def forward(self, shared, complementary):
        return self.head(self.body(self.aggregate(shared, complementary)))


class LRMSIDecoder(nn.Module):
    """The LR-MSI decoder: the two shared features concatenated, 1×1 conv 2C → C,
    ``blocks`` transformer blocks, output head (b bands, drawn on the HR grid)."""

    def __init__(self, out_bands, channels, blocks, heads):
        super().__init__()
        self.reduce = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.body = _transformers(channels, heads, blocks)
        self.head = _output_head(channels, out_bands)

    def forward(self, shared_msi, shared_hsi):
        return self.head(self.body(pointwise(torch.cat((shared_msi, shared_hsi), dim=1), self.reduce)))


class FusionDecoder(nn.Module):
    """The fusion decoder: cat(F_Y^S, F_x^S) → 1×1 conv → Spatial-Aware Aggregation with F_Y^C
    → Spectral-Aware Aggregation with F_x^C → ``blocks`` transformer blocks → output head (B)."""

    def __init__(self, out_bands, channels, blocks, heads):
        super().__init__()
        self.reduce = nn.Conv2d(2 * channels, channels, 1, bias=False)
        self.spatial = AggregationBlock(channels, heads, "spatial")
        self.spectral = AggregationBlock(channels, heads, "spectral")
        self.body = _transformers(channels, heads, blocks)
        self.head = _output_head(channels, out_bands)

    def forward(self, shared_msi, comp_msi, shared_hsi, comp_hsi):
        z = pointwise(torch.cat((shared_msi, shared_hsi), dim=1), self.reduce)
        z = self.spectral(self.spatial(z, comp_msi), comp_hsi)
        return self.head(self.body(z))


class MossFuseNet(nn.Module):
    """The complete MossFuse model.

    Parameters
    ----------
    bands, msi_bands : int
        B (HSI) and b (MSI) band counts.
    scale : int
        Resolution ratio s.
    width : int
        Feature channels C (48 as released); must be a multiple of ``heads``.
    blocks : int
        Transformer blocks per stage (1 in the released checkpoint, 3 in its train.py).
    heads : int
        Attention heads (8).
    psf_size : int
        Side of the estimated PSF on the HR grid (the released code: s − 1).
    offset : int
        Decimation phase of the LR grid (LR pixel i ↔ HR pixel s·i + offset).
    decoupling : bool
        False builds the "no decoupling" variant: each encoder has only its shared head, whose
        output also stands in for the complementary feature wherever one is consumed.

    Notes
    -----
    Module names and their released counterparts: ``msi_encoder`` (modelE_MSI),
    ``hsi_encoder`` (modelE_HSI), ``msi_decoder`` (modelD_MSI), ``hsi_decoder`` (modelD_HSI),
    ``degradation`` (blind), ``lr_decoder`` (modelD_LR), ``fusion_decoder`` (modelD_HR).
    """

    INFERENCE_MODULES = ("msi_encoder", "hsi_encoder", "degradation", "fusion_decoder")

    def __init__(self, bands: int, msi_bands: int, scale: int, width: int = 48, blocks: int = 1,
                 heads: int = 8, psf_size: int = 31, offset: int = 15, decoupling: bool = True):
        super().__init__()
        if width % heads or width < 8:
            raise ValueError(f"width must be a multiple of heads ({heads}) and >= 8, got {width}")
        if blocks < 1:
            raise ValueError(f"blocks must be >= 1, got {blocks}")
        self.scale = int(scale)
        self.decoupling = bool(decoupling)
        self.msi_encoder = MSIEncoder(msi_bands, width, blocks, heads, decoupling)
        self.hsi_encoder = HSIEncoder(bands, width, blocks, heads, decoupling)
        self.msi_decoder = SelfDecoder(msi_bands, width, blocks, heads, "spatial")
        self.hsi_decoder = SelfDecoder(bands, width, blocks, heads, "spectral")
        self.degradation = DegradationEstimator(bands, msi_bands, scale, psf_size, offset)
        self.lr_decoder = LRMSIDecoder(msi_bands, width, blocks, heads)
        self.fusion_decoder = FusionDecoder(bands, width, blocks, heads)

    def upsample(self, x):
        """Bilinear ×s upsampling (``align_corners=False``), as the released model does."""
        return F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)

    def encode(self, msi, lr_hsi):
        """(F_Y^S, F_Y^C, F_x^S, F_x^C)."""
        fys, fyc = self.msi_encoder(msi)
        fxs, fxc = self.hsi_encoder(self.upsample(lr_hsi))
        return fys, fyc, fxs, fxc

    def forward(self, msi, lr_hsi, decoders: bool = True, msi_context=None, margin: int = 0):
        """Every output the losses need, as a dict.

        Keys: ``fys, fyc, fxs, fxc`` (features), ``msi_rec`` (Ŷ), ``hsi_rec`` (x̂ on the HR
        grid), ``lr_msi`` (ŷ from the LR decoder, HR grid), ``lr_msi_from_hsi`` (ŷ_x = SRF(x)),
        ``lr_msi_from_msi`` (ŷ_Y = PSF↓(Y)), ``srf`` (b × B), ``psf`` (k × k), ``fused`` (X̂).
        ``decoders=False`` skips the three self-supervised decoders (when L_SCT is off).
        ``msi_context``: the HR-MSI patch with ``margin`` extra pixels on every side, for the
        degradation branch (ŷ_Y) when the PSF reaches beyond the patch.
        """
        fys, fyc, fxs, fxc = self.encode(msi, lr_hsi)
        if msi_context is None:
            msi_context, margin = msi, 0
        y_x, y_y, srf, psf = self.degradation(lr_hsi, msi_context, margin)
        out = {"fys": fys, "fyc": fyc, "fxs": fxs, "fxc": fxc, "lr_msi_from_hsi": y_x,
               "lr_msi_from_msi": y_y, "srf": srf, "psf": psf,
               "fused": self.fusion_decoder(fys, fyc, fxs, fxc)}
        if decoders:
            out["msi_rec"] = self.msi_decoder(fys, fyc)
            out["hsi_rec"] = self.hsi_decoder(fxs, fxc)
            out["lr_msi"] = self.lr_decoder(fys, fxs)
        return out

    def fuse(self, msi, lr_hsi):
        """X̂ only: the inference path (encoders and fusion decoder), skipping the
        self-supervised decoders that the released test script also runs but discards."""
        return self.fusion_decoder(*self.encode(msi, lr_hsi))


def count_parameters(module: nn.Module) -> int:
    """Number of learnable scalars (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in module.parameters())


def parameter_table(model: MossFuseNet) -> dict[str, int]:
    """Parameters per top-level module, plus ``total`` and ``inference`` (the modules the
    released code counts for inference: both encoders, the degradation and the fusion decoder)."""
    table = {name: count_parameters(m) for name, m in model.named_children()}
    table["total"] = count_parameters(model)
    table["inference"] = sum(table[n] for n in MossFuseNet.INFERENCE_MODULES)
    return table
