"""The README's main command (`make demo`): the whole job on generated data, on this machine.

1. generate the COCO-format dataset (data/synthetic_coco, 160 px, deterministic);
2. train the narrow ParNet detector and the narrow CSPDarknet53s baseline (tools/train.py);
3. evaluate both at three input sizes (tools/test.py --resolution);
4. benchmark both, deploy form, at the same sizes (tools/benchmark.py);
5. merge everything into work_dirs/demo/report.md with its plots (tools/report.py),
   after the backbone table of the README (computed live).
"""
import argparse
import glob
import os.path as osp
import shutil
import subprocess
import sys
import time

from parnet_det.datasets import synthetic_coco_cfg_options
from parnet_det.utils.warnings_filter import filter_known_warnings

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MODELS = ('configs/demo/yolo_parnet_tiny_synthetic.py', 'configs/demo/yolo_cspdarknet53s_tiny_synthetic.py')
RESOLUTIONS = ('128', '160', '192')


def run(*command):
    print('$ ' + ' '.join(command), flush=True)
    subprocess.run([sys.executable, *command], cwd=ROOT, check=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--data-root', default='data/synthetic_coco')
    args = parser.parse_args()
    start = time.perf_counter()
    data_root = args.data_root.rstrip('/') + '/'
    data_options = synthetic_coco_cfg_options(data_root)
    if not osp.isfile(osp.join(ROOT, data_root, 'annotations/instances_val.json')):
        run('tools/dataset/generate_synthetic_coco.py', data_root, '--num-train', '320', '--num-val', '80',
            '--image-size', '160', '--seed', '0')
    ap_files = []
    for config in MODELS:
        name = osp.splitext(osp.basename(config))[0]
        work_dir = osp.join(args.work_dir, name)
        if osp.isdir(work_dir):
            shutil.rmtree(work_dir)  # a fresh run each time, so the report is this run's
        run('tools/train.py', config, '--work-dir', work_dir, '--cfg-options', *data_options)
        checkpoint = max(glob.glob(osp.join(ROOT, work_dir, 'epoch_*.pth')), key=osp.getmtime)
        for resolution in RESOLUTIONS:
            run('tools/test.py', config, checkpoint, '--work-dir', work_dir, '--resolution', resolution,
                '--cfg-options', *data_options)
        ap_files.append(osp.join(work_dir, 'ap_results.jsonl'))
    bench_dir = osp.join(args.work_dir, 'benchmark')
    run('tools/benchmark.py', MODELS[0], '--baseline', MODELS[1], '--resolutions', *RESOLUTIONS,
        '--warmup', '3', '--iters', '10', '--repeats', '3', '--work-dir', bench_dir)
    run('tools/report.py', '--ap', *ap_files, '--benchmark', osp.join(bench_dir, 'results.json'), '--out',
        args.work_dir, '--baseline', osp.splitext(osp.basename(MODELS[1]))[0])

    from parnet_det.analysis.summary import backbone_summary_rows, format_summary_table
    report = osp.join(ROOT, args.work_dir, 'report.md')
    with open(report) as f:
        speed_accuracy = f.read()
    with open(report, 'w') as f:
        f.write(speed_accuracy + '\n![FPS against resolution](benchmark/fps_vs_resolution.png)\n\n'
                '## Full-size backbones (params of the ImageNet form, GFLOPs of the feature extractor)\n\n'
                + format_summary_table(backbone_summary_rows()) + '\n')
    print(f'\ndemo finished in {(time.perf_counter() - start) / 60:.1f} min; report: {report}')


if __name__ == '__main__':
    filter_known_warnings()
    main()
