"""Definitions and sizes read only where a stamp says they may have changed; the decision, without a server."""

from pgradar.agent.collect.collectors import following_change, to_read_again


def test_new_changed_and_unstamped_relations_are_read_the_rest_kept() -> None:
    known: dict[int, tuple[str | None, int | None]] = {1: ("a", 100), 2: ("b", 200), 3: (None, 300)}
    assert to_read_again({1: "a", 2: "b2", 3: None, 4: "d"}, known) == [2, 3, 4]


def test_sizes_come_from_the_cache_where_nothing_changed_and_dropped_relations_leave() -> None:
    known: dict[int, tuple[str | None, int | None]] = {1: ("a", 100), 2: ("b", 200), 9: ("z", 1)}
    asked: list[list[int]] = []

    def read(oids: list[int]) -> list[tuple[int, int | None]]:
        asked.append(oids)
        return [(oid, oid * 1000) for oid in oids if oid != 5]  # 5 is dropped between the two reads

    sizes = following_change(known, {1: "a", 2: "b2", 5: "e"}, read)
    assert asked == [[2, 5]]
    assert sizes == {1: 100, 2: 2000}
    assert known == {1: ("a", 100), 2: ("b2", 2000)}  # 9 is gone, 5 was never read


def test_nothing_changed_reads_nothing() -> None:
    known: dict[int, tuple[str | None, int | None]] = {1: ("a", 100)}

    def read(oids: list[int]) -> list[tuple[int, int | None]]:
        raise AssertionError(f"read {oids}")

    assert following_change(known, {1: "a"}, read) == {1: 100}
