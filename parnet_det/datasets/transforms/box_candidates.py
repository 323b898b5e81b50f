"""Scaled-YOLOv4's box_candidates: which boxes stay targets after a warp."""
import torch


def box_candidates(before_wh: torch.Tensor,
                   after_wh: torch.Tensor,
                   scale_factor: float,
                   min_size: float = 2.0,
                   min_area_ratio: float = 0.1,
                   max_aspect_ratio: float = 20.0,
                   eps: float = 1e-16) -> torch.Tensor:
    """Keep mask of boxes ``w0 x h0`` before a warp scaling by ``f`` and ``w x h`` after it and the clip::

        w > min_size  and  h > min_size,
        w h / (f w0 . f h0 + eps) > min_area_ratio,
        max(w / (h + eps), h / (w + eps)) < max_aspect_ratio.

    The area is compared with the box scaled by ``f`` (the recipe's ``box1``, the original box times
    ``f``), whose area is ``f^2 w0 h0``: a box the warp only shrinks keeps all of its area, one the crop
    cuts keeps the share left inside. The recipe's thresholds: 2 px, 10 %, aspect 20. ``eps`` keeps a
    zero side from dividing by zero.

    Args:
        before_wh (Tensor): ``[N, 2]`` widths and heights before the warp.
        after_wh (Tensor): ``[N, 2]`` widths and heights after the warp and the clip to the output.
        scale_factor (float): ``f``, the warp's scale.
        min_size, min_area_ratio, max_aspect_ratio (float): The thresholds above.
        eps (float): Guard of the divisions. Defaults to 1e-16.

    Returns:
        Tensor: ``[N]`` bool, True for the boxes kept.
    """
    before_w, before_h = before_wh.unbind(-1)
    after_w, after_h = after_wh.unbind(-1)
    scaled_area = (scale_factor * before_w) * (scale_factor * before_h)
    aspect = torch.maximum(after_w / (after_h + eps), after_h / (after_w + eps))
    return ((after_w > min_size) & (after_h > min_size) & (after_w * after_h / (scaled_area + eps) > min_area_ratio)
            & (aspect < max_aspect_ratio))
