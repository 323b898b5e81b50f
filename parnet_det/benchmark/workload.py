"""The same post-processing work for every model without a checkpoint.

Random heads give NMS whatever their initialisation happens to give: YOLOX's
initial scores (~1e-4) leave nothing over the score threshold, a random
backbone fed raw pixels makes logits of 1e4 (every score 0 or 1, box sizes
that overflow), and differently initialised models leave different numbers,
so end-to-end timings would compare different NMS work. A trained COCO
detector passes on the order of a thousand boxes per image to NMS and keeps
on the order of a hundred. :func:`control_workload` sets every model up by the
same method to do exactly that work on the batch that is timed.

A head takes part through a :class:`HeadAdapter`: which output channels of
which prediction convs are class scores, objectness, box centres and box
sizes, and which boxes reach its NMS. Decoding and NMS are the head's own
``predict_by_feat``. A head without objectness (RTMDet's) gets its candidate
count from a shift of its class logits instead; a conv whose output the head
transforms before returning it (RTMDet's box distances, ``exp(t) x stride``)
is shifted by running the head again on the same features.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

DEFAULT_DETECTIONS = 100
ROLES = ('cls', 'obj', 'center', 'size')
# Spread of each role's logits over the priors: scores as a trained head's vary, box offsets and sizes in
# strides (log-sizes for YOLOX) of this order.
ROLE_STD = dict(cls=1.0, obj=1.0, center=0.3, size=0.3)

# Per level: role -> (the conv that predicts it, its output channels as (anchors, values) indices).
Layout = List[Dict[str, Tuple[nn.Conv2d, torch.Tensor]]]


@dataclass(frozen=True)
class HeadAdapter:
    """How the controlled workload reaches one type of dense head.

    Args:
        layout (Callable): ``layout(head)`` -> per level, role ('cls', 'obj', 'center', 'size') -> (conv,
            (anchors, values) channel indices); every conv's output must be one of the head's outputs as it is.
        candidates (Callable): ``candidates(head, cls, obj)`` with the logits flattened to (B, N, C) and
            (B, N) -> the (box, class) pairs that reach the head's NMS (its ``test_cfg``), summed over the batch.
        size_range (tuple): Shifts of the box-size logits searched (bigger boxes overlap more: fewer survive).
        score_role (str): The role whose bias shift sets the candidate count: 'obj', or 'cls' for a head
            without objectness (``obj`` is then None in ``candidates``).
    """
    layout: Callable[[nn.Module], Layout]
    candidates: Callable[[nn.Module, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]
    size_range: Tuple[float, float]
    score_role: str = 'obj'


def _yolox_layout(head: nn.Module) -> Layout:
    every_class = torch.arange(head.num_classes)[None]
    return [dict(cls=(cls, every_class), obj=(obj, torch.tensor([[0]])), center=(reg, torch.tensor([[0, 1]])),
                 size=(reg, torch.tensor([[2, 3]])))
            for cls, reg, obj in zip(head.multi_level_conv_cls, head.multi_level_conv_reg, head.multi_level_conv_obj)]


def _best_class_candidates(head: nn.Module, cls: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    # YOLOXHead.predict_by_feat: one box per prior, its best class's score x objectness against score_thr.
    return (cls.sigmoid().amax(dim=2) * obj.sigmoid() >= head.test_cfg.score_thr).sum()


def _yolov4_csp_layout(head: nn.Module) -> Layout:
    # One 1x1 conv per level, channel a (5 + C) + k for k = x, y, w, h, objectness, classes (YOLOv4CSPHead).
    first = torch.arange(head.num_anchors)[:, None] * head.num_attrib
    return [dict(cls=(conv, first + 5 + torch.arange(head.num_classes)), obj=(conv, first + 4),
                 center=(conv, first + torch.tensor([0, 1])), size=(conv, first + torch.tensor([2, 3])))
            for conv in head.convs_pred]


def _multi_label_candidates(head: nn.Module, cls: torch.Tensor, obj: torch.Tensor) -> torch.Tensor:
    # The official COCO test (YOLOv4CSPHead): boxes with objectness over conf_thr, then every class whose
    # objectness x probability passes score_thr.
    obj = obj.sigmoid()
    passing = (obj[..., None] * cls.sigmoid() > head.test_cfg.score_thr) & (obj > head.test_cfg.conf_thr)[..., None]
    return passing.sum()


def _rtmdet_layout(head: nn.Module) -> Layout:
    # Per level a class conv (C logits) and a box conv (l, t, r, b: exp(t) x stride with exp_on_reg); no objectness.
    every_class = torch.arange(head.cls_out_channels)[None]
    return [dict(cls=(cls, every_class), size=(reg, torch.tensor([[0, 1, 2, 3]])))
            for cls, reg in zip(head.rtm_cls, head.rtm_reg)]


def _sigmoid_pair_candidates(head: nn.Module, cls: torch.Tensor, obj: Optional[torch.Tensor]) -> torch.Tensor:
    # RTMDetHead.predict_by_feat: every (prior, class) whose sigmoid score passes score_thr (nms_pre, 30000 in
    # mmdet's configs, is above the controlled counts).
    return (cls.sigmoid() > head.test_cfg.score_thr).sum()


# Head class name -> adapter; a head is found by its class or a parent's. Box sizes: YOLOX's are
# e^(t + s) strides, YOLOv4-CSP's (2 sigmoid(t + s))^2 anchors (at most 4 anchors).
ADAPTERS: Dict[str, HeadAdapter] = {
    'YOLOXHead': HeadAdapter(_yolox_layout, _best_class_candidates, size_range=(-2.0, 6.0)),
    'YOLOv4CSPHead': HeadAdapter(_yolov4_csp_layout, _multi_label_candidates, size_range=(-6.0, 6.0)),
    # Distances of exp(t + s) strides (RTMDet-m/-l set exp_on_reg), as YOLOX's sizes.
    'RTMDetHead': HeadAdapter(_rtmdet_layout, _sigmoid_pair_candidates, size_range=(-2.0, 6.0), score_role='cls'),
}


def head_adapter(model: nn.Module) -> Optional[HeadAdapter]:
    """The adapter of ``model``'s ``bbox_head``; None for a head the controlled workload does not know."""
    head = getattr(model, 'bbox_head', None)
    for cls in type(head).__mro__:
        if cls.__name__ in ADAPTERS:
            return ADAPTERS[cls.__name__]
    return None


def _find(outputs, tensor: torch.Tensor) -> Optional[tuple]:
    """The index path of ``tensor`` (the very object) in the nested tuples/lists ``outputs``."""
    if outputs is tensor:
        return ()
    if isinstance(outputs, (list, tuple)):
        for index, value in enumerate(outputs):
            path = _find(value, tensor)
            if path is not None:
                return (index, *path)
    return None


def _at(outputs, path: tuple):
    for index in path:
        outputs = outputs[index]
    return outputs


class HeadOutputs:
    """Where each role's logits lie in a head's outputs, found once by running the head.

    Args:
        model (nn.Module): A detector with a known head (:func:`head_adapter`).
        inputs (torch.Tensor): A pre-processed batch.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor):
        self.model, self.head, self.adapter = model, model.bbox_head, head_adapter(model)
        if self.adapter is None:
            raise TypeError(f'{type(self.head).__name__}: the controlled workload knows the heads '
                            f'{", ".join(ADAPTERS)}; benchmark with checkpoints, or with --candidates 0')
        self.layout = self.adapter.layout(self.head)
        self.inputs = inputs
        with torch.inference_mode():
            self.features = model.extract_feat(inputs)
        outputs, seen = self.conv_outputs()
        self.paths = {conv: _find(outputs, seen[conv]) for conv in seen}
        # The score roles are read from the outputs; other roles may be transformed there (see shifted).
        unplaced = [role for level in self.layout for role, (conv, _) in level.items()
                    if self.paths[conv] is None and role in ('cls', 'obj')]
        if unplaced:
            raise TypeError(f'{type(self.head).__name__}: the {unplaced[0]} conv\'s output is not one of the head\'s '
                            'outputs')

    def head_outputs(self, inputs: Optional[torch.Tensor] = None):
        """The head's outputs on ``inputs`` (None: on the features of the batch it was set up with)."""
        with torch.inference_mode():
            return self.model(inputs, mode='tensor') if inputs is not None else self.head(self.features)

    def conv_outputs(self):
        """The head's outputs on the set-up batch, and every prediction conv's own output."""
        seen = {}
        convs = dict.fromkeys(conv for level in self.layout for conv, _ in level.values())
        handles = [conv.register_forward_hook(lambda module, args, output: seen.__setitem__(module, output))
                   for conv in convs]
        try:
            return self.head_outputs(), seen
        finally:
            for handle in handles:
                handle.remove()

    def logits(self, outputs, role: str) -> torch.Tensor:
        """(B, N, values) of ``role``, the priors of all levels (and anchors) in a row, as fp32."""
        levels = []
        for level in self.layout:
            conv, channels = level[role]
            tensor = _at(outputs, self.paths[conv])
            out = tensor[:, channels.flatten().to(tensor.device)].float()
            batch, (anchors, values), (height, width) = out.shape[0], channels.shape, out.shape[2:]
            levels.append(out.view(batch, anchors, values, height, width).permute(0, 1, 3, 4, 2).reshape(
                batch, -1, values))
        return torch.cat(levels, dim=1)

    def count_candidates(self, outputs, batch_size: int) -> float:
        """Mean (box, class) pairs per image that reach the head's NMS, from its raw ``outputs``."""
        found = self.adapter.candidates(self.head, self.logits(outputs, 'cls'), self.objectness(outputs))
        return found.item() / batch_size

    def objectness(self, outputs) -> Optional[torch.Tensor]:
        """(B, N) objectness logits; None for a head without objectness."""
        return self.logits(outputs, 'obj')[..., 0] if 'obj' in self.layout[0] else None

    def shifted(self, outputs, shifts: Dict[str, float]):
        """A copy of ``outputs`` with ``shifts[role]`` added to that role's logits (what a bias shift gives).

        A role whose conv's output the head transforms (not among ``outputs`` as it is) is shifted by running
        the head again on the set-up features with that conv's bias shifted (and restored)."""
        rerun = [(level[role], shift) for level in self.layout for role, shift in shifts.items()
                 if self.paths[level[role][0]] is None]
        if rerun:
            with torch.no_grad():
                for (conv, channels), shift in rerun:
                    conv.bias[channels.flatten()] += shift
                try:
                    outputs = self.head_outputs()
                finally:
                    for (conv, channels), shift in rerun:
                        conv.bias[channels.flatten()] -= shift
        copies = {}
        for level in self.layout:
            for role, shift in shifts.items():
                conv, channels = level[role]
                if self.paths[conv] is None:
                    continue
                if conv not in copies:
                    copies[conv] = _at(outputs, self.paths[conv]).clone()
                copies[conv][:, channels.flatten()] += shift

        def rebuild(value, path):
            for conv, conv_path in self.paths.items():
                if conv_path == path and conv in copies:
                    return copies[conv]
            if isinstance(value, (list, tuple)):
                return type(value)(rebuild(item, (*path, index)) for index, item in enumerate(value))
            return value

        return rebuild(outputs, ())


def _standardize(head_outputs: HeadOutputs, conv_outputs: Dict[nn.Module, torch.Tensor],
                 std: Dict[str, float]) -> None:
    """Scale and shift each role's channels so that their logits (computed with a zero bias) have mean 0
    and ``std[role]`` at every level."""
    with torch.no_grad():
        for level in head_outputs.layout:
            for role, (conv, channels) in level.items():
                index = channels.flatten()
                logits = conv_outputs[conv][:, index.to(conv.weight.device)].float()
                scale = std[role] / logits.std().clamp_min(1e-12)
                conv.weight[index] *= scale
                conv.bias[index] = -logits.mean(dim=(0, 2, 3)) * scale


def _bisect(count, target: float, increasing: bool, low: float, high: float, steps: int) -> float:
    """The x in [low, high] where the monotonic ``count(x)`` comes nearest ``target``, to (high - low) / 2^steps.

    ``count`` may jump (many boxes cross a threshold at once): of the two ends of the last bracket, the one
    whose count is nearer the target wins.
    """
    for _ in range(steps):
        middle = (low + high) / 2
        if (count(middle) < target) == increasing:
            low = middle
        else:
            high = middle
    return min((low, high), key=lambda x: abs(count(x) - target))


def control_workload(model: nn.Module, inputs: torch.Tensor, metas: Sequence[dict], candidates: int,
                     detections: int = DEFAULT_DETECTIONS, seed: int = 0) -> Tuple[int, int]:
    """Set a dense head so that ``candidates`` (box, class) pairs per image of ``inputs`` reach NMS and about
    ``detections`` survive it.

    The method, the same for every model and head (:class:`HeadAdapter`):

    1. the prediction convs get random weights (seeded with ``seed``), scaled
       and centred so that their outputs on ``inputs`` have mean 0 and standard
       deviation 1 (class and objectness logits) or 0.3 (box offsets and
       sizes, in strides) at every level: scores and boxes vary from prior to
       prior as a trained head's do;
    2. one shift b of every objectness bias (class bias for a head without
       objectness), found by bisection, makes the
       mean number of pairs that pass the head's ``score_thr`` (the adapter's
       rule, e.g. YOLOX's best class x objectness) equal ``candidates`` (at most
       half the priors);
    3. one shift s of the box-size biases, found by bisection, makes the mean
       number of detections of the head's own ``predict_by_feat`` (its
       decoding and NMS) about ``detections`` (bigger boxes overlap more, and
       fewer survive).

    Call it with the batch that is timed: other images give about, not
    exactly, the same counts.

    Args:
        model (nn.Module): The detector, eval mode.
        inputs (torch.Tensor): The pre-processed batch.
        metas (Sequence[dict]): Its images' metainfo (``predict_by_feat``'s ``batch_img_metas``).
        candidates (int): Target pairs per image over the score threshold.
        detections (int): Target detections per image after NMS.
        seed (int): Seed of the random weights.

    Returns:
        tuple[int, int]: The candidate target used, and the mean detections per image reached.
    """
    head_outputs = HeadOutputs(model, inputs)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for conv in head_outputs.paths:
            conv.bias.zero_()
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator))
    _standardize(head_outputs, head_outputs.conv_outputs()[1], ROLE_STD)
    outputs = head_outputs.head_outputs()
    logits = dict(cls=head_outputs.logits(outputs, 'cls'), obj=head_outputs.objectness(outputs))
    role = head_outputs.adapter.score_role
    target = min(candidates, logits['cls'].shape[1] // 2)

    def count(shift: float) -> float:
        shifted = dict(logits, **{role: logits[role] + shift})
        return head_outputs.adapter.candidates(head_outputs.head, shifted['cls'], shifted['obj']).item() / len(inputs)

    objectness_shift = _bisect(count, target, increasing=True, low=-30.0, high=30.0, steps=40)

    def mean_detections(size_shift: float) -> float:
        shifted = head_outputs.shifted(outputs, {role: objectness_shift, 'size': size_shift})
        with torch.inference_mode():
            results = head_outputs.head.predict_by_feat(*shifted, batch_img_metas=list(metas), rescale=False)
        return sum(len(result) for result in results) / len(inputs)

    low, high = head_outputs.adapter.size_range
    size_shift = _bisect(mean_detections, detections, increasing=False, low=low, high=high, steps=16)
    reached = round(mean_detections(size_shift))  # before the shifts go into the biases (shifted() adds them)
    with torch.no_grad():
        for level in head_outputs.layout:
            for shifted_role, shift in ((role, objectness_shift), ('size', size_shift)):
                conv, channels = level[shifted_role]
                conv.bias[channels.flatten()] += shift
    return target, reached
