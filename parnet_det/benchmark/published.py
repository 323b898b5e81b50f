"""Published COCO box AP of the detectors the benchmark times with random weights: quoted, with their source,
for the report's published-AP column; nothing here is measured by this project."""
from typing import NamedTuple


class PublishedAP(NamedTuple):
    """A published box AP (percent) of a detector with its authors' weights: on which data, and who says so."""
    ap: float
    data: str
    source: str


# Model name (as rows name it) -> its published AP. The rows' detectors have the same network, not those weights.
PUBLISHED_AP = {
    'rtmdet_m_coco': PublishedAP(49.1, 'COCO val2017', "mmdet 3.x configs/rtmdet/metafile.yml"),
    'rtmdet_l_coco': PublishedAP(51.3, 'COCO val2017', "mmdet 3.x configs/rtmdet/metafile.yml"),
    'yolox_l_coco': PublishedAP(49.4, 'COCO val2017', "mmdet 3.x configs/yolox/metafile.yml"),
    'yolov4_csp_coco': PublishedAP(47.5, 'COCO test-dev, 640 px', 'Scaled-YOLOv4 paper (Wang et al., CVPR 2021)'),
}


def published_ap_cell(model: str) -> str:
    """'51.3 (COCO val2017; mmdet 3.x configs/rtmdet/metafile.yml)', or '-' for a model with no published AP."""
    quoted = PUBLISHED_AP.get(model)
    return '-' if quoted is None else f'{quoted.ap:.1f} ({quoted.data}; {quoted.source})'
