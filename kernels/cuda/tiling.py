"""The block tile shapes of mainloop.cuh (its Tile128x128, Tile64x64, Tile32x128), and which one a problem gets.

A 128×128 tile does the most arithmetic per byte staged, but a problem with few of them leaves
multiprocessors idle, and one with few rows (10 output channels) wastes most of it; those get a smaller
tile. Thin and odd shapes are predicated inside the tile, never padded in memory.
"""
from dataclasses import dataclass

MAX_GRID_YZ = 65535  # CUDA's limit on a grid's y and z
# int indexes what stays below this; the 2^24 of headroom keeps a loop's last step (one grid of fewer than
# 2^24 threads, or one BK of k) from overflowing
INDEX_LIMIT = 2**31 - 2**24


@dataclass(frozen=True)
class Tiling:
    name: str     # the struct in mainloop.cuh, the template argument of every tiled kernel
    rows: int     # BM
    columns: int  # BN
    depth: int    # BK: the k of one step of the mainloop
    threads: int

    def grid(self, m, n, count, op="gemm", depth=0):
        """Blocks along (columns, rows, count) for an m×n product (of depth K = `depth`), `count` times; a
        ValueError naming `op` if a size passes the kernels' 32-bit indices or the grid's limits."""
        grid = (-(-n // self.columns), -(-m // self.rows), count)
        if max(m, n, depth) > INDEX_LIMIT or grid[1] > MAX_GRID_YZ or count > MAX_GRID_YZ:
            raise ValueError(f"{op}: an {m}×{n} product of depth {depth}, {count} times, needs more than the "
                             f"cuda kernels' 32-bit indices or a grid of {MAX_GRID_YZ} row tiles of {self.rows}")
        return grid

    def blocks(self, m, n):
        return -(-n // self.columns) * -(-m // self.rows)


LARGE = Tiling("Tile128x128", 128, 128, 8, 256)
SMALL = Tiling("Tile64x64", 64, 64, 8, 64)
THIN = Tiling("Tile32x128", 32, 128, 8, 64)
TILINGS = (LARGE, SMALL, THIN)


def choose(device, m, n, count=1):
    """The tile for `count` m×n products: THIN for at most 32 rows; LARGE when the product spans more than
    a SMALL tile both ways (less and a LARGE tile would be mostly idle threads) and LARGE's tiles give every
    multiprocessor a block; else SMALL."""
    if m <= THIN.rows:
        return THIN
    spans = m > SMALL.rows and n > SMALL.columns
    return LARGE if spans and LARGE.blocks(m, n) * count >= device.multiprocessors else SMALL
