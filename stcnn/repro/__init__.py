r"""The reproduction study: the paper's Tables 1–4 and speed claims, as cells, results and a report.

  python -m stcnn.repro --table=all --preset=cpu      # see stcnn/repro/__main__.py for the flags

Modules, one concern each:
  cells     what a cell is (table, network, seed, split), the plan a --table needs, each cell's
            config (configs/*.py + experiments/study.py's recipe) and commands
  run       running a cell: train_and_evaluate in its workdir (resumes), one test pass keeping
            per-video outputs, the result files; the speed cell (stcnn.bench.time_model)
  analysis  numbers derived from predictions and results: look / motion accuracy, confusions,
            groups, mean ± std, verdicts on the paper's claims
  report    RESULTS.md from the result files alone
  plots     the report's figures
  study     the whole thing as one call (`run_study`); __main__ its command line

Per-cell result, `<results>/<key>.json` (key: t1-<network>-s<seed>, t3-<mode>-s<seed>-split<k>,
speed), schema 1:
  schema, key, table ("1" | "3" | "speed"), network, seed, split, preset, depends_on
  config        "configs/slow_fusion.py:cpu" (the config file and its arg)
  overrides     {dotted key: value}: the recipe's overrides and the seed
  source        (fine-tuned Table 3 cells) the identity of the Table 1 cell they start from;
                config, overrides and source are the cell's identity: a result with the same
                identity is finished
  commands      {"cell": the `python -m stcnn.repro ... --cells=<key>` that reruns it,
                 "train": the plain `python -m stcnn.main ...` that trains it}
  test          the test split's metrics: clip_hit@1, video_hit@1, video_hit@5, mean_ap,
                mean_class_accuracy, per_class_ap [C] (null: no positive), confusion [C][C]
                (rows = first label; up to 100 classes), top_confusions [{true, pred, count,
                siblings}], look_accuracy, motion_accuracy, motion_chance (synthetic data),
                group_mean_ap {group: AP} (when a class tree is known), num_videos,
                num_clips, step
  protocol      the evaluator's protocol (clips, views, num_videos, data fingerprint, ...)
  curve         [{step, val_video_hit@1, train_loss}] at each validation (metrics.jsonl)
  train         {steps, resumed_from_step, clips_per_sec (mean of the logged intervals)}
  class_names, siblings (motion sibling groups, synthetic data), groups {group: [leaf ids]},
  workdir
  wall_time_s   this session's seconds (training + test pass); machine {platform, python,
                cpu_count, jax, backend, devices, host}; date (UTC, ISO 8601)
  speed cell:   rows {network: stcnn.bench.time_model row}, instead of test/curve/train
`<key>.npz`: conv1_<stream> first-layer kernels (tower, fovea, context) of every training cell;
for the CNN average's members (single, early, late, slow) also video_probs (V, C) float32, labels
(V, C) bool, first_labels (V,), video_ids (V,), clip_probs (V·clips, C) float16 (view-averaged;
empty when too large), clip_video (V·clips,), camera (V,) ('static' | 'pan' | 'zoom', synthetic).
"""
