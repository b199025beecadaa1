"""Results: one row per measured kernel, written out as a terminal table, JSON, Markdown and a roofline PNG.

A row holds the work (flops) and the compulsory memory traffic (bytes, each operand read or written once)
of one call, ninx's timing and its reference's (numpy.matmul or PyTorch), and the speed ratio ninx/reference
(above 1: ninx is faster). Every GFLOP/s is also given as a fraction of the roof: the smaller of the
measured FMA peak and bandwidth × arithmetic intensity.
"""
import json
import os

from ninx.atomic import atomic_open
from ninx.summary import format_bytes

from .machine import machine_slug


def _entry(timing, flops, items):
    entry = timing.as_dict() if hasattr(timing, "as_dict") else dict(timing)
    entry["gflops"] = flops / entry["median_s"] / 1e9 if flops else None
    if items:
        entry["images_per_s"] = items / entry["median_s"]
    return entry


def make_row(section, name, shape, direction, dtype, flops, traffic, timings, items=None):
    """A result row from {implementation: Timing or its as_dict()}; 'ninx' is ours, another key the reference.

    `items` is the number of images one call processes (the training step), to report images/s."""
    ours = timings.get("ninx")
    ref_name = next((k for k in timings if k != "ninx"), None)
    ref = timings.get(ref_name)
    row = {
        "section": section, "name": name, "shape": shape, "pass": direction, "dtype": dtype,
        "flops": flops, "bytes": traffic, "intensity": flops / traffic if flops and traffic else None,
        "ninx": _entry(ours, flops, items) if ours else None,
        "reference": {"name": ref_name, **_entry(ref, flops, items)} if ref else None,
    }
    row["speed_ratio"] = row["reference"]["median_s"] / row["ninx"]["median_s"] if ours and ref else None
    return row


def attainable(roof, dtype, intensity):
    """GFLOP/s the roof allows at `intensity` FLOP/byte: min(peak, bandwidth × intensity)."""
    peak = roof["peak"][dtype]["gflops"]
    return min(peak, roof["copy"]["gbytes_per_s"] * intensity) if intensity else peak


def add_roof_fractions(rows, roof):
    """Set entry['roof_fraction'] = GFLOP/s ÷ attainable GFLOP/s on every timed entry of `rows`."""
    for row in rows:
        for entry in (row["ninx"], row["reference"]):
            if entry and entry["gflops"]:
                entry["roof_fraction"] = entry["gflops"] / attainable(roof, row["dtype"], row["intensity"])


# ---- text tables ------------------------------------------------------------------------------------
HEADER = ("section", "op", "shape", "pass", "dtype", "ninx ms", "GFLOP/s", "% roof", "ref", "ref ms",
          "ref GFLOP/s", "ninx/ref")


def _fmt(value, spec):
    return "—" if value is None else format(value, spec)


def _ms(seconds):
    """Milliseconds to 3 significant digits, never in exponent form."""
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}"


def _cells(row):
    ours, ref = row["ninx"] or {}, row["reference"] or {}
    fraction = ours.get("roof_fraction")
    return (row["section"], row["name"], row["shape"], row["pass"], row["dtype"],
            _ms(ours.get("median_s")), _fmt(ours.get("gflops"), ".1f"),
            _fmt(fraction and 100 * fraction, ".0f"), ref.get("name", "—"),
            _ms(ref.get("median_s")), _fmt(ref.get("gflops"), ".1f"),
            _fmt(row["speed_ratio"], ".2f"))


def _blas_line(pool, label):
    return (f"numpy.matmul{label}: {pool['internal_api']} {pool['version']}, kernel {pool['architecture']}, "
            f"{pool['num_threads']} threads ({pool['threading_layer']})")


def target_line(machine):
    """The CPU, the target ninx compiled for and its GEMM tile, as one sentence."""
    gemm = machine["gemm"]
    target = gemm["target"]
    fma = "FMA" if target["fma"] else "no FMA"
    blocks = "; ".join(f"{d} kc {b['kc']}, mc {b['mc']}, nc {b['nc']}" for d, b in gemm["blocking"].items())
    return (f"{machine['cpu_model']} ({machine['microarchitecture']}, {machine['cores']} cores); ninx target "
            f"`{target['cpu_name']}`: {target['vector_bytes']}-byte vectors, {target['vector_registers']} "
            f"registers, {fma}; GEMM tile {gemm['tile_vectors']} vectors (float32 {gemm['tile']['float32']}, "
            f"float64 {gemm['tile']['float64']}); blocks {blocks}")


def _summary_lines(results):
    """The machine and target, the roof, the BLAS and the training step's images/s, as short sentences."""
    roof, lines = results.get("roof"), [target_line(results["machine"])]
    if roof:
        peaks = ", ".join(f"{d} {p['gflops']:.1f} GFLOP/s" for d, p in roof["peak"].items())
        asm = "; ".join(f"{d}: {', '.join(p['asm'])}" for d, p in roof["peak"].items())
        lines.append(f"roof ({results['config']['threads']} threads): FMA peak {peaks} ({asm}); "
                     f"copy {roof['copy']['gbytes_per_s']:.1f} GB/s")
    forced = bool(results.get("blas_own"))
    for pool in results.get("blas") or ():
        lines.append(_blas_line(pool, "") + (", OPENBLAS_CORETYPE forced to the target's kernel" if forced
                                             else ", OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"))
    for pool in results.get("blas_own") or ():
        lines.append(_blas_line(pool, " (own kernel, column 'own')") + ", OPENBLAS_CORETYPE unset")
    gemm = next((row for row in results["rows"] if row["section"] == "gemm"), None)
    if gemm and "round_medians" in gemm["ninx"]:
        lines.append(f"gemm: each side in {len(gemm['ninx']['round_medians'])} alternating child processes; "
                     "a ratio is the median of the per-round ratios, GFLOP/s the median of all calls")
    for row in results["rows"]:
        if row["section"] == "train":
            parts = [f"{e.get('name', 'ninx')} {e['images_per_s']:.1f} images/s"
                     for e in (row["ninx"], row["reference"]) if e]
            memory = row.get("memory")
            if memory:
                parts.append(f"ninx's peak memory {format_bytes(memory['peak_bytes'])} = {memory['ratio']:.2f}× the "
                             f"{format_bytes(memory['needed_bytes'])} that weights, gradients and activations need")
            lines.append(f"training step {row['shape']}: " + ", ".join(parts))
    return lines


def terminal_table(results):
    """The rows as an aligned plain-text table, with the roof and the training step above it."""
    table = [HEADER] + [_cells(r) for r in results["rows"]]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(_summary_lines(results) + [""] + text)


def markdown(results):
    """The results as Markdown: the machine, the roof, and one table of all rows."""
    m = results["machine"]
    lines = [f"# ninx benchmarks — {m['date']}, {m['cpu_model']} ({m['microarchitecture']}, {m['cores']} cores), "
             f"target `{m['gemm']['target']['cpu_name']}`", "",
             f"threads {results['config']['threads']}; numba {m['versions']['numba']} targeting "
             f"`{m['numba_cpu_name']}`; numpy {m['versions']['numpy']}; torch {m['versions']['torch']}", ""]
    lines += [f"- {line}" for line in _summary_lines(results)] + [""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in results["rows"]]
    own = [r for r in results["rows"] if "reference_own" in r]
    if own:
        lines += ["", "GEMM against both OpenBLAS kernels (GFLOP/s, median):", "",
                  "| op | dtype | ninx | OpenBLAS, target's kernel | ratio | OpenBLAS, own kernel | ratio |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['dtype']} | {r['ninx']['gflops']:.1f} | {r['reference']['gflops']:.1f} | "
                  f"{r['speed_ratio']:.2f} | {r['reference_own']['gflops']:.1f} | {r['speed_ratio_own']:.2f} |"
                  for r in own]
    return "\n".join(lines) + "\n"


def _free_stem(out_dir, stem):
    """stem, or stem-2, stem-3, … : the first whose files do not exist yet, so that no earlier run's results
    are overwritten (two runs of one day on one machine)."""
    candidates = (stem if i == 1 else f"{stem}-{i}" for i in range(1, 10_000))
    return next(c for c in candidates
                if not any(os.path.exists(os.path.join(out_dir, f"{c}.{ext}")) for ext in ("json", "md", "png")))


def write(results, out_dir):
    """Write <date>_<machine>[-quick][-k].json/.md/.png under out_dir, each atomically and never over an
    earlier run's files (`_free_stem`); return the paths."""
    os.makedirs(out_dir, exist_ok=True)
    m = results["machine"]
    gpu = results.get("gpu")
    device = "_" + "-".join(gpu["name"].lower().replace("(", "").replace(")", "").split()) if gpu else ""
    stem = _free_stem(out_dir, f"{m['date'][:10]}_{machine_slug(m)}{device}" +
                      ("-quick" if results["config"]["quick"] else ""))
    paths = {ext: os.path.join(out_dir, f"{stem}.{ext}") for ext in ("json", "md", "png")}
    with atomic_open(paths["json"], "w") as f:
        json.dump(results, f, indent=1)
    with atomic_open(paths["md"], "w") as f:
        f.write(markdown(results))
    if results.get("roof"):
        from .roofline import roofline_png
        with atomic_open(paths["png"], "wb") as f:
            roofline_png(results, f)
    else:
        del paths["png"]
    return paths
