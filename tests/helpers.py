"""Helpers shared by the tests (fixtures are in conftest.py)."""
import importlib.util
import runpy
import sys
from pathlib import Path

import pytest
import torch
from mmengine.structures import InstanceData
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

REPO = Path(__file__).resolve().parents[1]

# A ParNet small enough for CPU tests of whole detectors; the real presets are
# tested in test_models/test_parnet.py.
TINY_ARCH = dict(stream_channels=(16, 32, 64), final_channels=128, num_blocks=(1, 2, 2))

# The tests of the CUDA paths; the CPU-only VM skips them (a GPU machine runs them).
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')


def randomize_norm_stats(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every BatchNorm away from its initial statistics and affine values,
    so that folding is tested on non-trivial numbers."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


def spread_yolox_scores(model: torch.nn.Module, seed: int = 0, with_regression: bool = False) -> None:
    """N(0, 0.05) classification and objectness convs (and box regression convs if asked) of a YOLOX
    head: scores near 0.25 that vary from box to box, so that hundreds of boxes reach NMS (the initial
    head scores ~1e-4 and finds nothing). The objectness and regression biases are zero; the classes'
    are N(0, 1e-3), far above float rounding and far below the weights' spread: with zero biases every
    class scored the same where the features are constant (the letterbox's padding), a tie that
    rounding broke either way between two equal paths (a compiled network labelled such a box 3
    where eager said 0)."""
    gen = torch.Generator().manual_seed(seed)
    head = model.bbox_head
    convs = [*head.multi_level_conv_cls, *head.multi_level_conv_obj]
    if with_regression:
        convs += list(head.multi_level_conv_reg)
    for conv in convs:
        conv.bias.data.zero_()
        conv.weight.data.normal_(0, 0.05, generator=gen)
    for conv in head.multi_level_conv_cls:
        conv.bias.data.normal_(0, 1e-3, generator=gen)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm().clamp_min(1e-12)).item()


def head_outputs(model, data):
    """Every tensor the heads produce for ``data``: the dense head's (or RPN's) maps and, for
    two-stage detectors, the RoI head's outputs on the image's ground-truth boxes as proposals."""
    batch = model.data_preprocessor(data, False)
    features = model.extract_feat(batch['inputs'])
    dense_head = model.bbox_head if hasattr(model, 'bbox_head') else model.rpn_head
    outputs = list(features) + [t for level in dense_head(features) for t in level]
    if hasattr(model, 'roi_head'):
        # Test pipelines pack boxes as plain tensors, training pipelines as HorizontalBoxes.
        boxes = [getattr(s.gt_instances.bboxes, 'tensor', s.gt_instances.bboxes) for s in batch['data_samples']]
        assert all(len(b) for b in boxes)
        proposals = [InstanceData(bboxes=b) for b in boxes]
        outputs += list(model.roi_head.forward(features, proposals, batch['data_samples']))
    return outputs


def load_tool(relative_path: str):
    """A command-line tool of tools/ as a module (its ``main(argv)`` callable in this process)."""
    spec = importlib.util.spec_from_file_location(Path(relative_path).stem + '_tool', REPO / 'tools' / relative_path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def run_tool(capsys, tool, *args):
    """Run ``tools/<tool>`` in this process; returns (exit code, stdout, stderr).

    An exception other than SystemExit propagates: a traceback is a failure of the test.
    """
    argv = sys.argv
    sys.argv = [tool, *map(str, args)]
    try:
        runpy.run_path(str(REPO / 'tools' / tool), run_name='__main__')
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def coco_stats(ann_file: str, records: list):
    """COCOeval's 12 bbox numbers (AP first) of detection ``records`` (COCO result dicts) against ``ann_file``."""
    coco = COCO(ann_file)
    evaluation = COCOeval(coco, coco.loadRes(records), 'bbox')
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation.stats
