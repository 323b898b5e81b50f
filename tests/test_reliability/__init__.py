"""The probe table of issue 12, played as tests: a hostile or unlucky user's inputs, each asserting the
message, the exit code and that nothing was lost or left behind.

- test_checkpoint_files.py: each broken checkpoint kind (missing, empty, truncated, random bytes,
  pickled code) at the reader, mmengine's loader and the converter; atomic writes; resume candidates;
  strict loading.
- test_crash_safe_training.py: a real process killed with SIGKILL while it writes a large checkpoint,
  and resuming past a checkpoint truncated mid-write (tools/train.py end to end, slow).
- issue 19, runs and data never mixed up: test_work_dir_lock.py (one run per work dir),
  test_data_identity.py (ids, image files, category order), test_same_model.py (resume and test only
  the same model, class names, a copied work dir), test_divergence.py, test_model_inputs.py (the reduced neck);
  a deploy checkpoint's AP equals its training form's in test_tools/test_train_test_end_to_end.py (slow), on
  the detector trained there once.
- test_data_preflight.py: classes, heads and boxes against the annotation files, on generated COCO data.
- test_entry_points.py: each tool and the inference engine with bad arguments and broken or mismatched
  checkpoints.
- issue 26, nothing overwritten, nothing skipped at COCO scale: test_outputs_apart.py (no output replaces
  an input: the converters, reparameterize, benchmark_matrix --archive, test.py --show-dir),
  test_data_identity.py (the identity checks on a file over the pre-flight's 64 MB, image names leaving
  their folder), test_work_dir_lock.py (a planted lock symlink, folder or pipe; the holder sanitised),
  test_preemption.py (SIGTERM), test_home_paths.py (``~``), test_data_that_lies.py (EXIF-turned images,
  cut videos, legacy checkpoints, infer's inputs), test_nothing_useful.py (non-zero exits, files named).
- issue 33: test_outputs_apart.py (a work dir that is the data, .. and symlink forms, a config's _base_ chain,
  foreign files never replaced, planted temporaries), test_checkpoint_files.py (real pickled payloads named,
  torch 2.14's blocked-module wording), test_preemption.py (a preempted run resumes at its iteration to the
  uninterrupted run's weights), test_user_errors.py (the probe table's user errors, one line each),
  test_data_that_lies.py (symlinked images, non-finite boxes, NaN darknet weights, inputs given twice, failed
  benchmark rows, unreadable ImageNet images).
"""
