"""Bounded capture: line splitting with a line limit, the output tail, the capped log."""

from __future__ import annotations

from pathlib import Path

from taskorch.executors.output import CappedLog, LineSplitter, OutputTail


def test_lines_split_across_chunks_come_out_whole() -> None:
    splitter = LineSplitter(max_line=100)
    assert splitter.feed(b"one\ntw") == [(b"one", False)]
    assert splitter.feed(b"o\n\nthr") == [(b"two", False), (b"", False)]
    assert splitter.feed(b"ee") == []
    assert splitter.flush() == (b"three", False)
    assert splitter.flush() is None


def test_a_line_longer_than_the_limit_is_cut_and_its_rest_dropped() -> None:
    splitter = LineSplitter(max_line=8)
    assert splitter.feed(b"0123456789") == []
    assert splitter.feed(b"abcdef" * 1000) == []
    assert splitter.feed(b"xyz\nnext\n") == [(b"01234567", True), (b"next", False)]


def test_a_cut_line_within_one_chunk_is_marked() -> None:
    assert LineSplitter(max_line=4).feed(b"abcdefgh\nok\n") == [(b"abcd", True), (b"ok", False)]


def test_the_tail_keeps_the_last_bytes_and_says_when_it_dropped_some() -> None:
    tail = OutputTail(limit=10)
    tail.add(b"hello ")
    assert (tail.text(), tail.truncated) == ("hello ", False)
    for _ in range(100):
        tail.add(b"0123456789")
    tail.add(b"END")
    assert tail.text() == "3456789END"
    assert tail.truncated
    assert tail.total == 6 + 1000 + 3


def test_the_tail_decodes_a_cut_character_as_a_replacement() -> None:
    tail = OutputTail(limit=3)
    tail.add("é".encode() * 2)  # 4 bytes: the first byte of the tail is half a character
    assert tail.text() == "\ufffdé"


def test_the_log_stops_at_its_cap_with_a_note(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "logs" / "run.log", max_bytes=10)
    log.write(b"12345")
    log.write(b"6789abcdef")
    log.write(b"more")
    log.close()
    assert log.truncated
    assert (tmp_path / "logs" / "run.log").read_bytes() == b"123456789a\n[taskorch: log cut at 10 bytes]\n"


def test_each_write_is_on_disk_before_the_log_is_closed(tmp_path: Path) -> None:
    # A follower (`taskorch tasks logs --follow`) reads the file while the run writes it.
    log = CappedLog(tmp_path / "run.log", max_bytes=1 << 20)
    log.write(b"first line\n")
    assert (tmp_path / "run.log").read_bytes() == b"first line\n"
    log.write(b"second\n")
    assert (tmp_path / "run.log").read_bytes() == b"first line\nsecond\n"
    log.close()


def test_a_zero_cap_writes_no_log(tmp_path: Path) -> None:
    log = CappedLog(tmp_path / "run.log", max_bytes=0)
    log.write(b"data")
    log.close()
    assert log.path is None
    assert not (tmp_path / "run.log").exists()
