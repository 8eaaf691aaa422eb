"""Labelled crossing clips with exact truth by construction, for measuring people counting.

Walkers are cut from real footage (``hil/media/vtest.avi``) and composited onto empty
scenes along paths whose crossings of the counting line are known exactly; see
``docs/vision.md`` ("Ground truth") and ``python -m vision.groundtruth --help``.
"""
