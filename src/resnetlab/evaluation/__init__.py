"""Testing, apart from training: the paper's protocols and the counts they produce.

- ``counts``: ``EvalCounts`` (images, top-1/top-5 wrong, summed loss): counts, not rates, so the
  shards of a distributed evaluation add up exactly; ``error_counts`` for the single-view path
- ``views``: the views of each protocol (1-crop, 10-crop, multi-scale; Sec. 3.4) and ensembles
- ``protocols``: choosing the protocol for a checkpoint and counting errors over batches
- ``report``: ``evaluate_checkpoints``, what ``resnetlab eval`` runs
- ``protocol_names``: the names alone, without torch (for ``--help``)
- ``detection``: PASCAL VOC and COCO AP of a detector; ``boxes``: the box overlaps they use

Training (``engine/``), ``resnetlab eval`` and detection use these. Nothing is imported here, so
the command line can import ``protocol_names`` without loading torch.
"""
