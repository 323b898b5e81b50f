"""The fair comparison: controlled post-processing work, training throughput, the resumable matrix and the
per-regime answer."""
import dataclasses
import json
from pathlib import Path

import pytest
import torch
from mmengine.optim import build_optim_wrapper

from mmdet.registry import MODELS

from parnet_det.apis import build_detector, load_config
from parnet_det.benchmark import (
    BenchmarkSettings,
    TrainSettings,
    load_model_specs,
    measurement,
    read_rows,
    run_benchmark,
    run_matrix,
    run_training_benchmark,
)
from parnet_det.benchmark.inputs import pack_images, synthetic_images
from parnet_det.benchmark.matrix import MatrixPreset
from parnet_det.benchmark.rows import latest_rows, ratio_spread
from parnet_det.benchmark.settings import Recipe
from parnet_det.benchmark.training import synthetic_training_batch, training_config
from parnet_det.benchmark.workload import HeadOutputs, control_workload

from ..helpers import load_tool

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / 'configs' / 'demo'
PARNET, BASELINE = 'yolo_parnet_tiny_synthetic', 'yolo_cspdarknet53s_tiny_synthetic'
QUICK = dict(warmup=0, iters=1, repeats=1, min_repeat_s=0)


pytestmark = pytest.mark.usefixtures('mmcv_ops_probed_once')  # tests/conftest.py


def test_two_different_random_detectors_get_the_same_post_processing_work():
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), baselines=[str(DEMO / f'{BASELINE}.py')])
    settings = BenchmarkSettings(resolutions=(320, ), batch_sizes=(2, ), variants=('mmdet', 'eager'), **QUICK)
    rows = [row for row in run_benchmark(specs, settings, log=lambda line: None) if row['mode'] == 'end2end']
    assert len(rows) == 4
    for row in rows:
        assert row['workload'].startswith('controlled: 1000 candidates')  # 2100 priors at 320 px: under half
        # Calibrated on the timed batch itself: the targets up to ties between equal scores and box sizes.
        assert abs(row['nms_candidates_per_image'] - 1000) <= 2
        assert abs(row['detections_per_image'] - 100) <= 3


def test_with_a_checkpoint_the_real_outputs_are_used(tmp_path):
    torch.manual_seed(3)
    model = build_detector(str(DEMO / f'{PARNET}.py'))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'weights.pth')
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), str(tmp_path / 'weights.pth'))
    settings = BenchmarkSettings(resolutions=(96, ), batch_sizes=(2, ), **QUICK)
    rows = run_benchmark(specs, settings, log=lambda line: None)
    deployed = build_detector(str(DEMO / f'{PARNET}.py'), str(tmp_path / 'weights.pth'), fold=True)
    data = deployed.data_preprocessor(pack_images(synthetic_images(96, 2)), False)
    with torch.inference_mode():
        candidates = HeadOutputs(deployed, data['inputs']).count_candidates(deployed._forward(data['inputs']), 2)
    for row in rows:
        assert row['workload'] == 'checkpoint'
        assert row['nms_candidates_per_image'] == candidates


def test_a_small_input_gets_at_most_half_its_priors_as_candidates():
    torch.manual_seed(0)
    model = build_detector(str(DEMO / f'{PARNET}.py'), fold=True)
    data = model.data_preprocessor(pack_images(synthetic_images(64, 2)), False)
    metas = [sample.metainfo for sample in data['data_samples']]
    target, _ = control_workload(model, data['inputs'], metas, 1000, detections=10)
    assert target == (8 * 8 + 4 * 4 + 2 * 2) // 2
    with torch.inference_mode():
        counted = HeadOutputs(model, data['inputs']).count_candidates(model._forward(data['inputs']), 2)
    assert abs(counted - target) <= 1


def test_the_training_mode_runs_optimizer_steps_and_reports_speed_and_memory():
    specs = load_model_specs(str(DEMO / f'{PARNET}.py'), baselines=[str(DEMO / f'{BASELINE}.py')])
    settings = TrainSettings(resolution=64, batch_size=2, precisions=('fp32', ), with_cp=(False, True), device='cpu',
                             warmup=1, iters=1, repeats=2)
    rows = run_training_benchmark(specs, settings, log=lambda line: None)
    assert [(row['model'], row['with_cp']) for row in rows] == [(PARNET, False), (BASELINE, False), (PARNET, True),
                                                                (BASELINE, True)]
    # The two models' steps alternated, per with_cp: their ratio pairs round by round.
    assert rows[0]['timing_group'] == rows[1]['timing_group'] != rows[2]['timing_group'] == rows[3]['timing_group']
    assert ratio_spread(rows[0], rows[1])[3] is True
    for row in rows:
        assert len(row['ms_per_batch_repeats']) == 2
        assert row['status'] == 'ok' and row['mode'] == 'train_step' and row['batch_size'] == 2
        assert row['images_per_s'] == pytest.approx(2 * 1000 / row['ms_per_batch_median'])
        assert row['peak_memory_mib'] is None and row['params_backbone'] > 0  # n/a on the CPU


def test_a_training_step_changes_the_weights():
    # What is timed is a real step: forward, loss, backward and the optimizer's update.
    cfg = training_config(load_config(str(DEMO / f'{PARNET}.py')), 'fp32', with_cp=False)
    model = MODELS.build(cfg.model).train()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    before = [p.detach().clone() for p in model.parameters()]
    losses = model.train_step(synthetic_training_batch(64, 2, 5, 4), wrapper)
    assert {'loss_cls', 'loss_bbox', 'loss_obj'} <= set(losses) and all(torch.isfinite(v) for v in losses.values())
    assert sum(not torch.equal(b, p) for b, p in zip(before, model.parameters())) > 0.5 * len(before)


def _tiny_preset(row_time_limit_s=None, repeats=1) -> MatrixPreset:
    return MatrixPreset(
        inference=BenchmarkSettings(resolutions=(64, 96), batch_sizes=(1, 2), precisions=('fp32', ),
                                    variants=('mmdet', 'eager'), threads=1, row_time_limit_s=row_time_limit_s,
                                    **dict(QUICK, repeats=repeats)),
        training=TrainSettings(resolution=64, batch_size=2, precisions=('fp32', ), with_cp=(False, ), device='cpu',
                               warmup=0, iters=1, repeats=1),
        recipes=(Recipe('test recipe', BASELINE, (PARNET, )), ))


class _Interrupted(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_matrix_resumes_with_only_the_missing_rows(tmp_path):
    preset, lines = _tiny_preset(), []
    total = 2 * 2 * 2 * 2 * 2 + 2  # models x resolutions x batches x variants x modes, + training per model

    def stop_after_five(line):
        lines.append(line)
        if sum(line.startswith('[') for line in lines) == 5:
            raise _Interrupted  # as a kill after the fifth row was written

    with pytest.raises(_Interrupted):
        run_matrix(preset, str(DEMO), str(tmp_path), ['test'], log=stop_after_five)
    assert len(read_rows(str(tmp_path / 'rows.jsonl'))) == 5
    # A kill mid-write leaves a cut line: it is dropped and that row measured again.
    with open(tmp_path / 'rows.jsonl', 'a') as file:
        file.write('{"model": "yolo_parn')
    lines.clear()
    paths = run_matrix(preset, str(DEMO), str(tmp_path), ['test'], log=lines.append)
    measured_now = [line for line in lines if line.startswith('[')]
    # Two settings of both models were done; the third was cut after its first model: measured again for both,
    # so that its rows stay interleaved (the newer row replaces the older).
    assert len(measured_now) == total - 4
    rows = latest_rows(read_rows(str(tmp_path / 'rows.jsonl')))
    keys = [(r['model'], r['variant'], r['resolution'], r['batch_size'], r['mode'], r.get('with_cp')) for r in rows]
    assert len(keys) == len(set(keys)) == total
    # A third run has nothing left to measure.
    lines.clear()
    run_matrix(preset, str(DEMO), str(tmp_path), ['test'], log=lines.append)
    assert not [line for line in lines if line.startswith('[')]
    assert {Path(p).name for p in paths} >= {'results.json', 'results.md', 'regimes.md', 'latency_vs_resolution.png',
                                             'throughput_vs_batch.png'}


@pytest.mark.slow
def test_the_report_gives_each_models_ratio_to_the_baseline_per_regime(tmp_path):
    run_matrix(_tiny_preset(repeats=2), str(DEMO), str(tmp_path), ['test'], log=lambda line: None)
    answer = (tmp_path / 'regimes.md').read_text()
    rows = {(r['model'], r['variant'], r['resolution'], r['batch_size'], r['mode']): r
            for r in json.loads((tmp_path / 'results.json').read_text())['rows']}
    assert f'### test recipe: against {BASELINE}' in answer
    for title in ("#### eager, batch 1 (the paper's regime)", '#### fastest path, batch 1',
                  '#### batch 2, fastest path', '#### training step'):
        assert title in answer
    eager = answer.split("#### eager, batch 1 (the paper's regime)")[1].split('###')[0]
    parnet, baseline = rows[PARNET, 'eager', 96, 1, 'network'], rows[BASELINE, 'eager', 96, 1, 'network']
    median, low, high, paired = ratio_spread(parnet, baseline)
    assert paired and median == pytest.approx(parnet['fps_ratio_to_baseline'])
    assert low <= median <= high
    verdict = 'faster' if low > 1 else 'slower' if high < 1 else 'within noise'
    line = (f'| network | fp32 | 96 | 1 | - | {baseline["ms_per_batch_median"]:.2f} (eager) | '
            f'**{median:.2f}** ({low:.2f}-{high:.2f}) {verdict} (eager) |')
    assert line in eager
    assert (tmp_path / 'latency_vs_resolution.png').read_bytes().startswith(b'\x89PNG')
    # The training rows become the labelled estimate of the 300-epoch recipe on 8 devices.
    train = next(r for r in read_rows(str(tmp_path / 'rows.jsonl'))
                 if r['model'] == PARNET and r['mode'] == 'train_step')
    hours = 118287 * 300 / (train['images_per_s'] * 8) / 3600
    assert 'Estimate, not measured' in answer and f'| {hours:,.0f} |' in answer


@pytest.mark.slow
def test_a_row_over_its_time_limit_is_kept_as_a_timeout_and_the_run_goes_on(tmp_path):
    preset = _tiny_preset(row_time_limit_s=1e-4)
    preset = dataclasses.replace(preset, recipes=(Recipe('test recipe', BASELINE, ()), ),
                                 inference=dataclasses.replace(preset.inference, resolutions=(64, ), batch_sizes=(1, ),
                                                               variants=('mmdet', )))
    run_matrix(preset, str(DEMO), str(tmp_path), ['test'], log=lambda line: None)
    rows = read_rows(str(tmp_path / 'rows.jsonl'))
    statuses = [row['status'] for row in rows if row['mode'] != 'train_step']
    assert statuses == ['timeout', 'timeout'] and 'time limit' in rows[0]['error']
    assert '## Not measured' in (tmp_path / 'results.md').read_text()


def test_a_detector_without_a_yolox_head_runs_with_its_own_head():
    config = str(Path(__file__).resolve().parents[1] / 'data' / 'configs' / 'retinanet_parnet_tiny.py')
    settings = BenchmarkSettings(resolutions=(64, ), batch_sizes=(1, ), **QUICK)
    rows = run_benchmark(load_model_specs(config), settings, log=lambda line: None)
    assert [row['status'] for row in rows] == ['ok', 'ok']
    assert all(row['workload'].startswith('initial head') and row['nms_candidates_per_image'] is None
               for row in rows)


def test_a_row_that_fails_is_kept_and_the_run_goes_on(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError('CUDA out of memory (simulated)\nmore lines')

    monkeypatch.setattr(measurement, 'timed_step', out_of_memory)
    specs = load_model_specs(str(DEMO / f'{BASELINE}.py'))
    rows = run_benchmark(specs, BenchmarkSettings(resolutions=(64, ), **QUICK), log=lambda line: None)
    assert [(row['status'], row['error']) for row in rows] == [
        ('error', 'RuntimeError: CUDA out of memory (simulated)')] * 2


@pytest.mark.parametrize('with_cp', [False, True])
def test_with_cp_reaches_the_backbone(with_cp):
    cfg = training_config(load_config(str(DEMO / f'{PARNET}.py')), 'fp32', with_cp=with_cp)
    backbone = MODELS.build(cfg.model).backbone
    assert any(getattr(module, 'with_cp', False) for module in backbone.modules()) == with_cp


@pytest.mark.parametrize('argv, message', [
    (['--resolutions', '999'], '--resolutions 999: not in the preset'),
    (['--models', 'no_such_model'], 'no config configs/no_such_model.py'),
    ([], 'is not a JSON row'),
])
def test_the_matrix_tool_refuses_bad_input_before_measuring(tmp_path, capsys, argv, message):
    (tmp_path / 'rows.jsonl').write_text('not json\n{"model": 1}\n')  # foreign: only the last line may be cut
    with pytest.raises(SystemExit) as exit_info:
        load_tool('benchmark_matrix.py').main(['--preset', 'cpu', '--work-dir', str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.splitlines()[-1]
    assert sorted(path.name for path in tmp_path.iterdir()) == ['rows.jsonl']


def test_a_baseline_given_by_hand_keeps_its_presets_recipe_name():
    tool = load_tool('benchmark_matrix.py')
    pair = ['yolov4_csp_coco', 'yolov4_csp_parnet_s_coco']

    def recipes(*argv):
        return tool.preset_from_args(tool.parse_args(['--preset', 'cpu', '--work-dir', 'unused', *argv])).recipes

    [named] = recipes('--models', pair[1], '--baseline', pair[0])
    assert named.name.startswith('YOLOv4-CSP') and (named.baseline, list(named.models)) == (pair[0], pair[1:])
    [unnamed] = recipes('--models', 'yolo_parnet_s_coco', '--baseline', pair[0])
    assert unnamed.name == 'the pair given on the command line'


def test_the_matrix_tool_takes_rtmdets_protocol_row_on_the_fastest_path():
    tool = load_tool('benchmark_matrix.py')
    argv = ['--preset', 'gpu', '--work-dir', 'unused', '--models', 'yolov4_csp_parnet_xl_coco',
            'reference/rtmdet_l_coco', '--resolutions', '640', '--batch-sizes', '1', '--precisions', 'fp16',
            '--variants', 'channels_last+max_autotune+cuda_graph', '--modes', 'network']
    preset = tool.preset_from_args(tool.parse_args(argv))
    settings = preset.inference
    assert (settings.variants, settings.modes, settings.precisions) == (
        ('channels_last+max_autotune+cuda_graph', ), ('network', ), ('fp16', ))
    # Both recipes of these models have YOLOv4-CSP as baseline: it is measured beside them.
    assert preset.models[0] == 'yolov4_csp_coco' and set(preset.models[1:]) == set(argv[5:7])
    with pytest.raises(SystemExit):
        tool.parse_args(['--preset', 'gpu', '--work-dir', 'unused', '--modes', 'no_nms'])
