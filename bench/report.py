"""Write docs/benchmarks.md and docs/benchmarks.png from the JSON figures the benchmarks saved.

Usage: .venv/bin/python bench/report.py [--results bench/results]

Each benchmark run with `--json bench/results/NAME.json` leaves its figures there (see RUNS below
for the exact commands); this script only lays them out, so the page always shows measured numbers
and the command that produced them. A missing file leaves its section saying so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from evalsets import REPO

RUNS = {
    "quality": "bench/quality.py --json bench/results/quality.json",
    "build": "bench/index_build.py --json bench/results/build.json",
    "encoders": "bench/encoders.py (its table, kept in bench/results/encoders.md)",
    "latency": "bench/latency.py QUESTIONS --json bench/results/latency.json",
    "scale": "bench/scale.py --json bench/results/scale.json",
    "peers": "bench/peers.py --json bench/results/peers.json",
    "http": "bench/http_load.py --json bench/results/http.json",
    "generate": "bench/generate.py --json bench/results/generate.json",
    "soak": "bench/soak.py (its printout, kept in bench/results/soak.txt)",
    "formats": "bench/formats.py --json bench/results/formats.json",
    "hwp_parsers": "bench/formats.py --compare-hwp HWP_DIR AGPL_DIR HWPX_DIR (bench/results/hwp_parsers.json)",
    "reflow": "bench/reflow.py glue|korquad|eval|wrapped (bench/results/reflow.json)",
    "idle": "bench/idle.py --json bench/results/idle.json",
    "hnsw_add": "bench/hnsw_add.py --json bench/results/hnsw_add.json",
    "statements": "bench/statements.py --json bench/results/statements.json",
    "kiwi_memory": "bench/kiwi_memory.py --json bench/results/kiwi_memory.json",
}


def load(results: Path, name: str) -> Any:
    path = results / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def markdown(results: Path, name: str) -> str | None:
    """A section the benchmark printed as Markdown itself (bench/results/NAME.md)."""
    path = results / f"{name}.md"
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def text(results: Path, name: str) -> str | None:
    """A benchmark's plain printout (bench/results/NAME.txt)."""
    path = results / f"{name}.txt"
    return path.read_text(encoding="utf-8") if path.exists() else None


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    columns = columns or list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def section(title: str, name: str, body: str | None, command: str | None = None) -> str:
    command = f"`{command}`" if command else f"`.venv/bin/python {RUNS[name]}`"
    return f"## {title}\n\n{body if body else '_Not measured in this run._'}\n\nProduced by {command}.\n"


def of(count: int, total: int) -> str:
    return f"{count} of {total}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def corpus(row: dict[str, Any]) -> str:
    return f"`{row['corpus']}/`: {plural(row['documents'], 'document')}, {plural(row['chunks'], 'chunk')}"


def quality_row(label: str, s: dict[str, Any], where: str, latency: bool = True) -> dict[str, Any]:
    """One line of the quality table from an `aiqa eval --json` summary."""
    refused = round(s["abstention_accuracy"] * s["unanswerable"])
    row = {
        "question set": label,
        "corpus": where,
        "questions": f"{s['questions']} ({s['answerable']} answerable)",
        "hit@1": s["recall@1"] if s["answerable"] else None,
        "hit@5": s["recall@5"] if s["answerable"] else None,
        "answer accuracy": s["answer_accuracy"] if s["answerable"] else None,
        "false abstentions": of(s["false_abstentions"], s["answerable"]) if s["answerable"] else None,
        "unanswerable refused": of(refused, s["unanswerable"]) if s["unanswerable"] else None,
        "failed": s["crashes"],
    }
    if latency:
        row["quotes verbatim"] = s["verbatim_quotes"]
        row["p50 ms"] = s["latency_ms"]["p50"]
    return row


def quality_section(quality: dict | None) -> str | None:
    if not quality:
        return None
    rows = [quality_row(f"`{r['set']}`", r["summary"], corpus(r)) for r in quality["sets"]]
    out = (
        "`aiqa eval --json` on every question set the repository ships, each over a fresh index of its "
        f"corpus (`AIQA_ENCODER={quality['encoder']}`). hit@k: a passage among the first k holds a gold string; "
        "answer accuracy: not refused, every `must` string in the answer and a gold string in the answer or "
        "a cited quote; quotes verbatim: the share of cited quotes found word for word in the corpus. "
        f"What each set is: [how-it-works.md](how-it-works.md#the-question-sets).\n\n{table(rows)}"
    )
    kinds = [
        quality_row(f"`{r['set']}`: {kind}", s, corpus(r), latency=False)
        for r in quality["sets"]
        for kind, s in r.get("kinds", {}).items()
    ]
    if kinds:
        out += f"\n\nBy the `kind` the question lines carry:\n\n{table(kinds)}"
    return out


def quality_change_section(before: dict | None, after: dict | None) -> str | None:
    """Each question set and kind before and after a change: bench/quality.py run on the earlier commit
    (saved as quality_before.json, its `command` naming the commit) and on this one, one after the other."""
    if not before or not after:
        return None

    def cells(s: dict[str, Any] | None) -> tuple[str, str, str, str]:
        if s is None:
            return ("–", "–", "–", "–")
        refused = round(s["abstention_accuracy"] * s["unanswerable"])
        return (
            fmt(s["recall@1"]) if s["answerable"] else "–",
            fmt(s["recall@5"]) if s["answerable"] else "–",
            of(round(s["answer_accuracy"] * s["answerable"]), s["answerable"]) if s["answerable"] else "–",
            of(refused, s["unanswerable"]) if s["unanswerable"] else "–",
        )

    old = {r["set"]: r for r in before["sets"]}
    rows = []
    for r in after["sets"]:
        prior = old.get(r["set"])
        for kind, s in [("all", r["summary"]), *r.get("kinds", {}).items()]:
            b = (prior["summary"] if kind == "all" else prior.get("kinds", {}).get(kind)) if prior else None
            was, now = cells(b), cells(s)
            rows.append(
                {
                    "question set": f"`{r['set']}`" + ("" if kind == "all" else f": {kind}"),
                    "hit@1": f"{was[0]} → {now[0]}",
                    "hit@5": f"{was[1]} → {now[1]}",
                    "answers right": f"{was[2]} → {now[2]}",
                    "unanswerable refused": f"{was[3]} → {now[3]}",
                }
            )
    return f"{before.get('note', '')}\n\n{table(rows)}".strip()


def access_section(rows: list[dict] | None) -> str | None:
    """The access filter's cost: question p50/p95 unfiltered against a reader of the public documents."""
    if not rows:
        return None
    out = [
        {
            "search": r["layout"],
            "chunks restricted": f"{r['restricted']:.0%}",
            "p50 ms, all / public reader": f"{r['all_p50']} / {r['public_p50']}",
            "p95 ms, all / public reader": f"{r['all_p95']} / {r['public_p95']}",
            "view built once, ms": r["view_build_ms"],
        }
        for r in rows
    ]
    return (
        f"{rows[0]['chunks']} chunks, {rows[0]['questions']} questions, the same index; the 0% rows run the same code "
        f"on both sides, so their difference is the noise of the measurement.\n\n{table(out)}"
    )


def feedback_section(run: dict | None) -> str | None:
    """Feedback writes under concurrent clients, the server killed with SIGKILL mid-run."""
    if not run:
        return None
    out = [
        {
            "store": name,
            "clients": r["clients"],
            "writes/s": r["writes_per_s"],
            "acknowledged": r["acknowledged"],
            "rows after kill -9": r["rows"],
            "acknowledged and lost": r["lost"],
        }
        for name, r in run.items()
    ]
    return (
        "Each client POSTs /api/feedback as fast as the server acknowledges; after the run's seconds the server "
        "is killed with SIGKILL while they still write, and every acknowledged rating is looked up in the store "
        "(rows can exceed the acknowledged: a write can land before its reply is lost with the server)."
        f"\n\n{table(out)}"
    )


def soak_section(text: str | None) -> str | None:
    if not text:
        return None
    body = "\n".join(line for line in text.splitlines() if not line.startswith(("real", "user", "sys"))).strip()
    return f"```text\n{body}\n```"


def build_section(build: dict | None) -> str | None:
    if not build:
        return None
    rows = [
        {"step": step, "seconds": s, "share of build": f"{s / build['build_s']:.1%}"}
        for step, s in build["steps"].items()
    ]
    rows.append({"step": "whole build", "seconds": build["build_s"], "share of build": "100%"})
    rows.append({"step": "bare encoder on the same texts (the limit)", "seconds": build["bare_encoder_s"]})
    return (
        f"{build['documents']} documents, {build['chunks']} chunks, {build['vectors']} vectors; model load "
        f"{build['model_load_s']:.1f} s, timed apart.\n\n{table(rows)}\n\n"
        f"**The whole build runs at {build['ratio_to_limit']:.2f}x the bare encoder's throughput** "
        f"({build['chunks'] / build['build_s']:.1f} chunks/s). A build with no change takes "
        f"{build['no_change_s']:.2f} s; one changed document {build['one_changed_s']:.2f} s."
    )


def latency_section(latency: dict | None) -> str | None:
    if not latency:
        return None
    floor = latency["bare encoder call (the floor)"]["p50"]
    rows = [
        {"step": k, "p50 ms": v["p50"], "p95 ms": v["p95"], "p50 / floor": v["p50"] / floor}
        for k, v in latency.items()
        if isinstance(v, dict)
    ]
    total = latency["ask: total"]["p50"]
    return f"{table(rows)}\n\n**A warm question takes {total / floor:.2f}x one bare encoder call** (p50)."


def peers_section(peers: dict | None) -> str | None:
    if not peers:
        return None
    versions = "; ".join(f"{name}: {v}" for name, v in peers["versions"].items())
    return (
        f"The same {peers['answerable']} answerable KorQuAD calibration questions over the same articles, the same "
        f"e5 embedder for all ({versions}).\n\n{table(peers['rows'])}"
        + (f"\n\n{peers['note']}" if peers.get("note") else "")
    )


def statements_section(run: dict | None) -> str | None:
    if not run:
        return None
    columns = [
        "statements",
        "set",
        "chunks",
        "build_s",
        "recall@1",
        "recall@5",
        "answer_accuracy",
        "abstention_accuracy",
    ]
    rows = [{c: r.get(c) for c in columns} for r in run["rows"]]
    return (
        "Each statement's vector pooled from its chunk's encoder pass (the mean of its own tokens' states "
        "there) against each statement embedded in a pass of its own, through the command line a user runs: "
        f"`aiqa index --json` then `aiqa eval` per set, encoder {run['encoder']}. Build seconds are "
        "`aiqa index`'s own (read, chunk, embed with the model's load, keywords, write).\n\n"
        + table(rows)
        + (f"\n\n{run['note']}" if run.get("note") else "")
    )


def kiwi_section(run: dict | None) -> str | None:
    if not run:
        return None
    rows = [
        {
            "options": ", ".join(f"{k}={v}" for k, v in r["options"].items()) or "(defaults)",
            "Kiwi's resident MB": r["kiwi_mb"],
            "lines analysed otherwise": of(r["lines_changed"], r["lines"]),
        }
        for r in run["rows"]
    ]
    return (
        "Kiwi loaded with each set of options in a fresh process, then every line of the bundled report and "
        "of the KorQuAD articles analysed; the lines whose morphemes differ from the defaults' are counted. "
        "aiqa loads the third row: without the multi-word dictionary a proper noun of several words "
        "(더글러스 맥아더) comes as its words.\n\n" + table(rows)
    )


def plot(scale: list[dict] | None, http: list[dict] | None, out: Path) -> bool:
    if not scale and not http:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if scale:
        kinds = sorted({r["search"] for r in scale if "IVF" not in r["search"]})
        for kind in kinds:
            points = [(r["chunks"], r["p50_ms"]) for r in scale if r["search"] == kind]
            axes[0].plot(*zip(*points, strict=True), marker="o", label=kind)
        axes[0].set(xscale="log", yscale="log", xlabel="chunks", ylabel="search p50 (ms)", title="Search at scale")
        axes[0].legend(fontsize=7)
    if http:
        for config in sorted({r["config"] for r in http}):
            points = [(r["clients"], r["p95_ms"]) for r in http if r["config"] == config]
            axes[1].plot(*zip(*points, strict=True), marker="o", label=f"{config}: p95")
        axes[1].axhline(1000, color="grey", linestyle="--", linewidth=0.8)
        axes[1].set(xscale="log", xlabel="concurrent clients", ylabel="latency (ms)", title="/api/ask under load")
        axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    return True


def formats_section(formats: dict | None) -> str | None:
    if not formats:
        return None
    rows = [
        {
            "format": name,
            "file (MB)": f["file_mb"],
            "read (s)": f["read_s"],
            "s per MB": f["s_per_mb"],
            "characters per s": f["chars_per_s"],
        }
        for name, f in formats["formats"].items()
    ]
    ocr = formats.get("ocr")
    tail = (
        f"\n\nOCR (Tesseract `{ocr['languages']}`, `{ocr['config']}`): {ocr['s_per_page']} s a page over "
        f"{ocr['pages']} pages, character accuracy {ocr['char_accuracy']} on the test scan."
        if ocr
        else ""
    )
    return table(rows) + tail


def hwp_section(hwp: dict | None) -> str | None:
    if not hwp:
        return None
    rows = [
        {
            "parser": name,
            "read": of(p["read"], p["files"]),
            "seconds": p["seconds"],
            "preview recall": p["preview_recall"],
            "table rows": p["table_rows"],
            "headings": p["headings"],
            "damaged copies refused": p["damaged_copies"]["refused"],
        }
        for name, p in hwp["parsers"].items()
    ]
    return f"{hwp['corpus']}.\n\n{table(rows)}\n\n{hwp['notes']}"


def reflow_section(reflow: dict | None) -> str | None:
    if not reflow:
        return None
    rows = []
    for name, run in (("wrapped KorQuAD", reflow["wrapped_korquad"]), ("realistic", reflow["realistic"])):
        for half in run["before"]["halves"]:
            b, a = run["before"]["halves"][half]["kinds"], run["after"]["halves"][half]["kinds"]
            total_b, total_a = b["all answerable"], a["all answerable"]
            rows.append(
                {
                    "set": f"{name}: {half}" if half != name else name,
                    "questions": total_b["n"],
                    "hit@1 before → after": f"{total_b['hit@1']} → {total_a['hit@1']}",
                    "hit@5 before → after": f"{total_b['hit@5']} → {total_a['hit@5']}",
                    "answers right before → after": f"{total_b['right']} → {total_a['right']}",
                    "chunks": f"{run['before']['chunks']} → {run['after']['chunks']}",
                }
            )
    commands = "; ".join(f"`{c}`" for c in reflow["commands"].values())
    return f"{table(rows)}\n\nCommands: {commands}."


def idle_section(idle: dict | None, scale: list[dict] | None) -> str | None:
    if not idle:
        return None
    columns = {
        "code": "code",
        "phase": "phase",
        "core_pct": "% of a core, idle",
        "cpu_s": f"CPU s in {idle['idle_s']:.0f} s",
        "busiest_thread": "busiest thread",
        "rss_mb": "RSS idle (MB)",
        "server_peak_mb": "server's own peak (MB)",
        "start_peak_mb": "start-up peak, with children (MB)",
        "start_s": "start (s)",
        "torch_mapped": "libtorch mapped",
    }
    rows = [{label: r.get(key) for key, label in columns.items()} for r in idle["rows"]]
    out = (
        "`aiqa serve` on the bundled corpus/ with no client: CPU seconds of all the server's threads over "
        f"{idle['idle_s']:.0f} s, after a first start on an empty model cache (the model converted and exported "
        "in child processes, the index built), after a burst of questions (30 over /api/ask, 3 through the chat), "
        "and after a later start on the same cache and index, idle and after one question (the first question "
        "loads Kiwi, which a start with nothing to build does not: about 500 MB before, 320 MB after). The start-up "
        "peak is the server and its children together, sampled every 0.1 s. Before and after in one run.\n\n"
        + table(rows, list(columns.values()))
    )
    if idle.get("note"):
        out += f"\n\n{idle['note']}"
    if scale:
        at = {r["search"]: r for r in scale if r["chunks"] == 100_000}
        keyword = next((r["ram_mb"] for k, r in at.items() if k.startswith("keyword")), None)
        graph = next((r["ram_mb"] for k, r in at.items() if "shipped" in k), None)
        if keyword is not None and graph is not None:
            out += (
                f"\n\nPer 100k chunks on top of that (from the scale run below, which holds one vector a chunk): "
                f"the keyword postings {keyword:.0f} MB and the HNSW graph {graph:.0f} MB a vector per chunk; an "
                f"index holds about three vectors a chunk (its views), so about {keyword + 3 * graph:,.0f} MB, "
                "plus the chunks' texts."
            )
    return out


def hnsw_add_section(run: dict | None, scale: list[dict] | None) -> str | None:
    if not run:
        return None
    out = (
        "A version that only adds documents: its vectors added to the live graph (read from disk, old rows "
        "checked, added, written) against a rebuild of the whole graph, side by side on synthetic clustered "
        "vectors (384 dimensions).\n\n" + table(run["rows"])
    )
    at_1m = next((r for r in scale or [] if r["chunks"] == 1_000_000 and "shipped" in r["search"]), None)
    measured = [r for r in run["rows"] if r["vectors before"] >= 1_000_000]
    if measured:
        row = measured[-1]
        out += (
            f"\n\nAt {row['vectors before']:,} vectors, adding {row['added']:,} took {row['add s']} s against "
            f"{row['rebuild s']} s for a rebuild ({row['rebuild / add']}x), and both graphs find the same share "
            f"of the exact top 10 ({row['recall@10 added']} and {row['recall@10 rebuilt']}). That share is the "
            "graph's on these vectors, not the add's: they are noisier than text embeddings (each a mixture of "
            "two of 2,000 directions plus noise of nearly the same size)"
            + (
                f", and on the scale run's vectors the same HNSW settings find {at_1m['recall10']:.3f} at 1M (below)."
                if at_1m
                else "."
            )
        )
    elif at_1m and run["rows"]:
        last = run["rows"][-1]
        out += (
            f"\n\nNot measured at 1M here (a rebuild alone is {at_1m['build_s']:,.0f} s in the scale run). "
            "Extrapolated, and said as such: a rebuild grows with the graph, while adding costs the read, the "
            "check and the write of the file (linear in its size, a few seconds a million vectors) plus an "
            f"insertion cost per added vector that grows only with the logarithm of the graph's size; at "
            f"{last['vectors before']:,} vectors the add took {last['add s']} s for {last['added']:,} vectors."
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", default=str(REPO / "bench" / "results"))
    args = parser.parse_args()
    results = Path(args.results)
    data = {name: load(results, name) for name in RUNS}
    docs = REPO / "docs"
    drawn = plot(data["scale"], data["http"], docs / "benchmarks.png")
    parts = [
        "# Benchmarks\n",
        "Measured on the project's machines: 2 CPU cores, no GPU. Figures inside one table come from one "
        "run, side by side; ratios travel between machines better than absolute times. Regenerate with "
        "`.venv/bin/python bench/report.py` after re-running the benchmarks below.\n",
        "![search latency at scale and /api/ask latency under load](benchmarks.png)\n" if drawn else "",
        section(
            "Answers: `aiqa eval` per question set",
            "quality",
            quality_section(data["quality"]),
            data["quality"]["command"] if data["quality"] else None,
        ),
        section(
            "Answers before and after the latest round of changes (its note says which)",
            "quality",
            quality_change_section(load(results, "quality_before"), data["quality"]),
            "the same command on both commits, one after the other",
        ),
        section("Index build", "build", build_section(data["build"])),
        section("Index build with AIQA_ENCODER=torch", "build", build_section(load(results, "build-torch"))),
        section("Encoder runtimes", "encoders", markdown(results, "encoders")),
        section("One question, step by step", "latency", latency_section(data["latency"])),
        section(
            "Statement vectors: pooled from the chunk's pass, or embedded apart",
            "statements",
            statements_section(data["statements"]),
            data["statements"]["command"] if data["statements"] else None,
        ),
        section(
            "Kiwi's memory by load option",
            "kiwi_memory",
            kiwi_section(data["kiwi_memory"]),
            data["kiwi_memory"]["command"] if data["kiwi_memory"] else None,
        ),
        section(
            "An idle server: CPU and memory",
            "idle",
            idle_section(data["idle"], data["scale"]),
            data["idle"]["command"] if data["idle"] else None,
        ),
        section(
            "HNSW: adding to the live graph against a rebuild",
            "hnsw_add",
            hnsw_add_section(data["hnsw_add"], data["scale"]),
            data["hnsw_add"]["command"] if data["hnsw_add"] else None,
        ),
        section(
            "Access groups: the filter's cost on a question",
            "access",
            access_section(load(results, "access")),
            "flock /tmp/aiqa-bench.lock .venv/bin/python bench/access.py --copies 20 --rounds 2 "
            "--json bench/results/access.json",
        ),
        section(
            "Feedback: writes under 50 clients and a kill -9",
            "feedback",
            feedback_section(load(results, "feedback")),
            "flock /tmp/aiqa-bench.lock .venv/bin/python bench/feedback.py --clients 50 --seconds 8 "
            "--json bench/results/feedback.json",
        ),
        section("Scale: 10k to 1M chunks", "scale", table(data["scale"]) if data["scale"] else None),
        section(
            "Beside other pipelines",
            "peers",
            peers_section(data["peers"]),
            "flock /tmp/aiqa-bench.lock .venv/bin/python bench/peers.py --json bench/results/peers.json",
        ),
        section("Serving: concurrent clients", "http", table(data["http"]) if data["http"] else None),
        section("Written answers (a 0.5B model) against quoted ones", "generate", markdown(results, "generate")),
        section("Reading: time per format and per OCR'd page", "formats", formats_section(data["formats"])),
        section("HWP readers compared on real files", "hwp_parsers", hwp_section(data["hwp_parsers"])),
        section("Re-flow of text extracted from PDFs, before and after", "reflow", reflow_section(data["reflow"])),
        section(
            "Soak: many clients, rebuilds, a flood and oversized histories at once",
            "soak",
            soak_section(text(results, "soak")),
        ),
    ]
    (docs / "benchmarks.md").write_text("\n".join(p for p in parts if p), encoding="utf-8")
    print(f"wrote {docs / 'benchmarks.md'}" + (f" and {docs / 'benchmarks.png'}" if drawn else ""))


if __name__ == "__main__":
    main()
