"""Several workers opening a new SQLite case store at the same moment all get it."""

import threading

from sleuth.agent.cases import open_checkpointer


def open_at_once(path, workers):
    start = threading.Barrier(workers)
    failures = []

    def worker():
        start.wait()
        try:
            with open_checkpointer(path) as saver:
                saver.conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        except Exception as err:  # noqa: BLE001 - every failure is the finding
            failures.append(err)

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return failures


def test_a_new_store_opened_by_many_workers_at_once(tmp_path):
    failures = [open_at_once(tmp_path / f"cases-{n}.sqlite", 8) for n in range(20)]
    assert [f for f in failures if f] == []
    with open_checkpointer(tmp_path / "cases-0.sqlite") as saver:
        assert saver.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
