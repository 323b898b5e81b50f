"""Peak memory of tools/infer.py on one huge image, against the inference engine's own need.

    python tools/analysis/infer_memory.py [--size 12000] [--config configs/demo/yolo_parnet_tiny_synthetic.py]
        [--work-dir work_dirs/infer_memory]

Writes a SIZE x SIZE JPEG (smooth colours and shapes) and a checkpoint of the config's detector with its
initial weights, except for the last convolutions of its YOLOX head, zeroed: every prior becomes a box of
its stride's size scoring 0.25 (initial weights put the boxes millions of pixels off the image). Then
runs, each in a fresh process, (1) the engine alone: the image read and detected
(``init_detector_engine(...)([path])``), and (2) the whole CLI (``tools/infer.py``: detection, drawing,
encoding, JSON). Both keep every detection (score threshold 0), so the CLI draws hundreds of boxes.
Prints each process's peak resident memory (the kernel's ru_maxrss, imports included) and wall time.
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

import cv2
import numpy as np
import torch

from parnet_det.apis import build_detector, init_detector_engine
from parnet_det.utils.cli_args import path_arg, positive_int

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
KEEP_ALL = {'model.test_cfg.score_thr': 0.0}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--size', type=positive_int, default=12000, help='side of the square image, pixels')
    parser.add_argument('--config', type=path_arg, default='configs/demo/yolo_parnet_tiny_synthetic.py',
                        help='detector config')
    parser.add_argument('--work-dir', type=path_arg, default='work_dirs/infer_memory',
                        help='image, checkpoint and outputs go here')
    parser.add_argument('--engine-only', type=path_arg, nargs=2, metavar=('IMAGE', 'CHECKPOINT'),
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def huge_image(path: str, size: int) -> None:
    """A smooth gradient with filled shapes: compresses as a photo does (a few MB), unlike noise."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    image = np.empty((size, size, 3), np.uint8)
    image[..., 0] = ramp[None, :]
    image[..., 1] = ramp[:, None]
    image[..., 2] = 128
    rng = np.random.default_rng(0)
    for _ in range(40):
        x, y = rng.integers(0, size, 2)
        radius = int(rng.integers(size // 50, size // 10))
        cv2.circle(image, (int(x), int(y)), radius, tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 90])


def save_checkpoint(config: str, path: str) -> None:
    """The detector of ``config``, its YOLOX head's output convolutions zeroed (see the module's docstring)."""
    model = build_detector(config)
    head = model.bbox_head
    with torch.no_grad():
        for conv in (*head.multi_level_conv_cls, *head.multi_level_conv_reg, *head.multi_level_conv_obj):
            conv.weight.zero_()
            conv.bias.zero_()
    torch.save(dict(state_dict=model.state_dict()), path)


def measure(command):
    """(peak RSS in GiB, wall seconds) of ``command`` run to completion in its own process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):
        raise RuntimeError(f'{command[:3]}... exited with {process.returncode}')
    return usage.ru_maxrss / 2**20, time.perf_counter() - start  # ru_maxrss is in KiB on Linux


def main(argv=None):
    args = parse_args(argv)
    if args.engine_only:
        image, checkpoint = args.engine_only
        engine = init_detector_engine(args.config, checkpoint, 'cpu', cfg_options=KEEP_ALL)
        print(len(engine([image])[0].pred_instances), 'detections')
        return
    os.makedirs(args.work_dir, exist_ok=True)
    image = osp.join(args.work_dir, f'image_{args.size}.jpg')
    if not osp.isfile(image):
        huge_image(image, args.size)
    checkpoint = osp.join(args.work_dir, 'zeroed_head.pth')
    save_checkpoint(args.config, checkpoint)
    out_dir = osp.join(args.work_dir, f'out_{time.strftime("%Y%m%d_%H%M%S")}')
    engine = measure([sys.executable, __file__, '--config', args.config, '--engine-only', image, checkpoint])
    cli = measure([sys.executable, 'tools/infer.py', args.config, checkpoint, image, '--out-dir', out_dir,
                   '--device', 'cpu', '--score-thr', '0'])
    print(f'{args.size} x {args.size} JPEG ({osp.getsize(image) / 2**20:.1f} MiB), {args.config}, CPU')
    print(f'engine alone : peak RSS {engine[0]:.2f} GiB, {engine[1]:.1f} s')
    print(f'tools/infer  : peak RSS {cli[0]:.2f} GiB, {cli[1]:.1f} s ({cli[0] / engine[0]:.2f} x the engine)')


if __name__ == '__main__':
    main()
