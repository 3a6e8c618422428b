"""A Celery worker runs tasks in daemonic processes: the reader must still be isolated there."""

import multiprocessing as mp

from orchestrate.isolate import run_isolated


def _answer() -> int:
    return 42


def _in_daemon(queue) -> None:
    try:
        queue.put(run_isolated(_answer, what="test"))
    except Exception as exc:  # the test reports it
        queue.put(repr(exc))


def test_reader_runs_isolated_from_a_daemonic_process():
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    worker = ctx.Process(target=_in_daemon, args=(queue,), daemon=True)
    worker.start()
    got = queue.get(timeout=30)
    worker.join(10)
    assert got == 42, got  # before: "daemonic processes are not allowed to have children"
    assert mp.current_process()._config.get("daemon") in (None, False)
