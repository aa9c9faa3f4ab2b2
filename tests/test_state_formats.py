"""Saving optcompat's optimizer in a format whose files the host cannot resume an optimizer
from warns at save time, naming what keeps the state -- exactly where the host is measured to
drop it (tests/deviations.py's ("save", FORMAT) records, which test_save_resume checks still
reproduce with the host's own Adam), and nowhere else."""
import warnings

import pytest

from deviations import match
from optcompat import _detect
from support import applies
from support import data
from test_save_resume import FULL_MODEL


def test_the_warning_table_is_the_measured_one(host):
    measured = {fmt for fmt in FULL_MODEL if fmt in host.formats and match(("save", fmt), host.family, host.versions)}
    assert set(_detect.formats_dropping_state(host.family)) == measured


def saves_a_model_in(facts, params):
    return params["fmt"] in facts.formats


@applies(saves_a_model_in)
@pytest.mark.parametrize("fmt", FULL_MODEL)
def test_saving_warns_where_the_state_is_dropped(host, fmt, tmp_path):
    model = host.dense_model()
    model.compile(optimizer=host.make("AdamW", learning_rate=0.01, weight_decay=0.01), loss="mse")
    model.train_on_batch(*[a[:8] for a in data()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        host.save(model, fmt, str(tmp_path / "saved"))
    ours = [str(w.message) for w in caught if "keeps no optimizer state" in str(w.message)]
    if fmt in _detect.formats_dropping_state(host.family):
        assert ours, "no warning saving as %s" % fmt
        assert "optcompat.state.save" in ours[0] and "AdamW" in ours[0]
    else:
        assert not ours, ours
