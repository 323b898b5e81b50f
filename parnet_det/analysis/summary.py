"""The backbone table of the README, computed from the models themselves."""
from typing import List

from ..models.backbones import ARCH_SETTINGS, CSPDarknet53s, ParNet, ParNetCSP
from ..models.classifiers import ParNetClassifier
from .complexity import count_flops, count_parameters
from .depth import measure_depth


def backbone_summary_rows(resolutions=(224, 512, 640)) -> List[dict]:
    """Params (train / deploy, classifier form with 1000 classes), FLOPs of the
    stride-32 feature extractor, and measured depth, for every ParNet preset,
    ParNet-XL-CSP and CSPDarknet53s: ``depth_backbone`` counts the convolutions
    from the input to stride 32 (what a detector uses), ``depth_classifier``
    the classifier's, its FC included (the paper's 12 for ParNet; None for
    the baseline, measured as a backbone only)."""
    rows = []
    variants = [(f'ParNet-{a.upper()}', 'ParNet', a) for a in ARCH_SETTINGS] + [('ParNet-XL-CSP', 'ParNetCSP', 'xl')]
    for name, backbone_type, arch in variants:
        deployed = ParNetClassifier(arch=arch, backbone_type=backbone_type, deploy=True)
        extractor = {'ParNet': ParNet, 'ParNetCSP': ParNetCSP}[backbone_type](arch=arch, out_indices=(3,), deploy=True)
        rows.append(dict(
            model=name,
            params_train=count_parameters(ParNetClassifier(arch=arch, backbone_type=backbone_type)),
            params_deploy=count_parameters(deployed),
            flops={r: count_flops(extractor, (1, 3, r, r)) for r in resolutions},
            depth_backbone=measure_depth(extractor), depth_classifier=measure_depth(deployed)))
    baseline = CSPDarknet53s()
    rows.append(dict(model='CSPDarknet53s (backbone only)', params_train=count_parameters(baseline),
                     params_deploy=count_parameters(baseline),
                     flops={r: count_flops(baseline, (1, 3, r, r)) for r in resolutions},
                     depth_backbone=measure_depth(baseline), depth_classifier=None))
    return rows


def format_summary_table(rows: List[dict]) -> str:
    resolutions = list(rows[0]['flops'])
    header = ('| model | params train (M) | params deploy (M) | '
              + ' | '.join(f'GFLOPs {r}px' for r in resolutions)
              + ' | depth to stride 32 | depth as classifier (with FC) |')
    lines = [header, '|' + '---|' * (5 + len(resolutions))]
    for row in rows:
        flops = ' | '.join(f'{row["flops"][r] / 1e9:.1f}' for r in resolutions)
        classifier = '-' if row['depth_classifier'] is None else row['depth_classifier']
        lines.append(f'| {row["model"]} | {row["params_train"] / 1e6:.3f} | {row["params_deploy"] / 1e6:.3f} | '
                     f'{flops} | {row["depth_backbone"]} | {classifier} |')
    return '\n'.join(lines)
