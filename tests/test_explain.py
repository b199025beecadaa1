"""`ninx explain`: each topic's table, computed from real modules, holds the numbers the notes claim — the
bottleneck's 120,422,400 against 12,443,648 MACs, the separable ratio 1/N + 1/k², the 1×1 identity — and
--plot writes a PNG. Called through `add_parser`/`run` on parsed arguments, as the CLI will."""
import argparse

import pytest

from ninx import explain


def parse(*argv):
    parser = argparse.ArgumentParser(prog="ninx")
    explain.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["explain", *argv])


def test_bottleneck_defaults_are_the_notes_example(capsys):
    table = explain.run(parse("bottleneck"))
    assert [row[2] for row in table.rows] == [120_422_400, 12_443_648]
    assert [row[1] for row in table.rows] == [192 * 32 * 25 + 32, 192 * 16 + 16 + 16 * 32 * 25 + 32]
    out = capsys.readouterr().out
    assert "120,422,400" in out and "12,443,648" in out


def test_bottleneck_follows_its_arguments():
    table = explain.run(parse("bottleneck", "--in-channels", "8", "--size", "6", "--out-channels", "4", "--kernel",
                              "3", "--reduce", "2"))
    assert [row[2] for row in table.rows] == [36 * 4 * 8 * 9, 36 * 2 * 8 + 36 * 4 * 2 * 9]


def test_1x1_is_a_per_pixel_linear_layer(capsys):
    table = explain.run(parse("1x1", "--in-channels", "6", "--out-channels", "3", "--size", "4"))
    assert table.rows[0][1:3] == table.rows[1][1:3] == [6 * 3 + 3, 16 * 6 * 3]
    difference = float(capsys.readouterr().out.rsplit("input: ", 1)[1])
    assert difference < 1e-5


def test_depthwise_ratio_is_one_over_n_plus_one_over_k_squared():
    table = explain.run(parse("depthwise", "--channels", "16", "--out-channels", "32", "--kernel", "5", "--size",
                              "10"))
    assert table.rows[0][2] == 100 * 32 * 16 * 25 and table.rows[1][2] == 100 * 16 * 25 + 100 * 16 * 32
    assert table.rows[1][3] == pytest.approx(1 / 32 + 1 / 25)


def test_gap_head_against_vggs_fully_connected_head():
    table = explain.run(parse("gap"))
    assert table.rows[0][1] == 25088 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000
    assert table.rows[1][1] == table.rows[2][1] == 512 * 1000 + 1000
    assert "89%" in table.notes[0] and "14,714,688" in table.notes[0]


def test_inverted_residual_lists_expand_depthwise_and_project(capsys):
    table = explain.run(parse("inverted-residual", "--channels", "8", "--expansion", "4", "--size", "5"))
    macs = [row[3] for row in table.rows if "Conv2d" in row[0]]
    assert macs == [25 * 32 * 8, 25 * 32 * 9, 25 * 8 * 32] and table.rows[-1][3] == sum(macs)


def test_scaling_measures_the_scaled_networks_and_plots(tmp_path):
    path = tmp_path / "scaling.png"
    table = explain.run(parse("scaling", "--phi", "0", "--plot", str(path)))
    assert len(table.rows) == 8 and table.rows[0][6] == 5_288_548 and table.rows[1][6] == ""
    assert table.rows[7][5] == pytest.approx((1.2 * 1.1 ** 2 * 1.15 ** 2) ** 7)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_a_comparison(tmp_path):
    path = tmp_path / "bottleneck.png"
    explain.run(parse("bottleneck", "--plot", str(path)))
    assert path.stat().st_size > 1000
