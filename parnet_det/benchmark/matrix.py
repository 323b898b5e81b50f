"""The whole speed comparison in one resumable run: every model x resolution x batch x precision x
variant, plus training throughput, with each row kept in ``rows.jsonl`` as soon as it is measured.

A run cut short (a time limit, a lost machine) keeps its rows; the same command
again measures only the rows ``rows.jsonl`` lacks. Each row has its own time
limit: one that hangs is kept with ``status='timeout'`` and the run goes on.
"""
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Callable, Dict, List, Sequence

from ..utils.fileio import atomic_write, strict_json
from .regimes import RATIO_LEGEND, ratio_tables, regime_plots, training_estimates
from .report import benchmark_meta, write_files, write_report
from .rows import TRAIN_MODE, add_baseline_ratios, add_variant_speedups, latest_rows, row_key
from .runner import run_benchmark
from .runtime_table import runtime_latency_plot, runtime_tables
from .settings import BenchmarkSettings, Recipe, baselines_of, load_model_specs, recipe_models
from .training import TrainSettings, run_training_benchmark

BASELINE = 'yolo_cspdarknet53s_coco'
# Records of tools/deploy/int8_accuracy.py (trained detectors, fp32 against INT8) that runtimes.md quotes beside the
# INT8 rows, where the work dir holds them.
INT8_ACCURACY_FILE = 'int8_accuracy.jsonl'


# The baseline, ParNet-XL and XL-CSP (the paper's pair), ParNet-S and M (S has the baseline's backbone FLOPs at
# depth 12), and the wide-neck XL for reference.
YOLOX_RECIPE = Recipe('YOLOX recipe (YOLOX-L PAFPN and head, CSPDarknet53s baseline)', BASELINE,
                      ('yolo_parnet_xl_coco', 'yolo_parnet_s_coco', 'yolo_parnet_xl_csp_coco', 'yolo_parnet_m_coco',
                       'yolo_parnet_xl_wideneck_coco'))
# The published detector (Scaled-YOLOv4's neck, head and recipe): the paper's baseline, and ParNet on its neck
# and head behind three 1x1 reductions (like for like: only the backbone differs).
YOLOV4_CSP_RECIPE = Recipe("YOLOv4-CSP (the published detector's neck, head and recipe: the paper's pair)",
                           'yolov4_csp_coco', ('yolov4_csp_parnet_xl_coco', 'yolov4_csp_parnet_xl_csp_coco',
                                               'yolov4_csp_parnet_s_coco', 'yolov4_csp_parnet_m_coco'))
# The detectors a user would pick instead, from mmdet's own configs (configs/reference/): random weights, folded
# and under the controlled workload like every model. Their published AP is quoted (source named) in .published,
# never measured here.
REFERENCE_RECIPE = Recipe("Detectors a user would pick instead (mmdet's RTMDet-m/-l and YOLOX-L, random weights), "
                          'beside the published YOLOv4-CSP', 'yolov4_csp_coco',
                          ('reference/rtmdet_m_coco', 'reference/rtmdet_l_coco', 'reference/yolox_l_coco'))
RECIPES = (YOLOX_RECIPE, YOLOV4_CSP_RECIPE, REFERENCE_RECIPE)


MATRIX_MODELS = tuple(recipe_models(RECIPES))


@dataclass
class MatrixPreset:
    """Settings of the inference rows and of the training rows of one matrix, and the recipes (each a
    baseline and the models compared with it)."""
    inference: BenchmarkSettings
    training: TrainSettings
    recipes: Sequence[Recipe] = RECIPES

    @property
    def models(self) -> List[str]:
        return recipe_models(self.recipes)


PRESETS: Dict[str, MatrixPreset] = {
    # The question of the paper on a GPU. channels_last+cuda_graph was the fastest network path on an H100
    # for ParNet-XL and the baseline alike (the H100 run before issue 21, in git history: docs/benchmarks/README.md).
    'gpu': MatrixPreset(
        inference=BenchmarkSettings(resolutions=(640, 512, 1280), batch_sizes=(1, 32), precisions=('fp16', 'fp32'),
                                    variants=('mmdet', 'eager', 'channels_last+cuda_graph'), device='cuda',
                                    warmup=5, iters=1, repeats=5, min_repeat_s=0.2, row_time_limit_s=60),
        training=TrainSettings(resolution=640, precisions=('fp16', ), with_cp=(False, True), device='cuda',
                               row_time_limit_s=120)),
    # The same comparison within a 2-core CPU's reach: smaller inputs, batch 1, fp32; channels_last is the CPU's
    # fast path that needs no compilation (torch.compile costs minutes per model and size there); ONNX Runtime
    # and OpenVINO run the exported graph as deployers do (each model exported once per size: tens of seconds,
    # reported apart). Training without with_cp: on the CPU it costs time and shows nothing about memory.
    'cpu': MatrixPreset(
        inference=BenchmarkSettings(resolutions=(320, 512), batch_sizes=(1, ), precisions=('fp32', ),
                                    variants=('mmdet', 'eager', 'channels_last', 'onnxruntime', 'openvino'),
                                    device='cpu',
                                    warmup=1, iters=1, repeats=5, min_repeat_s=1.0, threads=2,
                                    row_time_limit_s=300),
        training=TrainSettings(resolution=320, batch_size=2, precisions=('fp32', ), with_cp=(False, ),
                               device='cpu', warmup=1, iters=1, repeats=3, row_time_limit_s=300)),
}


def read_rows(path: str) -> List[dict]:
    """The rows of a ``rows.jsonl``; a last line cut off mid-write (the run was killed) is dropped."""
    if not osp.isfile(path):
        return []
    rows = []
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f'{path} is not text; it is not a benchmark rows.jsonl') from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number != len(lines):
                raise ValueError(f'{path}:{number} is not a JSON row; it is not a benchmark rows.jsonl') from None
            continue
        if not isinstance(row, dict) or 'model' not in row:
            raise ValueError(f'{path}:{number} is JSON but not a benchmark row (no "model"); it is not a benchmark '
                             'rows.jsonl')
        rows.append(row)
    return rows


def read_jsonl(path: str) -> List[dict]:
    """The JSON records of a file, one a line."""
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


def drop_cut_row(path: str) -> None:
    """Remove a last line cut off mid-write (the run was killed), so that new rows start on a line of their own.

    The file is rewritten atomically: a second kill leaves the old or the new file.
    """
    if not osp.isfile(path):
        return
    with open(path, 'rb') as file:
        content = file.read()
    if not content or content.endswith(b'\n'):
        return
    with atomic_write(path) as file:
        file.write(content[:content.rfind(b'\n') + 1])


def done_keys(rows: Sequence[dict], retry_failed: bool = False) -> set:
    """Keys of the rows a resumed run skips: all measured ones, and the timed-out or failed ones unless
    retried. Rows of the protocol before interleaving (no ``timing_group``) are measured again."""
    return {row_key(row) for row in latest_rows(rows)
            if (row.get('status', 'ok') != 'ok' and not retry_failed)
            or (row.get('status', 'ok') == 'ok' and row.get('timing_group'))}


def row_appender(path: str) -> Callable[[dict], None]:
    """Append each row to ``path`` as one line, flushed and fsynced: a kill keeps every finished row."""

    def append(row: dict) -> None:
        with open(path, 'a') as file:
            file.write(strict_json(row) + '\n')
            file.flush()
            os.fsync(file.fileno())

    return append


def run_matrix(preset: MatrixPreset, config_dir: str, work_dir: str, command: Sequence[str],
               retry_failed: bool = False, log: Callable[[str], None] = print) -> List[str]:
    """Measure the rows of ``preset`` that ``work_dir/rows.jsonl`` lacks, then write the reports over all rows.

    Args:
        preset (MatrixPreset): What to measure.
        config_dir (str): Where ``<model>.py`` configs are.
        work_dir (str): Keeps ``rows.jsonl`` (appended to) and the reports.
        command (Sequence[str]): The command line, for the report.
        retry_failed (bool): Measure rows that timed out or failed before again.
        log (Callable): Receives progress lines.

    Returns:
        list[str]: The report files written.
    """
    specs = load_model_specs(*_model_configs(config_dir, preset.models))
    rows_path = osp.join(work_dir, 'rows.jsonl')
    drop_cut_row(rows_path)
    done = done_keys(read_rows(rows_path), retry_failed)
    log(f'{len(done)} rows in {rows_path} already; measuring the rest')
    # Collected first: a failure there must not cost the measurements.
    meta = benchmark_meta(command, preset.inference, ', '.join(r.baseline for r in preset.recipes), preset.training)
    os.makedirs(work_dir, exist_ok=True)
    append = row_appender(rows_path)
    if preset.inference.precisions:  # none: this call only writes the reports
        run_benchmark(specs, preset.inference, log=log, on_row=append, done=done)
    if preset.training.precisions:
        run_training_benchmark(specs, preset.training, log=log, on_row=append, done=done)
    return write_matrix_reports(work_dir, meta, read_rows(rows_path), preset.recipes)


def _model_configs(config_dir: str, models: Sequence[str]) -> tuple:
    """``load_model_specs``'s arguments for ``models``: the first as model, the rest as baselines."""
    paths = [osp.join(config_dir, f'{model}.py') for model in models]
    return paths[0], None, paths[1:]


def hardware_of(rows: Sequence[dict]) -> str:
    """The hardware the rows were measured on, in words (several joined by '; ')."""
    return '; '.join(dict.fromkeys(str(row.get('hardware') or row['device']) for row in rows)) or 'no rows'


def write_matrix_reports(work_dir: str, meta: dict, rows: List[dict], recipes: Sequence[Recipe]) -> List[str]:
    """results.* of :func:`~.report.write_report`, regimes.md with the latency and throughput plots, and
    runtimes.md with latency_per_runtime.png (:mod:`.runtime_table`)."""
    rows = latest_rows(rows)
    add_baseline_ratios(rows, baselines_of(recipes))
    add_variant_speedups(rows, meta['settings']['variants'][0])
    device = hardware_of(rows)
    answer = ('# Detectors against their baselines, per regime\n\n' + RATIO_LEGEND + '\n\n'
              + ratio_tables(rows, recipes))
    if any(row['mode'] == TRAIN_MODE for row in rows):
        answer += '\n## Training time of the COCO recipe\n\n' + training_estimates(rows)
    accuracy_path = osp.join(work_dir, INT8_ACCURACY_FILE)
    accuracy = read_jsonl(accuracy_path) if osp.isfile(accuracy_path) else []
    runtimes = '# Per runtime and input size, in the form of published tables\n\n' + runtime_tables(rows, accuracy)
    return write_report(work_dir, meta, rows) + write_files(
        work_dir, {'regimes.md': answer.encode(), **regime_plots(rows, device), 'runtimes.md': runtimes.encode(),
                   'latency_per_runtime.png': runtime_latency_plot(rows)})
