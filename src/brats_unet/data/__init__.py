"""Stage 1, the data: finding subjects, checking them, the QC table, the split, synthetic cases.

- ``datasets``: each BraTS release's and the Decathlon's layout, names and labels; ``auto``.
- ``subjects``: finding subjects and their files in a data folder, in a dataset's layout.
- ``validation``: reading one subject's files and checking them before anything is computed.
- ``qc``: the quality-control table, every subject found, included or excluded, and why.
- ``split``: the patient-level train / validation / test split.
- ``pairs``: the longitudinal pairs table (two scans of one patient to compare).
- ``synthetic``: synthetic BraTS-format cases (any dataset layout), the embedded default and
  the tests' data (``anatomy``: the brain, tumour and contrasts; ``generate``: the cases and
  their files; ``longitudinal``: a patient's second scan, the tumour scaled, the head moved).
"""
