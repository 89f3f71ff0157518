"""Data-parallel ranks split every batch between them: together they train on what one process would."""

import pytest

from models.data import BucketBatchSampler
from models.distributed import BatchShare


@pytest.mark.parametrize("world_size", [2, 3])
def test_the_ranks_shares_of_each_batch_are_disjoint_and_make_up_the_batch(world_size):
    lengths = [(i * 7) % 23 + 1 for i in range(203)]
    single = list(BucketBatchSampler(lengths, batch_size=16, seed=5))
    shares = [
        list(BatchShare(BucketBatchSampler(lengths, 16, seed=5), r, world_size)) for r in range(world_size)
    ]
    assert all(len(share) == len(single) for share in shares)  # every rank takes as many steps
    for step, batch in enumerate(single):
        parts = [share[step] for share in shares]
        if len(batch) >= world_size:
            assert sorted(i for part in parts for i in part) == sorted(batch)
        else:  # a remainder smaller than the world: idle ranks repeat one of its examples
            assert set().union(*map(set, parts)) == set(batch)


def test_a_share_counts_the_steps_of_the_sampler_it_splits():
    assert len(BatchShare(BucketBatchSampler(list(range(1, 101)), 32, seed=0), 1, 2)) == 4
