"""The report's longitudinal section from results/longitudinal.csv-like tables."""

import pandas as pd

from brats_unet.evaluation.longitudinal import CHANGE_REGIONS, change_table
from brats_unet.reporting.longitudinal_section import longitudinal_section


def _table():
    volumes = pd.DataFrame([
        {"model": "unet3d", "subject": s, "region": r, "volume_pred_ml": v * (i + 1),
         "volume_true_ml": v * (i + 1)}
        for s, v in (("A0", 10.0), ("A1", 30.0)) for i, r in enumerate(CHANGE_REGIONS)])
    rules = pd.DataFrame([{"model": "unet3d", "region": r, "nonconformity": "absolute",
                           "quantile": 1.0, "n_cases": 30, "coverage": 0.95, "floor_ml": 1.0}
                          for r in CHANGE_REGIONS])
    pairs = pd.DataFrame([{"patient": "A", "baseline": "A0", "follow_up": "A1"},
                          {"patient": "B", "baseline": "B0", "follow_up": "B1"}])
    return change_table(pairs, volumes, rules)


def test_section_shows_calls_coverage_and_the_missing_pair(tmp_path):
    html = "\n".join(longitudinal_section(_table(), tmp_path))
    assert "<b>progression</b>" in html and "Not measured: unet3d B" in html
    assert "the change interval holds the true change in 4 of 4" in html
    assert (tmp_path / "longitudinal_change.png").exists()


def test_section_with_nothing_measured_says_so(tmp_path):
    table = _table()
    html = "\n".join(longitudinal_section(table[table["patient"] == "B"], tmp_path))
    assert "Not measured" in html and "<table>" not in html
    assert "No pairs" in "\n".join(longitudinal_section(table.iloc[0:0], tmp_path))
