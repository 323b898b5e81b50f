"""The answer to the user's question: how each detector's speed compares with the baseline's, per regime.

A regime picks, per model and setting (mode, precision, resolution, batch,
``with_cp``), one measured row:

- ``eager, batch 1``: the engine without fast paths, one image at a time (the paper's regime);
- ``fastest path, batch 1``: the variant with the lowest latency for that model;
- ``batch N``: the largest batch measured, fastest variant (throughput);
- ``training``: one optimizer step at the recipe's batch.

The ratio is the model's images/s over the baseline's in the same regime and
setting: above 1 the model is faster.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .plotting import finish_axes, new_figure, to_png
from .rows import TRAIN_MODE, format_spread, measured, numeric_order, ratio_spread, verdict
from .settings import MODES, Recipe
from .tables import memory_cell

SETTING_KEYS = ('mode', 'precision', 'resolution', 'batch_size', 'with_cp')
# The COCO recipe the training estimate is for: train2017's images, YOLOX's 300 epochs, 8 GPUs.
COCO_TRAIN_IMAGES, RECIPE_EPOCHS, RECIPE_GPUS = 118287, 300, 8


def _fastest(rows: List[dict]) -> Dict[tuple, dict]:
    """Per (model, setting), the row with the highest images/s."""
    best: Dict[tuple, dict] = {}
    for row in rows:
        key = (row['model'], *(row.get(k) for k in SETTING_KEYS), row.get('hardware'))
        if key not in best or row['images_per_s'] > best[key]['images_per_s']:
            best[key] = row
    return best


def select_regimes(rows: List[dict]) -> List[Tuple[str, Dict[tuple, dict]]]:
    """(title, {(model, *setting): row}) for each regime the rows can answer."""
    rows = [row for row in measured(rows) if row.get('form', 'deploy') in ('deploy', 'train')]
    # Rows written before variants existed ran mmdet's path.
    rows = [dict(row, variant=row.get('variant', 'mmdet')) for row in rows]
    inference = [row for row in rows if row['mode'] in MODES and row['form'] == 'deploy']
    largest_batch = max((row['batch_size'] for row in inference), default=1)
    selected = [
        ('eager, batch 1 (the paper\'s regime)', _fastest([r for r in inference if r['variant'] == 'eager'
                                                            and r['batch_size'] == 1])),
        ('fastest path, batch 1', _fastest([r for r in inference if r['batch_size'] == 1])),
        (f'batch {largest_batch}, fastest path', _fastest([r for r in inference if r['batch_size'] == largest_batch
                                                            and largest_batch > 1])),
        ('training step', _fastest([r for r in rows if r['mode'] == TRAIN_MODE])),
    ]
    return [(title, chosen) for title, chosen in selected if chosen]


RATIO_LEGEND = ('Ratio = images/s over the baseline\'s on the same hardware, in the same regime and setting (above 1: '
                'faster), the median over the timed repeats with their min-max in brackets (paired round by round '
                'where both were timed together; "unpaired": the widest interval of their repeats); "faster" or '
                '"slower" only where the whole spread is above or below 1, else "within noise". The variant each '
                'model ran in, in brackets.')


def ratio_tables(rows: List[dict], recipes: Sequence[Recipe]) -> str:
    """Markdown: per hardware, recipe and regime, the baseline's time and every other model's speed ratio to it
    (rows of different machines are never compared)."""
    sections = []
    for hardware in dict.fromkeys(row.get('hardware') for row in measured(rows)):
        same = [row for row in rows if row.get('hardware') == hardware]
        sections.append(f'## {hardware or "hardware not recorded"}\n')
        for recipe in recipes:
            baseline = osp.basename(recipe.baseline)
            members = {baseline, *map(osp.basename, recipe.models)}
            ours = [row for row in same if row['model'] in members]
            if any(row['model'] == baseline for row in measured(ours)):
                sections.append(f'### {recipe.name}: against {baseline}\n\n' + _ratio_tables_on(ours, baseline))
    return '\n'.join(sections)


def _ratio_tables_on(rows: List[dict], baseline: str) -> str:
    lines = []
    for title, chosen in select_regimes(rows):
        models = sorted({key[0] for key in chosen if key[0] != baseline})
        settings = sorted({key[1:] for key in chosen if key[0] == baseline},
                          key=lambda setting: tuple(map(numeric_order, setting)))
        lines += [f'#### {title}', '', '| mode | precision | px | batch | with_cp | baseline ms/batch (variant) | '
                  + ' | '.join(f'{model} ×' for model in models) + ' |', '|' + '---|' * (6 + len(models))]
        for setting in settings:
            reference = chosen[(baseline, *setting)]
            cells = []
            for model in models:
                row = chosen.get((model, *setting))
                cells.append('-' if row is None else f'{_regime_ratio(row, reference)} ({row["variant"]})')
            mode, precision, resolution, batch, with_cp, _ = setting  # the last: the one hardware
            lines.append(f'| {mode} | {precision} | {resolution} | {batch} | {"-" if with_cp is None else with_cp} | '
                         f'{reference["ms_per_batch_median"]:.2f} ({reference["variant"]}) | ' + ' | '.join(cells)
                         + ' |')
        lines.append('')
    return '\n'.join(lines)


def _regime_ratio(row: dict, reference: dict) -> str:
    """The ratio with its spread and verdict (a regime may pick different variants for the two models: then
    their repeats were not interleaved, and the spread is the unpaired one)."""
    median, low, high, paired = ratio_spread(row, reference)
    spread = format_spread(low, high, paired)
    return f'**{median:.2f}**{f" ({spread})" if spread else ""} {verdict(low, high)}'


def training_estimates(rows: List[dict]) -> str:
    """Markdown: the hours the 300-epoch COCO recipe would take on 8 devices like the measured one.

    An estimate, not a measurement: images / (measured step images/s x 8), so it assumes perfect scaling
    over 8 devices, a data loader that keeps up, and no time for evaluation, EMA or checkpoints.
    """
    lines = [f'Estimate, not measured: {COCO_TRAIN_IMAGES} images x {RECIPE_EPOCHS} epochs / (images/s of one '
             f'training step x {RECIPE_GPUS} devices); assumes perfect scaling, a data loader that keeps up, '
             'no evaluation, EMA or checkpoint time.', '',
             '| model | precision | px | batch | with_cp | img/s (1 device) | peak mem (MiB) | est. hours, 8 devices |',
             '|---|---|---|---|---|---|---|---|']
    for row in measured(rows):
        if row['mode'] == TRAIN_MODE:
            hours = COCO_TRAIN_IMAGES * RECIPE_EPOCHS / (row['images_per_s'] * RECIPE_GPUS) / 3600
            lines.append(f'| {row["model"]} | {row["precision"]} | {row["resolution"]} | {row["batch_size"]} | '
                         f'{row["with_cp"]} | {row["images_per_s"]:.2f} | {memory_cell(row)} | '
                         f'{hours:,.0f} |')
    return '\n'.join(lines) + '\n'


def _plot(rows: List[dict], x_key: str, y: Callable[[dict], float], span: Callable[[dict], tuple], ylabel: str,
          keep: Callable[[dict], bool], title: str) -> bytes:
    figure = new_figure(6 * len(MODES), 4.5)
    for index, mode in enumerate(MODES, start=1):
        axes = figure.add_subplot(1, len(MODES), index)
        chosen = [row for row in _fastest([r for r in measured(rows) if r['mode'] == mode and keep(r)]).values()]
        for model in sorted({row['model'] for row in chosen}):
            points = sorted((row for row in chosen if row['model'] == model), key=lambda row: row[x_key])
            values = [y(row) for row in points]
            # Error bars: the fastest and the slowest repeat.
            spread = [[value - min(bounds) for value, bounds in zip(values, (span(row) for row in points))],
                      [max(bounds) - value for value, bounds in zip(values, (span(row) for row in points))]]
            axes.errorbar([row[x_key] for row in points], values, yerr=spread, marker='o', capsize=3, label=model)
        finish_axes(axes, title=f'{mode}, fastest variant', xlabel=x_key.replace('_', ' '), ylabel=ylabel)
    figure.suptitle(title)
    return to_png(figure)


def _preferred(values: Sequence, order: Sequence) -> Optional[object]:
    return next((value for value in order if value in values), min(values, default=None))


def regime_plots(rows: List[dict], device: str) -> Dict[str, bytes]:
    """``latency_vs_resolution.png`` (batch 1) and ``throughput_vs_batch.png`` (at 640 px or the largest size
    below), each at the lowest precision measured, fastest variant per point."""
    ok = [row for row in measured(rows) if row['mode'] in MODES]
    # One machine per plot: the first one the rows name.
    first = next((row.get('hardware') for row in ok), None)
    ok = [row for row in ok if row.get('hardware') == first]
    precision = _preferred({row['precision'] for row in ok}, ('fp16', 'bf16', 'fp32'))
    resolutions = {row['resolution'] for row in ok}
    resolution = max((r for r in resolutions if r <= 640), default=min(resolutions, default=None))
    same_precision = lambda row: row['precision'] == precision
    return {
        'latency_vs_resolution.png': _plot(
            ok, 'resolution', lambda row: row['ms_per_batch_median'],
            lambda row: (row.get('ms_per_batch_min', row['ms_per_batch_median']),
                         row.get('ms_per_batch_max', row['ms_per_batch_median'])), 'ms per image (batch 1)',
            lambda row: same_precision(row) and row['batch_size'] == 1, f'{device}, {precision}'),
        'throughput_vs_batch.png': _plot(
            ok, 'batch_size', lambda row: row['images_per_s'],
            lambda row: (row['batch_size'] * 1000 / row.get('ms_per_batch_max', row['ms_per_batch_median']),
                         row['batch_size'] * 1000 / row.get('ms_per_batch_min', row['ms_per_batch_median'])),
            'images / s',
            lambda row: same_precision(row) and row['resolution'] == resolution,
            f'{device}, {precision}, {resolution} px'),
    }
