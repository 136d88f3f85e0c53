"""The ``snapdesk`` command line: an owner of the library, like the window.

    snapdesk [PATH...]                      open the window (adding PATHs as a session)
    snapdesk submit PATH... [--wait] [--json] [--reprocess]
    snapdesk status [SESSION] [--json]
    snapdesk retry [--failed [--session N] | JOB_ID...]
    snapdesk cancel [--session N | JOB_ID...]
    snapdesk discard [--failed [--session N] | JOB_ID...]
    snapdesk jobs [--failed] [--json] | snapdesk jobs --watch
    snapdesk pause QUEUE... / snapdesk resume QUEUE...
    snapdesk remove SESSION
    snapdesk health [--json] [--max-lag SECONDS]
    snapdesk search QUERY [--meaning] [--session N] [--limit N] [--json]
    snapdesk similar DOCUMENT [--session N] [--limit N] [--json]
    snapdesk duplicates [--session N] [--json]
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path

import redis

from . import __version__, terminal
from .config import QUEUES, ConfigError, load_settings
from .engine import meaning
from .engine.jobs import KINDS
from .engine.library import Library, LibraryError
from .engine.retrying import TRANSIENT_ERRORS
from .engine.stats import unserved_message as stats_message

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="the library's data folder (default: SNAPDESK_DATA_DIR or the user data dir)")
    p.add_argument("--redis", metavar="URL", help="use a Redis worker farm (default: REDIS_URL; else the embedded queue)")


def _window_paths(argv: list[str]) -> list[str]:
    """The PATHs of ``snapdesk [PATH...] [--data-dir DIR] [--redis URL]``, read without loading Qt
    (the window's own parser, ``gui.app.build_parser``, has these options too)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("paths", nargs="*")
    for option in ("--data-dir", "--redis", "--quit-after"):
        p.add_argument(option)
    known, _ = p.parse_known_args(argv)
    return known.paths


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, not {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _command(commands, name: str, help: str) -> argparse.ArgumentParser:
    """A sub-command whose own --help starts by saying what it does."""
    return commands.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".")


def _failed_or_ids(p: argparse.ArgumentParser) -> None:
    """JOB_ID... or --failed [--session N]: the jobs a failed-job command acts on."""
    _common(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--failed", action="store_true", help="every failed job")
    group.add_argument("job_ids", nargs="*", type=int, default=[], metavar="JOB_ID")
    p.add_argument("--session", type=int, help="with --failed: only this session's")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snapdesk", description="Process documents and photos in bulk. "
                                     "Without a command, or with PATHs, it opens the window.")
    parser.add_argument("--version", action="version", version=f"snapdesk {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _command(commands, "submit", help="add files and folders as a new upload session")
    _common(p)
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--wait", action="store_true", help="show progress until every job ends; exit 1 if any failed")
    p.add_argument("--json", action="store_true", help="print the session as JSON")
    p.add_argument("--reprocess", action="store_true", help="process known content again instead of reusing results")

    p = _command(commands, "status", help="show a session (default: the latest), or list them all")
    _common(p)
    p.add_argument("session", nargs="?", type=int, help="the session's number (snapdesk status --all lists them)")
    p.add_argument("--all", action="store_true", help="list every session: number, name, state and counts")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _command(commands, "retry", help="queue failed jobs again")
    _failed_or_ids(p)
    p.add_argument("--force", action="store_true", help="also jobs that failed for good (a damaged file, not an "
                   "image) whose file has not changed since")

    p = _command(commands, "cancel", help="cancel queued and running jobs")
    _common(p)
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--session", type=int, help="every unfinished job of this session")
    group.add_argument("job_ids", nargs="*", type=int, default=[], metavar="JOB_ID")

    _failed_or_ids(_command(commands, "discard", help="take failed jobs off the failed list"))

    p = _command(commands, "jobs", help="queues, workers and statistics (or the failed jobs)")
    _common(p)
    what = p.add_mutually_exclusive_group()
    what.add_argument("--failed", action="store_true", help="list the failed jobs with their errors")
    what.add_argument("--held", action="store_true", help="list the events not applied (set aside as forged or "
                      "malformed, or deferred because their result files could not be written), with their reasons")
    what.add_argument("--watch", action="store_true", help="the farm at a glance, redrawn every second as top does: "
                      "queues, workers, throughput and failures; Ctrl+C quits")
    p.add_argument("--session", type=int, help="with --failed: only this session's")
    p.add_argument("--limit", type=_positive_int, default=20, help="with --held: at most this many (default 20)")
    p.add_argument("--window", type=_positive_seconds, help="seconds of history for rates and durations "
                   "(default 3600; 60 with --watch)")
    p.add_argument("--interval", type=_positive_seconds, default=1.0, help="with --watch: seconds between "
                   "refreshes (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON (not with --watch)")

    for name, verb in (("pause", "pause queues: workers finish what they run and take nothing new"),
                       ("resume", "resume paused queues")):
        p = _command(commands, name, help=verb)
        _common(p)
        p.add_argument("queues", nargs="+", metavar="QUEUE", choices=[*QUEUES, "all"],
                       help=f"{', '.join(QUEUES)}, or all")

    p = _command(commands, "remove", help="remove a session, its jobs and its result files")
    _common(p)
    p.add_argument("session", type=int)

    p = _command(commands, "search", help="find documents by words in their text, title, summary or name")
    _common(p)
    p.add_argument("query", nargs="+", metavar="WORD", help="words a document must all have, the last one as the start of a word (exit 1 when none has them)")
    p.add_argument("--meaning", action="store_true",
                   help="also by meaning: the words' hits first, then the documents nearest in meaning, with their "
                        "score (needs an embeddings endpoint and model)")
    p.add_argument("--session", type=int, help="only this session's documents")
    p.add_argument("--limit", type=_positive_int, default=20, help="at most this many results (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _command(commands, "similar", help="find the documents most like one document (by their vectors), "
                                           "best first, with their score")
    _common(p)
    p.add_argument("document", type=int, metavar="DOCUMENT", help="a document id (from status --json or search --json)")
    p.add_argument("--session", type=int, help="only this session's documents")
    p.add_argument("--limit", type=_positive_int, default=20, help="at most this many results (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _command(commands, "duplicates", help="list the photos that are the same picture (resized, re-encoded or "
                                              "slightly cropped), in groups, the largest original first")
    _common(p)
    p.add_argument("--session", type=int, help="only this session's photos")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = _command(commands, "health", help="check the transport, the workers and the queue lag; exit 1 if unwell")
    _common(p)
    p.add_argument("--max-lag", type=_seconds, default=300, help="seconds a job may wait before that is unwell "
                   "(default 300)")
    p.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        # `snapdesk` and `snapdesk PATH...` open the window (Qt is imported only then); a word
        # that is neither a command nor a path is a mistyped command, not a session to make.
        missing = [a for a in _window_paths(argv) if not Path(a).exists()]
        if missing:
            guess = difflib.get_close_matches(missing[0], COMMANDS, n=1)
            print(f"snapdesk: {missing[0]!r} is neither a command nor a file or folder"
                  + (f"; did you mean {guess[0]}?" if guess else "") + " (see snapdesk --help)", file=sys.stderr)
            return EXIT_USAGE
        from .gui.app import main as open_window

        return open_window(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(data_dir=args.data_dir, redis_url=args.redis)
        # Commands that only look work beside a running owner (the window applies the events).
        with Library(settings, read_only=args.command in READ_ONLY) as library:
            if args.command != "health":  # a probe reports an unreachable transport itself
                library.connect(timeout=10)
            return COMMANDS[args.command](library, args)
    except (ConfigError, LibraryError) as exc:
        print(f"snapdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except redis.RedisError as exc:
        print(f"snapdesk: cannot reach the Redis farm: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("\nsnapdesk: interrupted; the jobs go on, see them with: snapdesk status", file=sys.stderr)
        return 130


def cmd_submit(library: Library, args) -> int:
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"snapdesk: no such file or folder: {', '.join(missing)}; nothing was added", file=sys.stderr)
        return EXIT_USAGE
    session, scanner = library.submit(args.paths, reprocess=args.reprocess)
    for path, reason in scanner.problems:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    if not library.document_counts(session)["total"]:
        skipped = sum(scanner.skipped.values())
        reasons = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in scanner.skipped.items() if n)
        print(f"nothing to process in {', '.join(args.paths)}"
              + (f": {_count(skipped, 'file')} skipped ({reasons})" if skipped else ": no files found")
              + f". SnapDesk reads {', '.join(sorted({s.lstrip('.').upper() for s in KINDS}))}; no session was kept.",
              file=sys.stderr)
        library.remove_session(session.id)
        if args.json:
            _dump({"session": None, "skipped": dict(scanner.skipped)})
        return EXIT_OK
    skipped = sum(scanner.skipped.values())
    if skipped:
        reasons = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in scanner.skipped.items() if n)
        print(f"{_count(skipped, 'file')} skipped ({reasons}): see which and why with "
              f"`snapdesk status {session.id} --json` (\"skipped_files\"), or under the session in the window",
              file=sys.stderr)
    if args.wait:
        bar = terminal.ProgressBar()
        library.wait(session, on_progress=bar, on_connection=bar.connection, on_warning=bar.warning)
        bar.finish(library.document_counts(session))
    return _show(library, session, args.json, waited=args.wait)


def cmd_status(library: Library, args) -> int:
    library.housekeeping()
    session = library.session(args.session) if args.session else library.latest_session()
    if session is None and args.session:
        print(f"snapdesk: no session {args.session}", file=sys.stderr)
        return EXIT_USAGE
    if args.all:
        return _list_sessions(library, args.json)
    if session is None:
        if args.json:
            _dump({"session": None, "sessions": 0})
        else:
            print("no sessions yet: add files with `snapdesk submit PATH...`, or drop them on the window (`snapdesk`)")
        return EXIT_OK
    # (Local workers start with the work: on the embedded queue a missing one is starting.)
    unserved = library.unserved_queues() if library.local_workers is None else []
    if unserved and not args.json:
        print(f"waiting: {stats_message(unserved)}", file=sys.stderr)
    return _show(library, session, args.json, waited=False)


def cmd_retry(library: Library, args) -> int:
    library.catch_up()
    if not args.failed and not args.job_ids:
        print("snapdesk: name the jobs to retry, or use --failed", file=sys.stderr)
        return EXIT_USAGE
    held_back: list[int] = []
    retried = library.retry(job_ids=args.job_ids, failed=args.failed, session_id=args.session, force=args.force,
                            held_back=held_back)
    print(f"queued {_jobs(len(retried))} again")
    if held_back:
        print(f"not retried: {_jobs(len(held_back))} that failed for good (no retry cures them) and whose file has "
              f"not changed since: {', '.join(map(str, held_back))}. Fix or replace the file, or retry them anyway "
              "with --force.", file=sys.stderr)
    return _report_missing([j for j in args.job_ids if j not in held_back], [job.id for job in retried],
                           "not retried (unknown, or not failed)")


def cmd_cancel(library: Library, args) -> int:
    library.catch_up()
    if args.session is not None and library.session(args.session) is None:
        print(f"snapdesk: no session {args.session}", file=sys.stderr)
        return EXIT_USAGE
    cancelled = library.cancel(job_ids=args.job_ids, session_id=args.session)
    print(f"cancelled {_jobs(len(cancelled))} (running ones stop at their next checkpoint)")
    return _report_missing(args.job_ids, cancelled, "not cancelled (unknown, or already ended)")


def cmd_discard(library: Library, args) -> int:
    library.catch_up()
    discarded = library.discard(job_ids=args.job_ids, failed=args.failed, session_id=args.session)
    print(f"discarded {_jobs(len(discarded))}")
    return _report_missing(args.job_ids, discarded, "not discarded (unknown, or not failed)")


def cmd_jobs(library: Library, args) -> int:
    if args.watch:
        terminal.watch_jobs(library, args.interval, args.window)
        return EXIT_OK
    library.housekeeping()
    if args.held:
        held = library.held_events(limit=args.limit)
        if args.json:
            _dump(held)
            return EXIT_OK
        print(f"set aside: {held['set_aside']['count']}; deferred (result files not written yet): "
              f"{held['deferred']['count']}")
        for h in held["latest"]:
            print(f"{h['id']:>6}  {h['kind']:<9} {h['age_seconds']:>8.0f} s ago  job {h['job_id'] or '-'}: {h['reason']}")
        return EXIT_OK
    if args.failed:
        failed = library.failed_jobs(session_id=args.session)
        if args.json:
            _dump({"failed": failed})
        elif not failed:
            print("no failed jobs")
        else:
            for job in failed:
                how = (f"permanent: {job['advice']}" if job["error_kind"] == "permanent" and job.get("advice")
                       else "permanent: no retry will cure this" if job["error_kind"] == "permanent"
                       else f"attempt {job['attempts']} of {job['max_attempts']}")
                print(f"{job['id']:>6}  session {job['session_id']:<4} {job['type']:<10} {job['path']}\n"
                      f"        {job['error']} ({how})")
            if any(job["error_kind"] != "permanent" for job in failed):
                print("retry with: snapdesk retry JOB_ID... | --failed;  drop with: snapdesk discard JOB_ID...")
            elif any(not job.get("advice") for job in failed):
                print("each failed for good: fix or replace the files, then snapdesk retry --failed (or --force to try "
                      "anyway);  drop with: snapdesk discard JOB_ID...")
            else:  # each said what to do
                print("drop with: snapdesk discard JOB_ID...")
        return EXIT_OK
    window = args.window or 3600
    stats = library.statistics(window=window)
    if args.json:
        _dump(stats)
        return EXIT_OK
    print(f"{stats['transport']}; rates and durations over the last {terminal.span(window)}")
    print("\n".join(terminal.statistics_lines(stats)))
    return EXIT_OK


def cmd_pause(library: Library, args) -> int:
    queues = QUEUES if "all" in args.queues else args.queues
    for queue in queues:
        (library.pause if args.command == "pause" else library.resume)(queue)
    library.ensure_workers()  # a local worker may have left while its queues were paused
    paused = library.paused_queues()
    farm = " (farm-wide: every desktop's jobs on a paused queue wait)" if library.transport.name == "redis" and paused else ""
    print(f"paused: {', '.join(sorted(paused)) or 'none'}{farm}")
    return EXIT_OK


def cmd_remove(library: Library, args) -> int:
    library.catch_up()
    if not library.remove_session(args.session):
        print(f"snapdesk: no session {args.session}", file=sys.stderr)
        return EXIT_USAGE
    print(f"removed session {args.session}")
    return EXIT_OK


def cmd_health(library: Library, args) -> int:
    try:
        library.housekeeping()
    except TRANSIENT_ERRORS:
        pass  # the transport check below says so
    report = library.health(max_lag=args.max_lag)
    if args.json:
        _dump(report)
    else:
        for check in report["checks"]:
            print(f"{'ok  ' if check['ok'] else 'FAIL'}  {check['name']}: {check['detail']}")
    return EXIT_OK if report["ok"] else EXIT_FAILED


def cmd_search(library: Library, args) -> int:
    library.housekeeping()
    if args.session is not None and library.session(args.session) is None:
        print(f"snapdesk: no session {args.session}", file=sys.stderr)
        return EXIT_USAGE
    query = " ".join(args.query)
    if args.meaning:
        try:
            results = meaning.search(library, query, limit=args.limit, session_id=args.session)
        except meaning.MeaningError as exc:
            print(f"snapdesk: {exc}", file=sys.stderr)
            # Off for want of a setting is a configuration error; an endpoint that fails, a failure.
            return EXIT_USAGE if library.settings.embeddings_missing else EXIT_FAILED
        if not meaning.status(library)["vectors"]:  # on stderr: --json stays clean
            print(f"snapdesk: no document has a vector of {library.settings.embed_model} yet, so only the words "
                  "were searched: vectors are made for documents added from now on; for those added before, "
                  "run snapdesk submit --reprocess PATH... (or Reprocess in the window)", file=sys.stderr)
    else:
        results = library.search(query, limit=args.limit, session_id=args.session)
    if args.json:
        _dump({"query": query, "results": results})
    elif not results:
        print(f"nothing found for {query!r}")
    else:
        _print_hits(results)
    return EXIT_OK if results else EXIT_FAILED


def _print_hits(results: list[dict]) -> None:
    for r in results:
        score = f"  score {r['score']:.3f}" if r.get("match") == "meaning" else ""
        print(f"{r['path']}" + (f"  ({r['title']})" if r["title"] else "") + f"  [session {r['session_id']}]"
              f"  document {r['document_id']}{score}" + (f"\n    {r['snippet']}" if r.get("snippet") else ""))


def cmd_similar(library: Library, args) -> int:
    library.housekeeping()
    try:
        results = meaning.similar(library, args.document, limit=args.limit, session_id=args.session)
    except meaning.MeaningError as exc:
        print(f"snapdesk: {exc}", file=sys.stderr)
        return EXIT_USAGE if library.settings.embeddings_missing else EXIT_FAILED
    if args.json:
        _dump({"document_id": args.document, "results": results})
    elif not results:
        print(f"no other document has a vector to compare with document {args.document}")
    else:
        _print_hits(results)
    return EXIT_OK if results else EXIT_FAILED


def cmd_duplicates(library: Library, args) -> int:
    library.housekeeping()
    if args.session is not None and library.session(args.session) is None:
        print(f"snapdesk: no session {args.session}", file=sys.stderr)
        return EXIT_USAGE
    groups = library.duplicates(session_id=args.session)
    if args.json:
        _dump({"session_id": args.session, "groups": [g.to_json() for g in groups]})
    elif not groups:
        print("no duplicates" + (f" in session {args.session}" if args.session is not None else " in the library"))
    else:
        for i, group in enumerate(groups):
            print(("\n" if i else "") + f"{_count(len(group.pictures), 'file')} of one picture:")
            for picture, role in zip(group.pictures, ["original", *["copy"] * len(group.copies)]):
                size = f"{picture.width} x {picture.height}, " if picture.width and picture.height else ""
                print(f"  {role:<8} {picture.path}  ({size}{_megabytes(picture.size)})  "
                      f"[session {picture.session_id}]  document {picture.document_id}")
    return EXIT_OK


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def _list_sessions(library: Library, as_json: bool) -> int:
    sessions = library.session_summaries()
    if as_json:
        _dump({"sessions": sessions})
    elif not sessions:
        print("no sessions yet: add files with `snapdesk submit PATH...`, or drop them on the window (`snapdesk`)")
    else:
        for s in sessions:
            counts = ", ".join(f"{n} {state}" for state, n in s["documents"].items() if state != "total" and n)
            print(f"{s['id']:>5}  {s['status']:<9} {s['name']}  ({_count(s['documents']['total'], 'document')}"
                  + (f": {counts}" if counts else "") + ")")
    return EXIT_OK


def _report_missing(asked, done, why: str) -> int:
    """Name the job ids asked for that the command left alone; exit 1 when there are any."""
    missing = set(asked) - set(done)
    if missing:
        print(f"{why}: {', '.join(map(str, sorted(missing)))}", file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _jobs(n: int) -> str:
    return _count(n, "job")


def _dump(data) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _show(library: Library, session, as_json: bool, waited: bool) -> int:
    report = library.report(session)
    if as_json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(_summary(report))
    failed = report["counts"]["documents"]["failed"]
    return EXIT_FAILED if waited and failed else EXIT_OK


def _summary(report: dict) -> str:
    s, counts = report["session"], report["counts"]
    docs = counts["documents"]
    states = [f"{n} {state}" for state, n in docs.items() if state != "total" and n]
    lines = [f"session {s['id']} ({s['name']}): {s['status']}, {_count(docs['total'], 'document')}"
             + "".join(f", {state}" for state in states)]
    skipped = {k: v for k, v in counts["skipped"].items() if v}
    if skipped:
        lines.append("skipped: " + ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in skipped.items()))
    for doc in report["documents"]:
        for job_type, job in doc["jobs"].items():
            if job["state"] == "failed":
                lines.append(f"  failed: {doc['path']} ({job_type}, job {job['id']}): {job['error']}"
                             + (f"\n    {job['advice']}" if job.get("advice") else ""))
    failed = [job for doc in report["documents"] for job in doc["jobs"].values() if job["state"] == "failed"]
    # A permanent failure with advice of its own (the model, not the file) has said what to do above.
    permanent = sum(job["error_kind"] == "permanent" and not job.get("advice") for job in failed)
    advised = sum(job["error_kind"] == "permanent" and bool(job.get("advice")) for job in failed)
    if s["status"] == "running":
        lines.append(f"follow it with: snapdesk status {s['id']}")
    elif failed:
        if permanent:
            lines.append(f"{_count(permanent, 'job')} failed for good: no retry will cure "
                         f"{'it' if permanent == 1 else 'them'} (fix or replace the file, then retry)")
        if len(failed) > permanent + advised:
            lines.append("retry the failed ones with: snapdesk retry --failed")
    return "\n".join(lines)


READ_ONLY = {"status", "jobs", "search", "similar", "health", "duplicates"}
COMMANDS = {"submit": cmd_submit, "status": cmd_status, "retry": cmd_retry, "cancel": cmd_cancel,
            "discard": cmd_discard, "jobs": cmd_jobs, "pause": cmd_pause, "resume": cmd_pause,
            "remove": cmd_remove, "health": cmd_health, "search": cmd_search, "similar": cmd_similar,
            "duplicates": cmd_duplicates}
