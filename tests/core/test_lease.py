import time

from embedloop.core.lease import Lease


def test_one_holder_at_a_time_until_release_or_expiry(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    first, second = Lease(url, "daemon", ttl_s=0.5), Lease(url, "daemon", ttl_s=0.5)
    assert first.acquire() and first.renew()
    assert not second.acquire()
    assert first.current()[0] == first.holder
    time.sleep(0.6)  # first stopped renewing
    assert second.acquire() and not first.renew()
    second.release()
    assert first.acquire()
    assert Lease(url, "retrain", ttl_s=5).acquire()  # leases are independent by name


def test_a_lease_of_a_killed_process_on_this_host_is_taken_over(tmp_path):
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'lease.db'}"
    code = ("import sys; from embedloop.core.lease import Lease; "
            f"assert Lease({url!r}, 'job', 3600).acquire(); print('held', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    waiting = Lease(url, "job", 3600)
    assert not waiting.acquire()  # alive: its lease holds for an hour
    proc.kill()
    proc.wait()
    assert waiting.acquire()  # dead: no need to wait the hour out
