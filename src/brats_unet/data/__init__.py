"""Stage 1, the data: finding subjects, checking them, the QC table, the split, synthetic cases.

- ``subjects``: finding BraTS subjects and their five files in a data folder.
- ``validation``: reading one subject's files and checking them before anything is computed.
- ``qc``: the quality-control table, every subject found, included or excluded, and why.
- ``split``: the patient-level train / validation / test split.
- ``synthetic``: synthetic BraTS 2020-format cases, the embedded default and the tests' data
  (``anatomy``: the brain, tumour and contrasts; ``generate``: the cases and their files).
"""
