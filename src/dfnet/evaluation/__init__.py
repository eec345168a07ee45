"""Scoring inpainting methods on an image folder with a fixed mask set, per hole-ratio bin.

The modules, in the order a run uses them:

- :mod:`~dfnet.evaluation.inputs`: :func:`list_images` / :func:`load_mask_set`, the inputs, each sorted by
  relative path; every mask's hole ratio is measured at the evaluation size and assigned a paper bin;
- :mod:`~dfnet.evaluation.plan`: :class:`PairPlan`, which image is completed with which mask (``cycle``,
  ``every-bin`` or ``all``), and :class:`PairDataset`, which loads one pair at the evaluation size;
- :mod:`~dfnet.evaluation.run`: :func:`evaluate` runs a method (:class:`dfnet.baselines.InpaintMethod`) over all
  pairs in batches, accumulates every metric per bin (:mod:`dfnet.metrics`) and writes the reports;
- :mod:`~dfnet.evaluation.report`: :func:`markdown_table` / :func:`read_markdown_table` / :func:`csv_text`, the
  report formats; the Markdown table is laid out like the paper's Table 1 and parses back to the JSON numbers.

See docs/evaluation.md for the definitions and the protocol.
"""

from dfnet.baselines import DFNetMethod
from dfnet.evaluation.inputs import (
    RESIZE_CHOICES,
    EvalResize,
    EvaluationError,
    MaskEntry,
    fit_square,
    list_images,
    load_eval_image,
    load_eval_mask,
    load_mask_set,
    mask_files,
)
from dfnet.evaluation.plan import PAIRINGS, PairDataset, PairPlan, collate_pairs
from dfnet.evaluation.report import (
    COLUMNS,
    COMPARISON_NAME,
    CSV_FIELDS,
    csv_text,
    markdown_table,
    read_markdown_table,
    read_reports,
    write_comparison,
    write_report,
)
from dfnet.evaluation.run import EvalConfig, evaluate, make_method, report_paths, run_method

__all__ = [
    "COMPARISON_NAME",
    "COLUMNS",
    "CSV_FIELDS",
    "PAIRINGS",
    "RESIZE_CHOICES",
    "DFNetMethod",
    "EvalConfig",
    "EvalResize",
    "EvaluationError",
    "MaskEntry",
    "PairDataset",
    "PairPlan",
    "collate_pairs",
    "csv_text",
    "evaluate",
    "fit_square",
    "list_images",
    "load_eval_image",
    "load_eval_mask",
    "load_mask_set",
    "make_method",
    "mask_files",
    "markdown_table",
    "read_markdown_table",
    "read_reports",
    "report_paths",
    "run_method",
    "write_comparison",
    "write_report",
]
