"""nccl-tests ``all_reduce_perf`` output parser (clusters/perfmodel/nccl.py)."""

from pathlib import Path

import pytest

from clusters.perfmodel.nccl import (
    NcclParseError,
    parse_all_reduce_perf,
    parse_avg_bus_bandwidth,
    parse_ranks,
)

DATA = Path(__file__).parent / "data"
CURRENT = (DATA / "nccl_all_reduce_perf_2x8_h100.txt").read_text()
LEGACY = (DATA / "nccl_all_reduce_perf_legacy.txt").read_text()


def test_current_format_every_size_with_both_placements():
    rows = parse_all_reduce_perf(CURRENT)
    assert len(rows) == 31
    assert [r.size_bytes for r in rows] == [8 * 2**i for i in range(31)]
    first, last = rows[0], rows[-1]
    assert (first.count, first.dtype, first.redop, first.root) == (2, "float", "sum", -1)
    assert first.time_us == pytest.approx(51.32)
    assert first.in_place is not None
    assert first.in_place.time_us == pytest.approx(50.87)
    assert last.size_bytes == 8589934592
    assert (last.time_us, last.algbw_gbps, last.busbw_gbps) == (294187.0, 29.20, 54.75)
    assert last.in_place is not None
    assert (last.in_place.time_us, last.in_place.busbw_gbps) == (294120.0, 54.76)
    assert last.out_of_place.wrong == 0


def test_bus_bandwidth_is_the_all_reduce_factor_times_algbw():
    """Consistency of the sample itself: busbw = algbw·2(n−1)/n with n = 16 ranks, and
    algbw = size/time; the parser returns the printed figures unchanged."""
    for r in parse_all_reduce_perf(CURRENT)[12:]:
        assert r.busbw_gbps == pytest.approx(r.algbw_gbps * 2 * 15 / 16, rel=0.01)
        assert r.algbw_gbps == pytest.approx(r.size_bytes / r.time_us / 1e3, rel=0.01)


def test_legacy_format_without_root_and_with_float_error():
    rows = parse_all_reduce_perf(LEGACY)
    assert [r.size_bytes for r in rows] == [1048576 * 4**i for i in range(5)]
    assert all(r.root is None for r in rows)
    assert rows[0].out_of_place.wrong == pytest.approx(5e-7)
    assert rows[-1].busbw_gbps == pytest.approx(271.68)


def test_nccl_info_lines_after_the_header_are_skipped():
    header, _, body = CURRENT.partition("           8 ")
    chatter = "node-a01:6899:6913 [0] NCCL INFO comm 0x55 rank 0 nranks 16 - Init COMPLETE\n"
    rows = parse_all_reduce_perf(header + chatter + "           8 " + body)
    assert len(rows) == 31


def test_validation_off_reads_na_as_none_and_out_of_place_only_lines_parse():
    text = (
        "#       size         count      type   redop    root     time   algbw   busbw #wrong\n"
        "     1048576        262144     float     sum      -1    90.10   11.64   20.37    N/A\n"
    )
    (row,) = parse_all_reduce_perf(text)
    assert row.out_of_place.wrong is None
    assert row.in_place is None
    assert row.as_dict()["in_place"] is None


def test_average_bus_bandwidth_footer():
    assert parse_avg_bus_bandwidth(CURRENT) == pytest.approx(20.3012)
    assert parse_avg_bus_bandwidth("no footer") is None


H = "#  size  count  type  redop  root  time  algbw  busbw  #wrong\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello\nworld\n", "no all_reduce_perf result header"),
        (
            H + "# Avg bus bandwidth : 0\n",
            "no data line",
        ),
        (
            H + "8 2 float sum -1 1.0 0.0\n",
            "expected 13 columns",
        ),
        (
            H + "8 2 float sum -1 x 0 0 0\n",
            "'x' is not a number",
        ),
        (
            H + "8 2 float sum -1 nan 0 0 0\n",
            "finite",
        ),
    ],
)
def test_malformed_input_is_refused_with_the_line(text, message):
    with pytest.raises(NcclParseError, match=message):
        parse_all_reduce_perf(text)


def test_ranks_are_read_from_the_device_list_of_either_layout():
    assert parse_ranks(CURRENT) == 16
    assert parse_ranks(LEGACY) == 2
    # Concatenated runs of the same ranks count them once; no preamble, no ranks known.
    assert parse_ranks(CURRENT + CURRENT) == 16
    assert parse_ranks(H) == 0
