"""The `aiqa` command: the only module that prints, parses flags and draws progress bars."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiqa.config import Settings
from aiqa.contract import ask_json, events
from aiqa.errors import AiqaError


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"aiqa: error: {message} (see `{self.prog} --help`)\n")


def _settings(args: argparse.Namespace) -> Settings:
    return Settings().with_paths(getattr(args, "corpus", None), getattr(args, "index", None))


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False), flush=True)


def cmd_index(args: argparse.Namespace) -> int:
    from aiqa.build import build_index

    settings = _settings(args)
    progress = not args.json and sys.stderr.isatty()
    report = build_index(settings, progress=progress)
    if args.json:
        _print_json(report.as_json())
    else:
        print(
            f"index {report.index_version}: {report.chunks} chunks; added {report.added}, updated {report.updated}, "
            f"removed {report.removed}, unchanged {report.unchanged}; embedded {report.embedded_chunks} chunks "
            f"in {report.seconds:.1f}s"
        )
        for skip in report.skipped:
            print(f"skipped {skip['path']}: {skip['reason']}", file=sys.stderr)
        for note in report.notes:
            print(f"note {note['path']}: {note['note']}", file=sys.stderr)
    return 1 if args.strict and report.skipped else 0


def _read_history(path: str | None) -> list:
    if not path:
        return []
    from aiqa.errors import BadRequest

    try:
        raw = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadRequest(f"cannot read history file {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        # Plain text: one earlier question a line.
        data = [line for line in raw.splitlines() if line.strip()]
    return data


def _print_answer(result: dict[str, Any]) -> None:
    generation = result.get("generation") or {}
    if generation.get("fallback"):
        print(f"(the LLM's answer is not shown: {generation['fallback']}; quoting the documents)", file=sys.stderr)
    print(result["answer"])
    if result["citations"]:
        print()
        for c in result["citations"]:
            print(f"[{c['n']}] {c['source']} · {c['section']} · {c['locator']}")
            print(f"    “{' '.join(c['quote'].split())}”")
    if result["related"]:
        print("\n관련 문단 (근거 아님):" if result["language"] == "ko" else "\nRelated passages (not sources):")
    for p in result["related"]:
        print(f"  - {p['source']} · {p['section']} · {p['locator']}")
    t = result["timings_ms"]
    print(f"\n({t['retrieve']:.0f} ms retrieve, {t['answer']:.0f} ms answer)", file=sys.stderr)


def cmd_ask(args: argparse.Namespace) -> int:
    from aiqa.engine import Engine

    engine = Engine(_settings(args)).load()
    history = _read_history(args.history)
    questions: Iterable[str]
    if args.question == ["-"]:
        questions = (q for q in (line.strip() for line in sys.stdin) if q)
    else:
        questions = [" ".join(args.question)]
    failed = 0
    for question in questions:
        # One question that fails never takes the rest of a batch down with it.
        try:
            result = _ask(engine, question, args, history)
        except AiqaError as exc:
            failed += 1
            _print_failure(args, question, str(exc))
            continue
        except Exception as exc:
            failed += 1
            _print_failure(args, question, f"internal error ({type(exc).__name__}: {exc}); please report it")
            continue
        if args.json:
            _print_json(result)
        else:
            _print_answer(result)
    return 1 if failed else 0


def _ask(engine, question: str, args: argparse.Namespace, history) -> dict[str, Any]:
    """The answer; on a terminal, with an LLM server set, its words are shown (on stderr) as they come."""
    groups = None if args.groups is None else frozenset(g.strip() for g in args.groups.split(",") if g.strip())
    if args.json or engine.generator is None:
        return ask_json(engine, question, args.k, history, groups=groups)
    final: dict[str, Any] = {}
    for kind, value in events(engine.ask(question, args.k, history, groups), engine.generator):
        if kind == "token":
            print(value["text"], end="", file=sys.stderr, flush=True)
        elif kind == "answer":
            final = value
    if final.get("generation"):
        print(file=sys.stderr)
    return final


def _print_failure(args: argparse.Namespace, question: str, message: str) -> None:
    if args.json:
        _print_json({"question": question, "error": message})
    else:
        print(f"aiqa: {question[:80]}: {message}", file=sys.stderr)


def cmd_eval(args: argparse.Namespace) -> int:
    from aiqa.engine import Engine
    from aiqa.evaluate import load_cases, run_eval

    cases = load_cases(Path(args.file))
    engine = Engine(_settings(args)).load()
    report = run_eval(engine, cases, k=args.k)
    if args.json:
        _print_json(report)
        return 0
    for case in report["cases"]:
        mark = "ok " if (case["correct"] if case["answerable"] else case["abstained"]) else "BAD"
        status = "abstained" if case["abstained"] else f"rank {case['rank']}"
        print(f"{mark} {case['id']:>5}  {status:<10} {case['q']}")
    lat = report["latency_ms"]
    print(
        f"\n{report['questions']} questions ({report['answerable']} answerable, {report['unanswerable']} not, "
        f"{report['crashes']} failed)\n"
        f"hit@1 {report['recall@1']:.3f}  hit@5 {report['recall@5']:.3f}  MRR {report['mrr']:.3f}\n"
        f"answer accuracy {report['answer_accuracy']:.3f}  "
        f"refusals of unanswerable {report['abstention_accuracy']:.3f}  "
        f"false abstentions {report['false_abstentions']} ({report['false_abstention_rate']:.3f})  "
        f"verbatim quotes {report['verbatim_quotes']:.3f}\n"
        f"latency p50 {lat['p50']} ms  p95 {lat['p95']} ms  (retrieve p50 {lat['retrieve_p50']} ms, "
        f"answer p50 {lat['answer_p50']} ms)"
    )
    if engine.generator is not None:  # answers written by the LLM server (AIQA_LLM_URL) and kept by the check
        answered = sum(1 for c in report["cases"] if not c["abstained"] and not c["error"])
        print(f"written by the LLM server: {report['written_answers']} of {answered} answers (the rest quoted)")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from aiqa.answer.decision import load_decision
    from aiqa.calibrate import collect, fit, measure
    from aiqa.engine import Engine
    from aiqa.evaluate import load_cases

    engine = Engine(_settings(args)).load()
    cases = [case for path in args.files for case in load_cases(Path(path))]
    examples = collect(engine, cases)
    about = {"by": "aiqa calibrate", "on": ", ".join(args.files)}
    decision = fit(examples, target=args.false_abstentions, about=about)
    out = Path(args.out)
    out.write_text(json.dumps(decision.as_json(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    fitted, bundled = measure(examples, decision), measure(examples, load_decision())
    for name, m in (("fitted", fitted), ("bundled", bundled)):
        print(
            f"{name:<8} answer hit {m['answer_hit']:.3f}  false abstentions {m['false_abstentions']:.3f}  "
            f"refusals {m['refusals']:.3f}  ({m['answerable']} answerable, {m['unanswerable']} not)"
        )
    print(f"wrote {out}: use it with AIQA_DECISION={out.resolve()}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import time

    from aiqa.engine import Engine
    from aiqa.feedback import open_feedback
    from aiqa.report import grouped, labelled, per_day

    settings = _settings(args)
    answers = open_feedback(settings).answers(since=time.time() - args.days * 86400)
    groups = grouped(answers, lambda qs: Engine(settings, generator=None).embedder.embed_queries(qs), args.low)
    if args.export:
        lines = labelled(answers)
        Path(args.export).write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
        print(
            f"wrote {len(lines)} labelled questions to {args.export}: `aiqa calibrate {args.export}`", file=sys.stderr
        )
    if args.json:
        _print_json({"groups": [g.as_json() for g in groups], "days": per_day(answers), "answers": len(answers)})
        return 0
    print(f"{len(answers)} answers in the last {args.days} days; {sum(len(g.questions) for g in groups)} flagged")
    for day in per_day(answers):
        print(
            f"  {day['day']}  answered {day['answered']:>5}  refused {day['refused']:>5}  disliked {day['disliked']:>5}"
        )
    for g in groups:
        data = g.as_json()
        why = ", ".join(f"{k} {v}" for k, v in data["why"].items())
        print(f"\n{data['count']:>4}x  {data['question']}  ({why})")
        for other in data["also"][:3]:
            print(f"        also: {other}")
        if data["passages_from"]:
            print(f"        passages from: {', '.join(data['passages_from'])}")
        for comment in data["comments"][:2]:
            print(f"        comment: {comment}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from aiqa.web.serving import serve

    serving = serve(_settings(args), host=args.host, port=args.port)
    if (r := serving.report) is not None:
        changed = r["added"] + r["updated"] + r["removed"]
        what = (
            f"rebuilt ({r['added']} added, {r['updated']} updated, {r['removed']} removed)" if changed else "up to date"
        )
        skipped = f"; {len(r['skipped'])} skipped (run `aiqa index` to see why)" if r["skipped"] else ""
        print(f"aiqa: index {r['index_version']} {what}: {r['chunks']} chunks{skipped}", file=sys.stderr)
    else:
        print(f"aiqa: {serving.kept_because}; serving the existing index", file=sys.stderr)
    url = serving.url
    print(f"aiqa: chat at {url}/  API docs {url}/docs  widget {url}/widget.js", file=sys.stderr, flush=True)
    if serving.hosts is not None:
        names = ", ".join(serving.hosts)
        print(f"aiqa: answering to hosts {names} only: list others in AIQA_ALLOWED_HOSTS", file=sys.stderr, flush=True)
    serving.run()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="aiqa", description="Ask questions about your documents; answers cite their sources.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def paths(p: argparse.ArgumentParser, corpus: bool = False) -> None:
        if corpus:
            p.add_argument("--corpus", metavar="DIR", help="documents folder (default corpus/ or $AIQA_CORPUS)")
        p.add_argument("--index", metavar="DIR", help="index folder (default index/ or $AIQA_INDEX)")

    p = sub.add_parser("index", help="build or update the index from the corpus folder")
    paths(p, corpus=True)
    p.add_argument("--json", action="store_true", help="print the build report as JSON")
    p.add_argument("--strict", action="store_true", help="exit non-zero when any file was skipped")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("ask", help="answer questions ('-' reads one question a line from stdin)")
    p.add_argument("question", nargs="+", metavar="QUESTION")
    paths(p)
    p.add_argument("-k", type=int, default=5, help="passages to return (default 5)")
    p.add_argument("--history", metavar="FILE", help="earlier questions: JSON list, or one a line")
    p.add_argument("--json", action="store_true", help="one JSON object a line per question")
    p.add_argument("--groups", metavar="G1,G2", help="ask as a reader of these access groups (default: every document)")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("eval", help="measure retrieval and answers on a JSONL question set")
    p.add_argument("file", metavar="FILE.jsonl")
    paths(p)
    p.add_argument("-k", type=int, default=10, help="passages retrieved per question (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("calibrate", help="fit the answer decision on your own labelled questions")
    p.add_argument("files", nargs="+", metavar="FILE.jsonl", help="questions with gold strings, answerable or not")
    paths(p)
    p.add_argument("--out", default="decision.json", help="where to write the fitted decision (default decision.json)")
    p.add_argument(
        "--false-abstentions", type=float, default=0.02, help="share of answerable questions it may refuse (0.02)"
    )
    p.set_defaults(func=cmd_calibrate)

    p = sub.add_parser("report", help="questions the documents fail (refused, low confidence, disliked)")
    paths(p)
    p.add_argument("--days", type=int, default=30, help="look back this many days (default 30)")
    p.add_argument("--low", type=float, default=0.5, help="confidence below this is low (default 0.5)")
    p.add_argument("--export", metavar="FILE.jsonl", help="write the rated questions as `aiqa calibrate` lines")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("serve", help="start the web chat and HTTP API (builds the index if needed)")
    paths(p, corpus=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AiqaError as exc:
        print(f"aiqa: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
