from .runner_config import (dataset_pipeline, default_work_dir, load_config, record_ap_results, set_launcher,
                            set_test_resolution, setup_train_config)

__all__ = [
    'dataset_pipeline', 'default_work_dir', 'load_config', 'record_ap_results', 'set_launcher',
    'set_test_resolution', 'setup_train_config'
]
