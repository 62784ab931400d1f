"""The compiled CAT timestamp layout against timetext's numpy layout (cat_timestamp_reference)."""
import numpy as np
from hypothesis import given, settings, strategies as st

from reports import timetext

NS_PER_DAY = 86_400 * 10**9


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-(2**62), 2**62), max_size=50), st.integers(0, 2**32 - 1))
def test_compiled_cat_timestamps_equal_the_numpy_layout(extreme, seed):
    rng = np.random.default_rng(seed)
    near = 1_772_461_800 * 10**9 + rng.integers(-400 * NS_PER_DAY, 400 * NS_PER_DAY, 200)   # around 2026
    # a journal's times in order, mostly within a day (the kernel lays out each day's date once)
    day = np.sort(1_772_461_800 * 10**9 + rng.integers(-2 * NS_PER_DAY, 2 * NS_PER_DAY, 300))
    ns = np.concatenate([near, day, np.array(extreme, np.int64),
                         np.array([0, -1, NS_PER_DAY - 1, -NS_PER_DAY, 951_782_400 * 10**9], np.int64)])
    valid = rng.random(len(ns)) < 0.8
    for mask in (None, valid):
        got = timetext.cat_timestamp(ns, mask)
        want = timetext.cat_timestamp_reference(ns, mask)
        assert got.equals(want)
    assert timetext.cat_timestamp(np.zeros(0, np.int64)).to_pylist() == []


def test_a_known_cat_timestamp():
    # 2026-03-02 14:30:00.000000123 UTC is 09:30 Eastern (EST, -5 h)
    assert timetext.cat_timestamp(np.array([1_772_461_800 * 10**9 + 123])).to_pylist() == ["20260302 093000.000000123"]
