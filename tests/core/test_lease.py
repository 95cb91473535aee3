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
