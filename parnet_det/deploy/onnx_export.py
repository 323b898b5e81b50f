"""ONNX export of a deployed (folded) YOLO-style detector (its check with onnxruntime: :mod:`.onnx_check`).

    from parnet_det.deploy import check_onnx_against_pytorch, export_onnx
    exported = export_onnx('configs/yolo_parnet_xl_coco.py', 'deploy.pth', 'yolo_parnet_xl.onnx',
                           input_size=(640, 640))
    check = check_onnx_against_pytorch(exported.path, exported.module)
    assert check.passed

The graph (:class:`OnnxExportWrapper`) takes ``images``: the letterboxed batch
in pixel values, float32 (B, 3, H, W), channels in the decoded order (BGR, as
``mmcv.imread`` gives), resized as the test pipeline's ``Resize`` (its
interpolation) and padded with its pad value: at the bottom right to the fixed
input size, or, where the pipeline has a ``RectLetterbox`` (the YOLOv4-CSP
family) and no input size is given, centred in each image's own rectangle as
the test letterboxes it: that graph has a dynamic height and width (multiples
of the letterbox's stride), so that it runs every image at the test's
geometry. See :meth:`~parnet_det.inference.BatchPreprocessor.letterbox` with
the export's input size (or none), whose steps these are, and whose ``metas``
the post-processing below takes. The graph normalises (and reverses the channels)
as the config's data preprocessor does, runs the folded network and decodes
the boxes. It returns

- ``boxes`` (B, N, 4): (x1, y1, x2, y2) in input pixels, fp32, not clipped;
- ``scores`` (B, N, num_classes): class probability x objectness, fp32.

NMS is not in the graph, so that its outputs keep fixed shapes and the NMS
is the serving side's choice. Run the head's own post-processing outside
(``test_cfg``: the head's, as :attr:`OnnxExportWrapper.test_cfg` holds it):

- YOLOX heads: ``parnet_det.inference.postprocess_dense_detections(boxes, scores, metas, test_cfg)``
  (best class per box, mmdet's ``YOLOXHead`` test);
- YOLOv4CSPHead: ``parnet_det.inference.postprocess_multilabel_detections(boxes, scores, metas, test_cfg)``
  (Scaled-YOLOv4's test: multi-label, NMS on the unclipped boxes, then the clip),

which give the detector's detections in original-image pixels, or any NMS.

YOLOX-style heads and heads that decode themselves (``boxes_and_scores``, e.g.
YOLOv4CSPHead) export their decoding; onnx, onnxscript and onnxruntime
come from ``requirements/deploy.txt`` and are imported only when used.
"""
import importlib
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.structures import InstanceData

from ..inference import (
    DenseDetectorNetwork,
    DetectorEngine,
    PreprocessSettings,
    dense_postprocess,
    per_channel,
)
from ..models.builder import build_detector
from ..utils.fileio import check_writable_file, create_temporary, publish

INPUT_NAME = 'images'
OUTPUT_NAMES = ('boxes', 'scores')
INSTALL_HINT = 'pip install -r requirements/deploy.txt'

# The opsets torch 2.14's exporter writes (torch keeps them in the private torch.onnx._constants; a test checks
# these against it).
ONNX_MIN_OPSET, ONNX_MAX_OPSET = 7, 23


def require(module_name: str, purpose: str):
    """Import an optional deploy dependency, or say how to install it."""
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise ImportError(f'{purpose} needs {module_name}, which is not installed: {INSTALL_HINT}') from err


class OnnxExportWrapper(nn.Module):
    """Normalisation, network and box decoding of a YOLOX-style detector: what the ONNX graph computes.

    Args:
        network (DenseDetectorNetwork): The (folded, eval-mode) network; its
            head must decode boxes (a ``YOLOXHead``, or a head with ``boxes_and_scores``).
        settings (PreprocessSettings): The config's pre-processing: input size,
            pad pixel, ``mean`` / ``std`` and ``bgr_to_rgb``.
    """

    def __init__(self, network: DenseDetectorNetwork, settings: PreprocessSettings) -> None:
        super().__init__()
        if not network.exports_boxes:
            raise ValueError(f'{type(network.bbox_head).__name__}: only YOLOX-style heads (YOLOXHead), RTMDet heads '
                             'and heads with boxes_and_scores export their box decoding to ONNX; this head decodes '
                             'in mmdet\'s predict_by_feat')
        self.network = network
        self.settings = settings
        # Non-persistent: the normalisation comes from the config, not from the checkpoint.
        self.register_buffer('mean', per_channel(settings.mean) if settings.mean is not None else None,
                             persistent=False)
        self.register_buffer('std', per_channel(settings.std) if settings.std is not None else None, persistent=False)

    @property
    def test_cfg(self):
        """The head's ``test_cfg`` (score threshold, NMS), for the NMS that runs after the graph."""
        return self.network.bbox_head.test_cfg

    def postprocess(self, boxes: torch.Tensor, scores: torch.Tensor, metas: Sequence[dict]) -> List[InstanceData]:
        """The head's own post-processing of the graph's outputs (see the module's docstring), per image."""
        return dense_postprocess(self.network.bbox_head)(boxes, scores, metas, self.test_cfg)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        # The same steps, in the same order, as BatchPreprocessor after its letterbox.
        if self.settings.bgr_to_rgb:
            images = images.flip(1)
        if self.mean is not None:
            images = (images - self.mean) / self.std
        return self.network.boxes_and_scores(self.network(images))

    @property
    def example_size(self) -> Tuple[int, int]:
        """(H, W) of the inputs an export traces and checks: the fixed input size, or without one (a
        ``RectLetterbox``, any rectangle) the rectangle of a 3:4 landscape image (height and width differ:
        traced at a square, the exporter could tie them)."""
        if self.settings.input_size is not None:
            return self.settings.input_size
        return self.settings.letterbox.padded_shape(3, 4)

    @property
    def size_multiple(self) -> Optional[int]:
        """What every input side is a multiple of where the graph takes any rectangle (the letterbox's stride);
        None for a fixed input size."""
        return None if self.settings.input_size is not None else self.settings.letterbox.stride

    def letterboxed_inputs(self, batch_size: int, seed: int = 0) -> torch.Tensor:
        """A batch of :attr:`example_size`: random pixels over the top 3/4 of the rows (a landscape image
        letterboxed), the pad pixel below."""
        height, width = self.example_size
        gen = torch.Generator().manual_seed(seed)
        pad = torch.tensor(self.settings.pad_pixel, dtype=torch.float32).view(1, 3, 1, 1)
        images = pad.expand(batch_size, 3, height, width).clone()
        content_rows = max(1, height * 3 // 4)
        images[:, :, :content_rows] = torch.randint(0, 256, (batch_size, 3, content_rows, width), generator=gen)
        return images


@dataclass
class OnnxExport:
    """What :func:`export_onnx` wrote.

    Args:
        path (str): The ONNX file (weights inside it, no external data).
        module (OnnxExportWrapper): The exported module, eval mode on the CPU,
            to compare the file with (:func:`check_onnx_against_pytorch`).
        input_name (str): The graph's input, (B, 3, H, W) BGR pixels.
        output_names (tuple[str, str]): ``boxes`` and ``scores``.
        input_shape (tuple): (B, 3, H, W); B is the string 'batch' with a dynamic batch, H and W the strings
            'height' and 'width' where the graph takes any rectangle (a ``RectLetterbox`` config).
        opset (int): The ONNX opset of the file.
    """
    path: str
    module: OnnxExportWrapper
    input_name: str
    output_names: Tuple[str, str]
    input_shape: tuple
    opset: int


def export_onnx(config, checkpoint: str, out: str, input_size: Optional[Sequence[int]] = None,
                batch_size: int = 1, dynamic_batch: bool = False, opset: Optional[int] = None,
                cfg_options: Optional[dict] = None) -> OnnxExport:
    """Build a detector, load its weights, fold it and export it to ONNX with ``torch.onnx.export(dynamo=True)``.

    A training checkpoint is folded after loading; a deploy checkpoint (from
    ``tools/reparameterize.py``, ``meta.deploy``) loads into the folded form.
    ``out`` is written through a temporary file next to it and only replaced
    once the export has succeeded.

    Args:
        config (str | Config): The detector's config (a YOLOX-style head).
        checkpoint (str): Its weights, training or deploy form.
        out (str): The ONNX file to write.
        input_size (Sequence[int], optional): (H, W), or one side for a square;
            defaults to the config's test ``Resize`` scale, and with a ``RectLetterbox``
            to a dynamic height and width: each image's own rectangle, as the test.
        batch_size (int): The batch size of the graph (with ``dynamic_batch``,
            only that of the example traced). Defaults to 1.
        dynamic_batch (bool): Make the batch dimension dynamic. Defaults to False.
        opset (int, optional): The ONNX opset; defaults to the exporter's.
        cfg_options (dict, optional): Overrides, as ``--cfg-options``.

    Returns:
        OnnxExport: The file, the exported module, input / output names and shapes.
    """
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    if opset is not None and not ONNX_MIN_OPSET <= opset <= ONNX_MAX_OPSET:
        raise ValueError(f'opset {opset} is not one torch exports ({ONNX_MIN_OPSET} to {ONNX_MAX_OPSET})')
    check_writable_file(out, parent_may_be_missing=True)
    # The dynamo exporter translates through onnxscript and writes with onnx; refuse before building anything.
    for module_name in ('onnx', 'onnxscript'):
        require(module_name, 'ONNX export')
    # Loaded strictly (deploy checkpoints into the folded form); the engine folds and evals.
    model = build_detector(config, checkpoint, cfg_options=cfg_options)
    engine = DetectorEngine(model, model.cfg, 'cpu', input_size=input_size)
    module = OnnxExportWrapper(engine.dense_network, engine.preprocess.settings).eval()
    return export_wrapper(module, out, batch_size, dynamic_batch, opset)


def export_wrapper(module: OnnxExportWrapper, out: str, batch_size: int = 1, dynamic_batch: bool = False,
                   opset: Optional[int] = None) -> OnnxExport:
    """Export a built :class:`OnnxExportWrapper` (a folded detector already in memory, e.g. the benchmark's)
    to ``out``, written through a temporary file next to it; the arguments as :func:`export_onnx`'s. Without
    a fixed input size (a ``RectLetterbox`` config) the height and width are dynamic, multiples of
    :attr:`OnnxExportWrapper.size_multiple`."""
    for module_name in ('onnx', 'onnxscript'):
        require(module_name, 'ONNX export')
    dims = {}
    traced_batch = batch_size
    if dynamic_batch:
        dims[0] = torch.export.Dim('batch')
        # torch.export specialises a dimension of size 1 to a constant, so trace a dynamic batch with two images.
        traced_batch = max(batch_size, 2)
    multiple = module.size_multiple
    if multiple is not None:
        # Derived dimensions: the network's strides divide every side, which the exporter must know.
        dims[2] = multiple * torch.export.Dim('height_blocks', min=1)
        dims[3] = multiple * torch.export.Dim('width_blocks', min=1)
    dynamic_shapes = {INPUT_NAME: dims} if dims else None
    example = module.letterboxed_inputs(traced_batch)

    out_dir = osp.dirname(osp.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    # Next to OUT (same file system, so the rename is atomic), created exclusively under an unpredictable name
    # (never through a planted link), so concurrent exports do not collide either.
    descriptor, partial = create_temporary(out)
    os.close(descriptor)
    try:
        # Weights inside the file (external_data=False): the file is then renamed as a whole, and a
        # deployed detector is far below protobuf's 2 GB limit.
        program = torch.onnx.export(module, (example, ), partial, dynamo=True, external_data=False,
                                    input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                                    opset_version=opset, dynamic_shapes=dynamic_shapes, verbose=False)
        written = program.model.opset_imports['']
        if opset is not None and written != opset:
            # Below its own opset the exporter converts down and, when that fails, keeps its own.
            raise ValueError(f'the exporter could not convert the graph to opset {opset} (it wrote opset '
                             f'{written}); choose another --opset, e.g. {written}')
        publish(partial, out)
    finally:
        if osp.exists(partial):
            os.remove(partial)
    height, width = module.settings.input_size or ('height', 'width')
    return OnnxExport(path=out, module=module, input_name=INPUT_NAME, output_names=OUTPUT_NAMES,
                      input_shape=('batch' if dynamic_batch else batch_size, 3, height, width),
                      opset=written)
