"""The inference engine: decoded images in, boxes out, with the fast paths of :class:`InferenceOptions`.

    from parnet_det.apis import init_detector_engine
    engine = init_detector_engine('configs/yolo_parnet_xl_coco.py', 'work_dirs/.../epoch_300.pth',
                                  device='cuda:0', precision='fp16', cuda_graph=True, parallel_streams=True)
    results = engine(['demo.jpg', image_array])   # list of DetDataSample, boxes in original pixels

Stages, each callable on its own (``tools/benchmark.py`` times them):
:meth:`DetectorEngine.preprocess` (on the device, see :mod:`.preprocess`),
:meth:`DetectorEngine.network` (the fast paths apply here) and
:meth:`DetectorEngine.postprocess` (batched score threshold and NMS for YOLOX
heads, see :mod:`.nms`; mmdet's per-image ``predict_by_feat`` for other heads).
"""
import logging
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample

from ..models.reparameterize import fold_conv_module_norms, switch_to_deploy
from ..utils.device import check_device
from .cuda_graph import CUDAGraphRunner
from .dense_network import DenseDetectorNetwork
from .fast_paths import InferenceOptions
from .inputs import check_images
from .nms import postprocess_dense_detections
from .preprocess import BatchPreprocessor, ImageInput, PreprocessSettings


def as_data_samples(metas: Sequence[dict], instances: Sequence[InstanceData]) -> List[DetDataSample]:
    """One ``DetDataSample`` per image: its metainfo and its detections as ``pred_instances``."""
    samples = []
    for meta, pred in zip(metas, instances):
        sample = DetDataSample(metainfo=meta)
        sample.pred_instances = pred
        samples.append(sample)
    return samples


def set_parallel_streams(model: nn.Module, enabled: bool) -> int:
    """Switch stream-parallel execution on every module of ``model`` that has it; returns how many."""
    switched = 0
    for module in model.modules():
        if hasattr(module, 'parallel_streams'):
            module.parallel_streams = enabled
            switched += 1
    return switched


class DetectorEngine:
    """Runs a single-stage detector on batches of decoded images, with fast paths.

    The detector is put in eval mode and, unless ``deploy=False``, folded:
    ParNet's branches (:func:`~parnet_det.deploy.switch_to_deploy`) and the
    BatchNorms of the ConvModules (:func:`~parnet_det.deploy.fold_conv_module_norms`,
    the neck and head); then the options apply in this order: parallel
    streams, channels-last, precision cast, ``torch.compile``, CUDA graph.

    Args:
        model (nn.Module): A built single-stage detector (weights loaded).
        cfg (Config): Its config (test pipeline and data preprocessor).
        device (str | torch.device): Where to run. Defaults to 'cuda:0'.
        options (InferenceOptions, optional): Fast paths. Defaults to none (plain eager fp32).
        input_size (Sequence[int], optional): (H, W) or one side: the fixed
            network input; defaults to the config's test ``Resize`` scale (with a
            ``RectLetterbox`` in the test pipeline: each image's own rectangle,
            as ``tools/test.py``; see :mod:`.preprocess`).
        deploy (bool): Fold as above. Defaults to True.
    """

    def __init__(self, model: nn.Module, cfg: Config, device: Union[str, torch.device] = 'cuda:0',
                 options: Optional[InferenceOptions] = None,
                 input_size: Optional[Sequence[int]] = None, deploy: bool = True) -> None:
        self.device = check_device(device)
        self.options = options or InferenceOptions()
        self.options.check(self.device)
        network = DenseDetectorNetwork(model)
        model.eval()
        if deploy:
            switch_to_deploy(model)
            fold_conv_module_norms(model)
        if self.options.parallel_streams and set_parallel_streams(model, True) == 0:
            # Not an error: a benchmark runs its baselines with the same options.
            print_log(f'parallel_streams has no effect: {type(model.backbone).__name__} has no parallel streams '
                      '(ParNet and ParNetCSP have)', logger='current', level=logging.WARNING)
        self.model = model.to(self.device)
        self.test_cfg = model.bbox_head.test_cfg
        self.decodes_boxes = network.decodes_boxes
        if self.options.channels_last:
            network = network.to(memory_format=torch.channels_last)
        self.dense_network = network.to(self.options.dtype)
        run = self.dense_network
        if self.options.compile:
            run = torch.compile(run, mode=self.options.compile_mode, dynamic=False)
        if self.options.cuda_graph:
            run = CUDAGraphRunner(run)
        self._run = run
        self.cfg = cfg
        self.set_input_size(input_size)

    def set_input_size(self, input_size: Optional[Sequence[int]] = None) -> None:
        """Change the fixed network input, (H, W) or one side; None: the config's test ``Resize`` scale.

        A compiled network recompiles, a CUDA graph is captured, on the first call at a new size.
        """
        self.preprocess = BatchPreprocessor(PreprocessSettings.from_config(self.cfg, input_size), self.device)

    @property
    def input_size(self) -> Optional[Tuple[int, int]]:
        """(H, W) of the network input; None where each image gets its own (the config's ``RectLetterbox``)."""
        return self.preprocess.settings.input_size

    def network(self, batch: torch.Tensor) -> Any:
        """The network (with batched decoding for YOLOX heads) on a pre-processed batch.

        With ``cuda_graph`` the returned tensors are overwritten by the next call.
        """
        memory_format = torch.channels_last if self.options.channels_last else torch.contiguous_format
        with torch.inference_mode():
            return self._run(batch.to(dtype=self.options.dtype, memory_format=memory_format))

    def postprocess(self, outputs: Any, metas: List[dict]) -> List[DetDataSample]:
        """Network outputs -> one ``DetDataSample`` per image, ``pred_instances`` in original pixels."""
        with torch.inference_mode():
            if self.decodes_boxes:
                instances = postprocess_dense_detections(*outputs, metas, self.test_cfg)
            else:
                outputs = tuple([level.float() for level in levels] for levels in outputs)
                instances = self.model.bbox_head.predict_by_feat(*outputs, batch_img_metas=metas, rescale=True)
        return as_data_samples(metas, instances)

    def __call__(self, images: Sequence[ImageInput]) -> List[DetDataSample]:
        """Detect objects in ``images`` (paths or HWC uint8 BGR arrays, any sizes)."""
        with torch.inference_mode():
            batch, metas = self.preprocess(check_images(images, self.preprocess.resized_shape))
        return self.postprocess(self.network(batch), metas)
