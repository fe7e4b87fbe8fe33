import numpy as np
import pytest
from minari import MinariDataset

from metatoken.data import minari_io
from metatoken.data.collect import reference_data
from metatoken.errors import UserError


def test_round_trip_keeps_everything(tmp_path, grid_dataset):
    minari_io.save(grid_dataset, tmp_path / "ds")
    back = minari_io.load(tmp_path / "ds")
    assert len(back) == len(grid_dataset) and back.total_steps == grid_dataset.total_steps
    for a, b in zip(grid_dataset.episodes, back.episodes):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
        np.testing.assert_array_equal(a.intended, b.intended)
        np.testing.assert_array_equal(a.exploit, b.exploit)
        assert a.behaviour == b.behaviour and a.seed == b.seed


def test_minari_itself_reads_our_dataset(tmp_path, grid_dataset):
    minari_io.save(grid_dataset, tmp_path / "ds")
    ds = MinariDataset(tmp_path / "ds" / "data")
    assert ds.total_episodes == len(grid_dataset)
    assert ds.total_steps == grid_dataset.total_steps
    first = next(ds.iterate_episodes())
    assert len(first.observations) == len(first.rewards) + 1


def test_reference_data_is_seeded_and_cached(tmp_path, grid_task):
    a = reference_data(grid_task, tmp_path / "a")
    b = reference_data(grid_task, tmp_path / "b")
    np.testing.assert_array_equal(a.returns(), b.returns())
    assert {e.behaviour for e in a.episodes} == {b.name for b in grid_task.behaviours}
    # mixed quality: the data spans poor to complete walks
    assert a.returns().min() < 0.3 and a.returns().max() == pytest.approx(1.0)


def test_missing_and_corrupt_datasets_are_user_errors(tmp_path, grid_dataset):
    with pytest.raises(UserError, match="not a Minari dataset"):
        minari_io.load(tmp_path / "nothing")
    minari_io.save(grid_dataset, tmp_path / "ds")
    (tmp_path / "ds" / "data" / "main_data.hdf5").write_bytes(b"garbage")
    with pytest.raises(UserError, match="corrupt Minari dataset"):
        minari_io.load(tmp_path / "ds")
