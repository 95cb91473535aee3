import multiprocessing
import subprocess
import sys
import time

from embedloop.core.storage.database import open_engine
from embedloop.core.storage.lease import Lease


def test_one_holder_at_a_time_until_release_or_expiry(engine):
    first, second = Lease(engine, "daemon", ttl_s=0.5), Lease(engine, "daemon", ttl_s=0.5)
    assert first.acquire() and first.renew()
    assert not second.acquire()
    assert first.current()[0] == first.holder
    time.sleep(0.6)  # first stopped renewing
    assert second.acquire() and not first.renew()
    second.release()
    assert first.acquire()
    assert Lease(engine, "retrain", ttl_s=5).acquire()  # leases are independent by name


def race(url: str, start_at: float, results) -> None:  # noqa: ANN001
    engine = open_engine(url)
    lease = Lease(engine, "race", ttl_s=3600)
    time.sleep(max(0.0, start_at - time.time()))
    results.put(lease.acquire())
    engine.dispose()


def test_processes_racing_for_a_lease_get_one_winner(database_url):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    start_at = time.time() + 3  # all started and connected by then
    workers = [ctx.Process(target=race, args=(database_url, start_at, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sorted(outcomes) == [False, False, False, True]


def test_a_lease_of_a_killed_process_on_this_host_is_taken_over(database_url, engine):
    code = ("import sys; from embedloop.core.storage.database import open_engine; "
            "from embedloop.core.storage.lease import Lease; "
            f"assert Lease(open_engine({database_url!r}), 'job', 3600).acquire(); "
            "print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    waiting = Lease(engine, "job", 3600)
    assert not waiting.acquire()  # alive: its lease holds for an hour
    proc.kill()
    proc.wait()
    assert waiting.acquire()  # dead: no need to wait the hour out
