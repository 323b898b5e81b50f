"""The README's main command (`make demo`): the whole job on generated data, on this machine.

1. the backbone table of the README, computed live from the models (first: a failure here costs
   seconds, not the whole demo);
2. generate the COCO-format dataset (data/synthetic_coco, 160 px, deterministic);
3. train the narrow ParNet detector and the narrow CSPDarknet53s baseline (tools/train.py);
4. evaluate both at three input sizes (tools/test.py --resolution);
5. INT8 on the CPU: each detector's COCO AP in ONNX Runtime and OpenVINO, fp32 against INT8, on the
   same val images through the same post-processing (tools/deploy/int8_accuracy.py; calibrated on
   the val images), and ParNet's AP change against the baseline's;
6. benchmark both, deploy form, at the same sizes (tools/benchmark.py);
7. merge everything into work_dirs/demo/report.md with its plots (tools/report.py), the backbone
   and INT8 tables appended; the report is written whole or not at all and checked for every section.

`--quick` runs the same steps, smaller (what CI runs: `make demo-quick`, a few minutes on 2 cores):
fewer and smaller images, 2 epochs, 2 input sizes, shorter timing, the backbone table at one size,
INT8 calibrated on 8 images. Its detectors are too briefly trained to find anything (empty AP cells):
it checks that every step runs and that the report has every section; the full demo also checks that
both detectors detect.
"""
import argparse
import glob
import json
import os.path as osp
import shutil
import subprocess
import sys
import time
from typing import NamedTuple, Optional, Tuple

from parnet_det.analysis.summary import backbone_summary_rows, format_summary_table
from parnet_det.benchmark.runtime_table import int8_accuracy_table, int8_gap_lines
from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.deploy import DEFAULT_CALIBRATION_IMAGES
from parnet_det.utils.cli_args import path_arg
from parnet_det.utils.fileio import atomic_write
from parnet_det.utils.warnings_filter import filter_known_warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = ('configs/demo/yolo_parnet_tiny_synthetic.py', 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py')
BACKBONE_TABLE_TITLE = '## Full-size backbones (params of the ImageNet form, GFLOPs of the feature extractor)'
INT8_TITLE = '## INT8 on the CPU: COCO AP in fp32 and INT8, per runtime'
# Every section the finished report holds: tools/report.py's two, the plot, the backbone and INT8 tables.
REPORT_SECTIONS = ('# Speed against the baseline, per regime', '# Speed and accuracy',
                   '![FPS against resolution]', BACKBONE_TABLE_TITLE, INT8_TITLE)


class DemoSize(NamedTuple):
    num_train: int
    num_val: int
    image_size: int
    epochs: Optional[int]  # None: the demo configs' own schedule
    resolutions: Tuple[str, ...]
    timing: Tuple[str, ...]  # tools/benchmark.py's timing arguments
    table_resolutions: Tuple[int, ...]
    must_detect: bool  # stop when a detector finds nothing (the quick run trains too briefly to detect)
    calibration_images: int  # INT8's (the val set whole where smaller)


FULL = DemoSize(320, 80, 160, None, ('128', '160', '192'), ('--warmup', '3', '--iters', '10', '--repeats', '3'),
                (224, 512, 640), True, DEFAULT_CALIBRATION_IMAGES)
QUICK = DemoSize(32, 16, 128, 2, ('96', '128'),
                 ('--warmup', '1', '--iters', '2', '--repeats', '1', '--min-repeat-time', '0'), (224,), False, 8)


def run(*command):
    print('$ ' + ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], cwd=ROOT, check=True)


def schedule_options(epochs):
    """--cfg-options for a shorter schedule (None: the configs' own) that still ends with a checkpoint and
    learns: the demo configs' schedule is [0] a 50-iteration linear warm-up, [1] a cosine decay over the
    epochs; a few dozen iterations would never leave the warm-up."""
    if epochs is None:
        return []
    return [f'train_cfg.max_epochs={epochs}', f'train_cfg.val_interval={epochs}',
            f'default_hooks.checkpoint.interval={epochs}', 'param_scheduler.0.end=5',
            f'param_scheduler.1.T_max={epochs}', f'param_scheduler.1.end={epochs}']


def check_evaluations(ap_file: str, resolutions, must_detect: bool) -> None:
    """Stop when an evaluation is missing, or (``must_detect``) when a detector found nothing at some size
    (mmdet's CocoMetric then gives no metrics): the report would show no AP, and the demo would pass
    without showing that training works."""
    with open(osp.join(ROOT, ap_file)) as f:
        records = [json.loads(line) for line in f if line.strip()]
    evaluated = {str(record['resolution'][0]) for record in records}
    if set(resolutions) - evaluated:
        sys.exit(f'error: {ap_file}: no evaluation at {", ".join(sorted(set(resolutions) - evaluated))} px')
    empty = [f'{record["resolution"][0]} px' for record in records if not record['metrics']]
    if must_detect and empty:
        sys.exit(f'error: {ap_file}: no COCO metrics at {", ".join(empty)} (the detector found nothing: its '
                 'training did not learn); see the training log above')


def int8_section(int8_files) -> str:
    """The report's INT8 section: every detector's AP in fp32 and INT8 per runtime, and ParNet's AP change
    against the baseline's."""
    records = []
    for path in int8_files:
        with open(osp.join(ROOT, path)) as f:
            records += [json.loads(line) for line in f if line.strip()]
    baseline = osp.splitext(osp.basename(MODELS[1]))[0]
    return '\n'.join([INT8_TITLE, '', 'The convolutions in int8, the rest fp32 (parnet_det/deploy/quantize.py); '
                      'the same val images through the same post-processing in fp32 and INT8. AP change: INT8 minus '
                      'the runtime\'s fp32.', '', int8_accuracy_table(records), '',
                      *int8_gap_lines(records, baseline), ''])


def missing_sections(report: str):
    return [section for section in REPORT_SECTIONS if section not in report]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='the same steps, smaller (a few minutes; CI)')
    parser.add_argument('--work-dir', type=path_arg, help='default: work_dirs/demo (work_dirs/demo_quick with --quick)')
    parser.add_argument('--data-root', type=path_arg,
                        help='default: data/synthetic_coco (data/synthetic_coco_quick with --quick)')
    args = parser.parse_args()
    size = QUICK if args.quick else FULL
    suffix = '_quick' if args.quick else ''
    work_dir = args.work_dir or f'work_dirs/demo{suffix}'
    data_root = (args.data_root or f'data/synthetic_coco{suffix}').rstrip('/') + '/'
    start = time.perf_counter()

    print('computing the backbone table', flush=True)
    backbone_table = format_summary_table(backbone_summary_rows(size.table_resolutions))
    data_options = synthetic_coco_cfg_options(data_root)
    if not osp.isfile(osp.join(ROOT, data_root, 'annotations/instances_val.json')):
        run('tools/dataset/generate_synthetic_coco.py', data_root, '--num-train', str(size.num_train),
            '--num-val', str(size.num_val), '--image-size', str(size.image_size), '--seed', '0')
    ap_files, int8_files = [], []
    for config in MODELS:
        name = osp.splitext(osp.basename(config))[0]
        model_dir = osp.join(work_dir, name)
        if osp.isdir(osp.join(ROOT, model_dir)):
            shutil.rmtree(osp.join(ROOT, model_dir))  # a fresh run each time, so the report is this run's
        run('tools/train.py', config, '--work-dir', model_dir, '--cfg-options', *data_options,
            *schedule_options(size.epochs))
        checkpoint = max(glob.glob(osp.join(ROOT, model_dir, 'epoch_*.pth')), key=osp.getmtime)
        for resolution in size.resolutions:
            run('tools/test.py', config, checkpoint, '--work-dir', model_dir, '--resolution', resolution,
                '--cfg-options', *data_options)
        ap_files.append(osp.join(model_dir, 'ap_results.jsonl'))
        check_evaluations(ap_files[-1], size.resolutions, size.must_detect)
        int8_files.append(osp.join(model_dir, 'int8_accuracy.jsonl'))
        run('tools/deploy/int8_accuracy.py', config, checkpoint, '--calibration-images', str(size.calibration_images),
            '--out', int8_files[-1], '--cfg-options', *data_options)
    bench_dir = osp.join(work_dir, 'benchmark')
    run('tools/benchmark.py', MODELS[0], '--baseline', MODELS[1], '--resolutions', *size.resolutions,
        *size.timing, '--work-dir', bench_dir)
    run('tools/report.py', '--ap', *ap_files, '--benchmark', osp.join(bench_dir, 'results.json'), '--out',
        work_dir, '--baseline', osp.splitext(osp.basename(MODELS[1]))[0])

    report_path = osp.join(ROOT, work_dir, 'report.md')
    with open(report_path) as f:
        report = (f.read() + '\n![FPS against resolution](benchmark/fps_vs_resolution.png)\n\n'
                  + BACKBONE_TABLE_TITLE + '\n\n' + backbone_table + '\n\n' + int8_section(int8_files))
    missing = missing_sections(report)
    if missing:
        sys.exit(f'error: the demo report lacks {", ".join(missing)}: tools/report.py did not write them '
                 f'(see its output above); {report_path} left as tools/report.py wrote it')
    with atomic_write(report_path, 'w') as f:
        f.write(report)
    print(f'\ndemo finished in {(time.perf_counter() - start) / 60:.1f} min; report: {report_path}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
