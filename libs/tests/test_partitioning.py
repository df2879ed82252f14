"""smartcity.partitioning against aiokafka's partitioner, the general path: the same partition
for every key, so every producer still places records where Kafka's default would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcity.partitioning import KeyPartitioner, murmur2


@settings(max_examples=2000, deadline=None)
@given(data=st.one_of(st.binary(max_size=80), st.binary(min_size=200, max_size=400),
                      st.text(max_size=60).map(str.encode)))
def test_murmur2_is_kafkas(data: bytes) -> None:
    assert murmur2(data) == aiokafka_murmur2(data)


def test_murmur2_of_every_tail_length_and_known_values() -> None:
    # Each length 0..16 (every tail of 0-3 bytes after 0-4 words), bytes with the high bit set.
    for length in range(17):
        data = bytes((0x80 + 37 * i) % 256 for i in range(length))
        assert murmur2(data) == aiokafka_murmur2(data), length
    assert murmur2(b"") == 275646681  # what aiokafka answers for no bytes


@settings(max_examples=500, deadline=None)
@given(key=st.one_of(st.none(), st.binary(max_size=48)), partitions=st.integers(1, 64),
       down=st.sets(st.integers(0, 63)))
def test_a_key_goes_to_the_partition_aiokafka_would_choose(
        key: bytes | None, partitions: int, down: set[int]) -> None:
    all_partitions = list(range(partitions))
    available = [p for p in all_partitions if p not in down]
    chosen = KeyPartitioner()(key, all_partitions, available)
    if key is None:
        assert chosen in (available or all_partitions)
    else:
        assert chosen == DefaultPartitioner()(key, all_partitions, available)
