"""The authors' released MossFuse checkpoints: reading them and mapping them onto our network.

The released code (dusongcheng/MossFuse, ``MossFuseNet.py``) saves
``{"Model_stage1": state_dict}`` from a ``DataParallel`` model, so every key starts with
``module.``. Its module and layer names differ from :mod:`.network`, but the tensors are the
same ones. :func:`key_map` states the correspondence explicitly, one released key to one of
ours; :func:`to_ours` applies it and refuses anything it does not cover exactly:

* every released key must be in the map, and every key of our model must be reached (no
  tensor is left at its initial value, none is dropped);
* the map is injective (two released tensors never land on one of ours);
* every shape is checked. Two kinds of tensor are stored in another shape and are the only
  ones reshaped: the GRN ``gamma``/``beta`` (released (1, 1, 1, C), a channels-last broadcast
  shape; ours (C,)) and the learned SRF (released (b, B, 1, 1), a 1×1 convolution weight;
  ours (b, B)). Both are views of the same numbers in the same order.

:func:`to_released` is the inverse, so a mapped state dict round-trips exactly.

The map covers the released layout with ``num_blocks`` transformer blocks in the encoder
trunks (``encoder_level1``) and in the LR and fusion decoders (``encoder_level2``). The two
self-supervised decoders hold ``num_blocks − 1`` blocks, none in the published checkpoint
(``num_blocks = 1``), so no released name for them is known; with more blocks they are left
out of the map and :func:`to_ours` names them as uncovered.
"""

from __future__ import annotations

from pathlib import Path

import torch

from hmifbench.errors import InputError

#: Our top-level modules by released name (``MossFuseNet.py``).
MODULES = {"modelE_MSI": "msi_encoder", "modelE_HSI": "hsi_encoder", "modelD_MSI": "msi_decoder",
           "modelD_HSI": "hsi_decoder", "blind": "degradation", "modelD_LR": "lr_decoder",
           "modelD_HR": "fusion_decoder"}

_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _transformer(rel: str, ours: str) -> dict[str, str]:
    """A Restormer block (``TransformerBlock``): the LayerNorms' ``.body`` level is dropped."""
    m = {}
    for norm in ("norm1", "norm2"):
        for p in ("weight", "bias"):
            m[f"{rel}.{norm}.body.{p}"] = f"{ours}.{norm}.{p}"
    for name in ("attn.temperature", "attn.qkv.weight", "attn.qkv_dwconv.weight",
                 "attn.project_out.weight", "ffn.project_in.weight", "ffn.dwconv.weight",
                 "ffn.project_out.weight"):
        m[f"{rel}.{name}"] = f"{ours}.{name}"
    return m


def _aggregation(rel: str, ours: str) -> dict[str, str]:
    """A Spatial/Spectral-Aware Aggregation block: a transformer block plus its two gates and
    the guide convolution (released ``DWConv``, dense 1×1 in the spectral block)."""
    m = _transformer(rel, ours)
    for i in (0, 2, 4):
        m[f"{rel}.attn.Spatial_Att.spatial_atten.{i}.weight"] = f"{ours}.attn.spatial_gate.body.{i}.weight"
        m[f"{rel}.attn.Spectral_Att.spectral_atten.{i}.weight"] = f"{ours}.attn.channel_gate.body.{i}.weight"
    m[f"{rel}.attn.DWConv.weight"] = f"{ours}.attn.guide_conv.weight"
    return m


def _large_kernel(rel: str, ours: str, kernel: bool) -> dict[str, str]:
    """A UniRepLKNet block. With the 7×7 token mixer: ``dwconv.lk_origin`` / ``origin_bn`` is
    our ``large`` / ``large_bn``; ``dil_conv_k5_1``, ``k3_2``, ``k3_3`` (and their BNs) are our
    dilated branches 0, 1, 2; ``norm`` is the BN after the mixer. ``pwconv1.1`` / ``act.1`` (GRN)
    / ``pwconv2.0`` / ``pwconv2.2`` (BN) are our ``pwconv1`` / ``grn`` / ``pwconv2`` / ``out_bn``."""
    m = {f"{rel}.gamma": f"{ours}.gamma"}
    if kernel:
        mixer = f"{ours}.token_mixer"
        m[f"{rel}.dwconv.lk_origin.weight"] = f"{mixer}.0.large.weight"
        m.update({f"{rel}.dwconv.origin_bn.{p}": f"{mixer}.0.large_bn.{p}" for p in _BN})
        for i, branch in enumerate(("k5_1", "k3_2", "k3_3")):
            m[f"{rel}.dwconv.dil_conv_{branch}.weight"] = f"{mixer}.0.dilated.{i}.weight"
            m.update({f"{rel}.dwconv.dil_bn_{branch}.{p}": f"{mixer}.0.dilated_bn.{i}.{p}" for p in _BN})
        m.update({f"{rel}.norm.{p}": f"{mixer}.1.{p}" for p in _BN})
    for conv in ("down", "up"):
        for p in ("weight", "bias"):
            m[f"{rel}.se.{conv}.{p}"] = f"{ours}.se.{conv}.{p}"
    m[f"{rel}.pwconv1.1.weight"] = f"{ours}.pwconv1.weight"
    m[f"{rel}.pwconv1.1.bias"] = f"{ours}.pwconv1.bias"
    m[f"{rel}.act.1.gamma"] = f"{ours}.grn.gamma"
    m[f"{rel}.act.1.beta"] = f"{ours}.grn.beta"
    m[f"{rel}.pwconv2.0.weight"] = f"{ours}.pwconv2.weight"
    m.update({f"{rel}.pwconv2.2.{p}": f"{ours}.out_bn.{p}" for p in _BN})
    return m


def _head(rel: str, ours: str) -> dict[str, str]:
    """The 3×3 conv, LeakyReLU, 3×3 conv output head (``output`` → ``head``)."""
    return {f"{rel}.output.{i}.weight": f"{ours}.head.{i}.weight" for i in (0, 2)}


def key_map(blocks: int = 1) -> dict[str, str]:
    """Released key (without ``module.``) → our key, for ``blocks`` blocks per stage.

    Built module by module from the released ``MossFuseNet.py`` layout (see the module notes);
    with ``blocks = 1`` it has exactly the 387 entries of the published checkpoint.
    """
    m: dict[str, str] = {}
    for rel, ours in (("modelE_MSI", "msi_encoder"), ("modelE_HSI", "hsi_encoder")):
        m[f"{rel}.patch_embed.proj.weight"] = f"{ours}.embed.weight"
        for i in range(blocks):
            m.update(_transformer(f"{rel}.encoder_level1.{i}", f"{ours}.trunk.{i}"))
    # MSI encoder heads: base = LK7, LK0, LK0, TB; detail = LK7, LK0, LK0.
    for i, kernel in enumerate((True, False, False)):
        m.update(_large_kernel(f"modelE_MSI.baseFeature.{i}", f"msi_encoder.shared.{i}", kernel))
        m.update(_large_kernel(f"modelE_MSI.detailFeature.{i}", f"msi_encoder.complementary.{i}", kernel))
    m.update(_transformer("modelE_MSI.baseFeature.3", "msi_encoder.shared.3"))
    # HSI encoder heads: base = TB, LK7, LK0, LK0; detail = one TB (not a Sequential).
    m.update(_transformer("modelE_HSI.baseFeature.0", "hsi_encoder.shared.0"))
    for i, kernel in ((1, True), (2, False), (3, False)):
        m.update(_large_kernel(f"modelE_HSI.baseFeature.{i}", f"hsi_encoder.shared.{i}", kernel))
    m.update(_transformer("modelE_HSI.detailFeature", "hsi_encoder.complementary"))
    # Self-supervised decoders: an unused 1×1 reduction, one aggregation block, the head.
    for rel, ours in (("modelD_MSI", "msi_decoder"), ("modelD_HSI", "hsi_decoder")):
        m[f"{rel}.reduce_channel.weight"] = f"{ours}.unused_reduce.weight"
        m.update(_aggregation(f"{rel}.fuse", f"{ours}.aggregate"))
        m.update(_head(rel, ours))
    # Degradation estimator (BlindNet): SRF and the 2×2 PSF parameter.
    m["blind.srf"] = "degradation.srf"
    m["blind.blur_down.KernelParam"] = "degradation.psf_param"
    # LR-MSI decoder and fusion decoder.
    m["modelD_LR.reduce_channel.weight"] = "lr_decoder.reduce.weight"
    m["modelD_HR.fuse.weight"] = "fusion_decoder.reduce.weight"
    m.update(_aggregation("modelD_HR.fuse1", "fusion_decoder.spatial"))
    m.update(_aggregation("modelD_HR.fuse2", "fusion_decoder.spectral"))
    for rel, ours in (("modelD_LR", "lr_decoder"), ("modelD_HR", "fusion_decoder")):
        for i in range(blocks):
            m.update(_transformer(f"{rel}.encoder_level2.{i}", f"{ours}.body.{i}"))
        m.update(_head(rel, ours))
    return m


def _is_grn(ours: str) -> bool:
    return ours.endswith((".grn.gamma", ".grn.beta"))


def _is_srf(ours: str) -> bool:
    return ours == "degradation.srf"


def released_to_ours_shape(ours: str, tensor: torch.Tensor) -> torch.Tensor:
    """The two documented storage differences, applied only from their documented shapes:
    GRN (1, 1, 1, C) → (C,), SRF (b, B, 1, 1) → (b, B). Anything else is returned as is."""
    if _is_grn(ours) and tensor.dim() == 4 and tuple(tensor.shape[:3]) == (1, 1, 1):
        return tensor.reshape(tensor.shape[3])
    if _is_srf(ours) and tensor.dim() == 4 and tuple(tensor.shape[2:]) == (1, 1):
        return tensor.reshape(tensor.shape[0], tensor.shape[1])
    return tensor


def ours_to_released_shape(ours: str, tensor: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`released_to_ours_shape`."""
    if _is_grn(ours):
        return tensor.reshape(1, 1, 1, -1)
    if _is_srf(ours):
        return tensor.reshape(*tensor.shape, 1, 1)
    return tensor


def strip_wrapper(state: dict) -> dict:
    """The released state dict without its ``module.`` (DataParallel) prefix."""
    prefix = "module."
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix):]: v for k, v in state.items()}
    return dict(state)


def read_checkpoint(path) -> dict[str, torch.Tensor]:
    """The released state dict of a checkpoint file (keys without ``module.``).

    Accepts the released wrapper ``{"Model_stage1": state_dict}`` or a bare state dict;
    loads with ``torch.load(..., weights_only=True)`` onto the CPU (the file was saved from
    CUDA tensors).
    """
    path = Path(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{path}: weights file not found") from None
    except Exception as err:  # unpickling refused, truncated zip, not a torch file
        raise InputError(f"{path}: not a loadable torch checkpoint ({type(err).__name__}: {err})") from None
    if isinstance(obj, dict) and "Model_stage1" in obj:
        obj = obj["Model_stage1"]
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{path}: expected a MossFuse state dict (or {{'Model_stage1': state dict}})")
    return strip_wrapper(obj)


def infer_config(state: dict[str, torch.Tensor]) -> dict:
    """The architecture a released state dict was saved from, read off its shapes:
    ``width``, ``bands``, ``msi_bands``, ``heads``, ``blocks`` and ``decoupling``."""
    try:
        msi = state["modelE_MSI.patch_embed.proj.weight"]
        hsi = state["modelE_HSI.patch_embed.proj.weight"]
        heads = state["modelE_MSI.encoder_level1.0.attn.temperature"].shape[0]
    except KeyError as err:
        raise InputError(f"not a released MossFuse state dict: key {err.args[0]!r} is missing") from None
    trunk = {k.split(".")[2] for k in state if k.startswith("modelE_MSI.encoder_level1.")}
    return {"width": int(msi.shape[0]), "bands": int(hsi.shape[1]), "msi_bands": int(msi.shape[1]),
            "heads": int(heads), "blocks": len(trunk),
            "decoupling": any(k.startswith("modelE_HSI.detailFeature.") for k in state)}


def check_map(mapping: dict[str, str]) -> None:
    """Raise when two released keys map onto the same key of ours."""
    seen: dict[str, str] = {}
    clashes = []
    for rel, ours in mapping.items():
        if ours in seen:
            clashes.append(f"{seen[ours]} and {rel} -> {ours}")
        seen[ours] = rel
    if clashes:
        raise InputError("the key map is not injective: " + "; ".join(clashes))


def to_ours(state: dict[str, torch.Tensor], expected: dict[str, torch.Size],
            mapping: dict[str, str] | None = None, reshape=released_to_ours_shape) -> dict[str, torch.Tensor]:
    """Map a released state dict (no ``module.``) onto our names.

    Parameters
    ----------
    state : dict
        Released key → tensor.
    expected : dict
        Our key → shape, e.g. ``{k: v.shape for k, v in model.state_dict().items()}``.
    mapping : dict, optional
        Released key → our key; default :func:`key_map` for the state's block count.
    reshape : callable
        ``reshape(our_key, tensor)``: the storage-shape conversion (default: the two
        documented ones).

    Raises
    ------
    InputError
        Listing every released key the map does not cover, every key of ours it does not
        reach, every clash and every shape that differs.
    """
    if mapping is None:
        mapping = key_map(infer_config(state)["blocks"])
    check_map(mapping)
    problems = []
    unknown = sorted(set(state) - set(mapping))
    if unknown:
        problems.append(f"{len(unknown)} released keys have no counterpart: {unknown[:8]}")
    reached = {mapping[k] for k in state if k in mapping}
    missing = sorted(set(expected) - reached)
    if missing:
        problems.append(f"{len(missing)} keys of the model are not in the checkpoint: {missing[:8]}")
    stray = sorted(reached - set(expected))
    if stray:
        problems.append(f"the map targets keys the model does not have: {stray[:8]}")
    out = {}
    for rel, tensor in state.items():
        ours = mapping.get(rel)
        if ours is None or ours not in expected:
            continue
        value = reshape(ours, tensor)
        if tuple(value.shape) != tuple(expected[ours]):
            problems.append(f"{rel} {tuple(tensor.shape)} -> {ours}: expected {tuple(expected[ours])}")
            continue
        out[ours] = value.clone()
    if problems:
        raise InputError("the released weights do not fit the network:\n  " + "\n  ".join(problems))
    return out


def to_released(ours: dict[str, torch.Tensor], mapping: dict[str, str] | None = None,
                prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Our state dict in the released names and storage shapes (with the ``module.`` prefix
    the released checkpoint has): the inverse of :func:`to_ours`."""
    if mapping is None:
        blocks = len({k.split(".")[2] for k in ours if k.startswith("msi_encoder.trunk.")})
        mapping = key_map(blocks)
    check_map(mapping)
    inverse = {v: k for k, v in mapping.items()}
    missing = sorted(set(ours) - set(inverse))
    if missing:
        raise InputError(f"keys without a released name: {missing[:8]}")
    return {prefix + inverse[k]: ours_to_released_shape(k, v).clone() for k, v in ours.items()}
