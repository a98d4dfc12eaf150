"""Turn a results file into ``docs/benchmarks.md`` and ``docs/benchmarks.png``."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from .tools import BUILD_TOOLS, LABELS

__all__ = ["summarize", "write_report"]

COMMAND = "python3 -m benchmarks"
COLORS = {"layerbuilder": "#2a9d3f", "pip": "#3b6fb6", "uv": "#e08a1e"}
# Issue 5's targets, for pandas requests pydantic on python3.12 x86_64.
TARGET_VS_UV = 8.0
TARGET_VS_PIP = 25.0
TARGET_RSS_MB = 120.0
TARGET_FLAT = 0.20
TARGET_RESOLVE_S = 1.0


def _mb(kb_or_bytes: float, *, kb: bool = False) -> float:
    return kb_or_bytes / 1024 if kb else kb_or_bytes / 1024 / 1024


def summarize(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(workload, tool) -> median/min/max wall, RSS, CPU, layer sizes over the timed runs."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    failed: dict[tuple[str, str], int] = {}
    for r in doc["runs"]:
        key = (r.get("workload", "?"), r.get("tool", "?"))
        if r.get("warmup"):
            continue
        if not r.get("ok"):
            failed[key] = failed.get(key, 0) + 1
            continue
        groups.setdefault(key, []).append(r)
    for key in set(groups) | set(failed):
        runs = groups.get(key, [])
        entry: dict[str, Any] = {"n": len(runs), "failed": failed.get(key, 0)}
        if runs:
            walls = [r["wall"] for r in runs]
            rss = [r["maxrss_kb"] / 1024 for r in runs]
            entry.update(
                median=statistics.median(walls),
                min=min(walls),
                max=max(walls),
                rss_median=statistics.median(rss),
                rss_max=max(rss),
                cpu_median=statistics.median(r["cpu"] for r in runs),
                requests=statistics.median(r.get("requests", 0) for r in runs),
            )
            steps: dict[str, list[float]] = {}
            step_rss: dict[str, list[float]] = {}
            for r in runs:
                for s in r["steps"]:
                    steps.setdefault(s["name"], []).append(s["wall"])
                    if "maxrss_kb" in s:
                        step_rss.setdefault(s["name"], []).append(s["maxrss_kb"] / 1024)
            entry["steps"] = {k: statistics.median(v) for k, v in steps.items()}
            entry["step_rss"] = {k: statistics.median(v) for k, v in step_rss.items()}
            phases: dict[str, list[float]] = {}
            for r in runs:
                for k, v in (r.get("phases") or {}).items():
                    phases.setdefault(k, []).append(v)
            entry["phases"] = {k: statistics.median(v) for k, v in phases.items()}
            last = runs[-1]
            for k in ("zip_size", "unzipped_size", "entries", "dists", "pyc_size"):
                if k in last:
                    entry[k] = last[k]
        out[key] = entry
    return out


def _fmt_s(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    return f"{value:.1f}"


def _checks(doc: dict[str, Any], summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    head = doc.get("headline", "prp")
    lb = summary.get((head, "layerbuilder"), {})
    rows = ["| check | target | measured | |", "| --- | --- | --- | --- |"]

    def row(check: str, target: str, measured: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {check} | {target} | {measured} | {verdict} |")

    for tool, target in (("uv", TARGET_VS_UV), ("pip", TARGET_VS_PIP)):
        other = summary.get((head, tool), {})
        if "median" in lb and "median" in other:
            ratio = other["median"] / lb["median"]
            measured = f"{_fmt_s(lb['median'])} s vs {_fmt_s(other['median'])} s: 1/{ratio:.1f}"
            row(f"layerbuilder median vs {tool}+zip", f"≤ 1/{target:g}", measured, ratio >= target)
        else:
            row(f"layerbuilder median vs {tool}+zip", f"≤ 1/{target:g}", "not measured", None)
    if "rss_median" in lb:
        row(
            "layerbuilder peak RSS",
            f"< {TARGET_RSS_MB:g} MB",
            f"{lb['rss_median']:.0f} MB median, {lb['rss_max']:.0f} MB max",
            lb["rss_max"] < TARGET_RSS_MB,
        )
    sized = [
        (s["unzipped_size"], w, s)
        for (w, t), s in summary.items()
        if t == "layerbuilder" and "unzipped_size" in s and "rss_median" in s
    ]
    if len(sized) >= 2:
        sized.sort(key=lambda x: x[0])
        (small_size, small_w, small), (big_size, big_w, big) = sized[0], sized[-1]
        growth = big["rss_median"] / small["rss_median"] - 1
        row(
            "peak RSS, largest layer vs smallest",
            f"within {TARGET_FLAT:.0%}",
            f"{big['rss_median']:.0f} MB ({big_w}, {_mb(big_size):.0f} MB unzipped) vs "
            f"{small['rss_median']:.0f} MB ({small_w}, {_mb(small_size):.1f} MB): "
            f"{growth:+.0%}",
            abs(growth) <= TARGET_FLAT,
        )
    res = summary.get((head, "resolve"), {})
    warm = summary.get((head, "resolve-warm"), {})
    if "median" in res:
        measured = f"{_fmt_s(res['median'])} s cold HTTP cache"
        if "median" in warm:
            measured += f", {_fmt_s(warm['median'])} s warm"
        row(
            "`layerbuilder resolve --json` alone (issue 3)",
            "< 1 s",
            measured,
            res["median"] < TARGET_RESOLVE_S,
        )
    return rows


def _dists_note(doc: dict[str, Any], summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    notes = []
    for w in doc["workloads"]:
        found = {t: summary.get((w["key"], t), {}).get("dists") for t in BUILD_TOOLS}
        found = {t: d for t, d in found.items() if d is not None}
        if len({tuple(d) for d in found.values()}) > 1:
            base = found.get("pip") or next(iter(found.values()))
            for t, d in found.items():
                extra, missing = sorted(set(d) - set(base)), sorted(set(base) - set(d))
                if extra or missing:
                    notes.append(
                        f"- {w['label']}: {t} differs from pip: "
                        f"+{', '.join(extra) or '-'} / -{', '.join(missing) or '-'}"
                    )
    return notes


def write_plot(
    doc: dict[str, Any], summary: dict[tuple[str, str], dict[str, Any]], path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = doc["workloads"]
    tools = [t for t in BUILD_TOOLS if any((w["key"], t) in summary for w in workloads)]
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(15, 6.2), gridspec_kw={"width_ratios": [3, 2]})
    width = 0.8 / max(1, len(tools))
    xs = range(len(workloads))
    names = []
    for w in workloads:
        reqs = "\n".join(w["requirements"])
        names.append(reqs + ("\narm64" if w["arch"] != "x86_64" else ""))
    for i, tool in enumerate(tools):
        med, lo, hi, top, rss, pos = [], [], [], [], [], []
        for j, w in enumerate(workloads):
            s = summary.get((w["key"], tool), {})
            if "median" not in s:
                continue
            pos.append(j + (i - (len(tools) - 1) / 2) * width)
            med.append(s["median"])
            lo.append(s["median"] - s["min"])
            hi.append(s["max"] - s["median"])
            top.append(s["max"])
            rss.append(s["rss_median"])
        label = LABELS[tool]
        ax_t.bar(
            pos,
            med,
            width,
            yerr=[lo, hi],
            label=label,
            color=COLORS[tool],
            capsize=2,
            error_kw={"elinewidth": 0.8},
        )
        for x, v, t in zip(pos, med, top):
            ax_t.annotate(
                _fmt_s(v),
                (x, t),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
            )
        bars = ax_m.bar(pos, rss, width, label=label, color=COLORS[tool])
        for b, v in zip(bars, rss):
            ax_m.annotate(
                f"{v:.0f}",
                (b.get_x() + b.get_width() / 2, v),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
            )
    speedups = []
    for w in workloads:
        lb = summary.get((w["key"], "layerbuilder"), {})
        parts = []
        for tool in ("pip", "uv"):
            other = summary.get((w["key"], tool), {})
            if "median" in lb and "median" in other:
                parts.append(f"{tool}: {other['median'] / lb['median']:.1f}x")
        speedups.append("\n" + ", ".join(parts) if parts else "")
    names = [n + sp for n, sp in zip(names, speedups)]
    ax_t.set_yscale("log")
    ax_t.set_ylabel("median wall time, s (log scale; whiskers: min-max)")
    ax_t.set_xlabel(
        "workload; below it: time of pip+zip and uv+zip as a multiple of layerbuilder's",
        fontsize=8.5,
    )
    ax_t.set_title("Build a layer: wall time (lower is better)")
    ax_t.set_xticks(list(xs), names, fontsize=8.5)
    lo_y, hi_y = ax_t.get_ylim()
    ax_t.set_ylim(lo_y, hi_y * 2.5)
    ax_t.legend(loc="upper left", fontsize=8.5)
    ax_t.grid(axis="y", which="major", alpha=0.3)
    ax_m.set_ylabel("peak RSS, MB (median)")
    ax_m.set_title("Peak memory (lower is better)")
    ax_m.set_xticks(list(xs), [n.split("\n" + "pip:")[0] for n in names], fontsize=8.5)
    ax_m.axhline(
        TARGET_RSS_MB,
        color="#2a9d3f",
        ls="--",
        lw=0.9,
        label=f"layerbuilder's target: {TARGET_RSS_MB:g} MB",
    )
    ax_m.set_ylim(0, ax_m.get_ylim()[1] * 1.4)
    ax_m.legend(loc="upper left", fontsize=8.5)
    ax_m.grid(axis="y", alpha=0.3)
    m = doc["machine"]
    fig.suptitle(
        f"layerbuilder vs pip+zip vs uv+zip, local index on loopback, cold caches, "
        f"{doc['repeat']} runs each — {m['cpu']}, {m['cores']} cores, {m['date']}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _phase_table(doc: dict[str, Any], summary: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    rows = [(w, summary.get((w["key"], "layerbuilder"), {})) for w in doc["workloads"]]
    rows = [(w, s) for w, s in rows if s.get("phases")]
    if not rows:
        return []
    names: list[str] = []
    for _, s in rows:
        names += [k for k in s["phases"] if k not in names]
    out = [
        "",
        "Where `layerbuilder build`'s wall time goes, from its own `-v` log (median seconds "
        "per phase; *rest* is start-up, imports and anything between phases). The phases "
        "overlap: wheels download while the resolution goes on and their ELF files are "
        "read as they arrive, so *download* and *verify* are only what is left of them "
        "after the resolution and the zip:",
        "",
        "| workload | " + " | ".join(names) + " | rest | total |",
        "| --- | " + " | ".join("---:" for _ in names) + " | ---: | ---: |",
    ]
    for w, s in rows:
        cells = [_fmt_s(s["phases"][k]) if k in s["phases"] else "" for k in names]
        rest = s["median"] - sum(s["phases"].values())
        out.append(
            f"| {w['label']} | " + " | ".join(cells) + f" | {_fmt_s(rest)} | "
            f"{_fmt_s(s['median'])} |"
        )
    return out


def _load_warning(doc: dict[str, Any]) -> list[str]:
    loads = [r["load_before"] for r in doc["runs"] if "load_before" in r]
    cores = doc["machine"].get("cores") or 1
    if not loads or statistics.median(loads) <= cores + 1:
        return []
    return [
        "",
        f"**Caveat:** the machine was busy with other work during this run (median 1-minute "
        f"load average {statistics.median(loads):.1f} on {cores} cores before each "
        "measurement), so every tool's wall times are longer than on an idle machine. The "
        "runs alternate, so all three were slowed alike; the CPU seconds column is less "
        "affected by the load than wall time.",
    ]


def _load_line(doc: dict[str, Any]) -> list[str]:
    loads = [r["load_before"] for r in doc["runs"] if "load_before" in r]
    if not loads:
        return []
    return [
        f"- 1-minute load average before each measurement: median "
        f"{statistics.median(loads):.2f}, max {max(loads):.2f} (the measured tool and the "
        "index server themselves account for up to about 2 on this machine)"
    ]


def write_report(results: Path, docs: Path) -> None:
    doc = json.loads(results.read_text())
    summary = summarize(doc)
    docs.mkdir(parents=True, exist_ok=True)
    write_plot(doc, summary, docs / "benchmarks.png")
    (docs / "benchmarks.md").write_text(render(doc, summary))
    print(f"benchmarks: wrote {docs / 'benchmarks.md'} and {docs / 'benchmarks.png'}")


def render(doc: dict[str, Any], summary: dict[tuple[str, str], dict[str, Any]]) -> str:
    m = doc["machine"]
    head = next((w for w in doc["workloads"] if w["key"] == doc.get("headline")), None)
    lines = [
        "# Benchmarks",
        "",
        "layerbuilder against what people use today to build a Lambda layer: "
        "`pip install --target … --platform … --only-binary=:all:` then zip, and "
        "`uv pip install --target … --python-platform …` then zip. All three talk to the "
        "same package index served on loopback from a local cache (filled once from the "
        "live index), every run starts with cold caches, and the runs alternate "
        "(layerbuilder, pip, uv, layerbuilder, pip, uv, …) so that drift on the machine "
        "hits all three alike.",
        "",
        f"Measured {m['date']} at commit `{m['commit']}`: {doc['repeat']} timed run(s) of each "
        f"tool on each workload after {doc['warmup']} warm-up round(s).",
        *_load_warning(doc),
        "",
        "![Median wall time and peak RSS per workload and tool](benchmarks.png)",
        "",
    ]
    if head:
        lines += [f"## Issue 5's targets: {head['label']}", ""]
        lines += _checks(doc, summary)
        lines.append("")
    notes = Path(__file__).with_name("analysis.md")
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    lines += [
        "## Wall time and memory",
        "",
        "Seconds of wall time (median, min, max over the timed runs); peak RSS is the "
        "largest resident set of any process the tool started (median over the runs); "
        "CPU is user+system seconds of the tool's processes. pip and uv figures include "
        "the zip step; its share is in the last column.",
        "",
        "| workload | tool | median s | min s | max s | vs layerbuilder | peak RSS MB "
        "| CPU s | zip step s / RSS |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in doc["workloads"]:
        lb = summary.get((w["key"], "layerbuilder"), {})
        for tool in ("layerbuilder", "pip", "uv", "layerbuilder-simple", "resolve", "resolve-warm"):
            s = summary.get((w["key"], tool))
            if s is None:
                continue
            if "median" not in s:
                lines.append(
                    f"| {w['label']} | {LABELS[tool]} | failed ({s['failed']} runs) | | | | | | |"
                )
                continue
            ratio = (
                f"{s['median'] / lb['median']:.1f}x"
                if "median" in lb and tool in ("pip", "uv", "layerbuilder-simple")
                else ""
            )
            zip_s = s["steps"].get("zip")
            zip_rss = s.get("step_rss", {}).get("zip")
            zip_cell = _fmt_s(zip_s) if zip_s is not None else ""
            if zip_rss is not None:
                zip_cell += f" / {zip_rss:.0f} MB"
            lines.append(
                f"| {w['label']} | {LABELS[tool]} | {_fmt_s(s['median'])} | "
                f"{_fmt_s(s['min'])} | {_fmt_s(s['max'])} | {ratio} | "
                f"{s['rss_median']:.0f} | {s['cpu_median']:.1f} | "
                f"{zip_cell} |"
            )
    lines += _phase_table(doc, summary)
    lines += [
        "",
        "## Layers",
        "",
        "Sizes of the zip each tool produced (MB = 2^20 bytes); *files* counts the zip's "
        "file entries, *dists* the distributions (`.dist-info`) in it. pip compiles "
        "`.pyc` files into `--target` by default (as people run it; `--no-compile` would "
        "leave them out), which is why its layers are bigger and its zip step slower.",
        "",
        "| workload | tool | zip MB | unzipped MB | of which .pyc MB | files | dists |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w in doc["workloads"]:
        for tool in BUILD_TOOLS:
            s = summary.get((w["key"], tool), {})
            if "zip_size" not in s:
                continue
            pyc = f"{_mb(s['pyc_size']):.1f}" if "pyc_size" in s else ""
            lines.append(
                f"| {w['label']} | {tool} | {_mb(s['zip_size']):.1f} | "
                f"{_mb(s['unzipped_size']):.1f} | {pyc} | {s['entries']} | {len(s['dists'])} |"
            )
    notes = _dists_note(doc, summary)
    lines += [""]
    if notes:
        lines += ["The tools did not pick the same distributions everywhere:", "", *notes, ""]
    else:
        lines += [
            "All three tools put the same distributions (name and version) in each layer.",
            "",
        ]
    failures = [r for r in doc["runs"] if not r.get("ok")]
    if failures:
        lines += ["## Failed runs", ""]
        for r in failures[:20]:
            err = str(r.get("error", "")).strip().splitlines()
            lines.append(
                f"- {r.get('workload')} {r.get('tool')} round {r.get('round')}: "
                f"`{err[-1] if err else 'unknown'}`"
            )
        lines.append("")
    lines += [
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable)",
        f"- memory: {m['memory_gib']} GiB; {m['os']}, kernel {m['kernel']}",
        f"- Python {m['python']} (the benchmark venv; layerbuilder runs on it)",
        f"- {m['pip']}; {m['uv']}; {m['layerbuilder']} at commit `{m['commit']}`",
        *_load_line(doc),
        "",
        "## How it is measured",
        "",
        "- **Index.** `benchmarks/localindex.py` serves, on 127.0.0.1 only, the JSON API "
        "(`/pypi/<name>/json`, for layerbuilder), the simple API (`/simple/<name>/`, PEP 691 "
        "JSON or PEP 503 HTML, for pip and uv), the files and their PEP 658 `.metadata`, "
        "with ETags and HTTP ranges, from a threaded server in its own process. Every "
        "wheel in the cache has its `.metadata` offered in both APIs, as the live index "
        "does. `python3 -m benchmarks fill` filled the cache by running each tool once "
        "through the server in record mode; runs are offline, and a run that asks for "
        "anything not in the cache fails instead of being timed.",
        "- **layerbuilder**: `layerbuilder build <reqs> --runtime python3.12 --arch <arch> "
        "-o layer.zip --index-url http://127.0.0.1:PORT/pypi --cache-dir <new empty dir>` "
        "(verification on, as by default; with `-v`, whose phase timings give the table "
        "above).",
        "- **pip**: the latest pip in a throwaway venv, `pip install --isolated "
        "--no-cache-dir --target <dir>/python/lib/python3.X/site-packages --only-binary=:all: "
        "--python-version 3.X --implementation cp --abi cp3X --platform <every manylinux "
        "platform of the target> --index-url http://127.0.0.1:PORT/simple <reqs>` with "
        "`PIP_CONFIG_FILE=/dev/null` and no `PIP_*` variables, then the tree zipped with "
        "Python's `zipfile` (deflate, default level).",
        "- **uv**: `uv pip install --target <same dir> --python-platform "
        "<machine>-manylinux_2_34 --python-version 3.X --only-binary :all: --index-url "
        "http://127.0.0.1:PORT/simple --no-cache <reqs>` with `UV_NO_CONFIG=1`, then the "
        "same zip step.",
        "- **resolve**: `layerbuilder resolve <reqs> --json` with a new cache directory "
        "(cold) and with a cache warmed by an untimed resolve just before (warm).",
        "- **Timing**: each measurement runs in a new wrapper process "
        "(`benchmarks/measure.py`) that times the steps with `perf_counter` and reads "
        "`getrusage(RUSAGE_CHILDREN).ru_maxrss` for the peak RSS; the wrapper's own start-up "
        "is not counted, the tools' start-up is.",
        "",
        "## Reproduce",
        "",
        "From the repository root, with Python ≥ 3.9 and access to the package index for the "
        "first run only:",
        "",
        "```sh",
        f"{COMMAND}                 # fill the cache if needed, run, write this page",
        f"{COMMAND} run -n 5 -w prp # one workload",
        f"{COMMAND} profile prp     # where layerbuilder's time goes",
        "```",
        "",
        "The first call creates `benchmarks/.cache/venv` (latest pip, uv, matplotlib, and "
        "layerbuilder installed from `benchmarks/.cache/src`, a snapshot of `HEAD`; "
        "`--source REV` measures another commit, `--source worktree` uncommitted edits) "
        "and fills `benchmarks/.cache/index/`. Workload keys for `-w`: "
        + ", ".join(
            f"`{w['key']}` ({' '.join(w['requirements'])}"
            + (f", {w['arch']}" if w["arch"] != "x86_64" else "")
            + ")"
            for w in doc["workloads"]
        )
        + ". Results go to `benchmarks/.cache/results/`; `python3 -m benchmarks report` "
        "re-renders this page from the latest."
        + (f" This run took {doc['elapsed'] / 60:.0f} minutes." if "elapsed" in doc else ""),
        "",
    ]
    return "\n".join(lines)
