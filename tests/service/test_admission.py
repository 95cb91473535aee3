import pytest

from embedloop.service.admission import Admission, Overloaded


def test_a_request_that_finds_nothing_pending_is_admitted_however_large():
    admission = Admission(max_texts=10, max_wait_s=0.1)
    admission.observe_batch(10, 1.0)  # 10 texts/s: 100 texts would wait 10 s
    with admission.admit(100):
        assert admission.pending == 100
    assert admission.pending == 0


def test_texts_are_reserved_until_the_request_ends_even_when_it_fails():
    admission = Admission(max_texts=10, max_wait_s=60)
    with pytest.raises(RuntimeError):
        with admission.admit(6):
            admission.check(4)  # fits exactly
            with pytest.raises(Overloaded):
                admission.check(5)
            raise RuntimeError("the request failed")
    assert admission.pending == 0
    admission.check(100)


def test_the_text_limit_refuses_and_says_when_to_retry():
    admission = Admission(max_texts=100, max_wait_s=60)
    admission.observe_batch(20, 1.0)  # 20 texts/s
    with admission.admit(90):
        with pytest.raises(Overloaded) as refused:
            admission.check(50)  # 40 over the limit: 2 s at 20 texts/s
    assert refused.value.retry_after_s == 2


def test_the_wait_limit_follows_the_measured_drain_rate_of_every_slot():
    admission = Admission(max_texts=10_000, max_wait_s=1.0, in_flight=2)
    admission.observe_batch(50, 1.0)  # 50 texts/s per slot, 100 with two batches in flight
    assert admission.drain_rate == 100
    with admission.admit(80):
        admission.check(20)  # 100 texts: 1 s of wait
        with pytest.raises(Overloaded) as refused:
            admission.check(300)  # 380 texts: 3.8 s, 2.8 s more than allowed
    assert refused.value.retry_after_s == 3
    assert "3.8 s" in str(refused.value)


def test_the_drain_rate_weighs_batches_by_size_and_forgets_old_ones():
    admission = Admission(max_texts=100, max_wait_s=1.0)
    assert admission.drain_rate is None and admission.wait_s(1_000) == 0.0  # no rate yet: texts limit only
    admission.observe_batch(256, 1.0, now=0.0)  # a deep queue drains at 256 texts/s
    for i in range(20):
        admission.observe_batch(1, 0.01, now=0.1 * i)  # single texts in between: 100 texts/s each
    assert admission.drain_rate == pytest.approx((256 + 20) / 1.2, rel=0.02)
    admission.observe_batch(0, 0.0)  # nothing computed: ignored
    admission.observe_batch(50, 1.0, now=100.0)  # much later, traffic of long texts
    assert admission.drain_rate == pytest.approx(50, rel=0.01)


def test_a_body_is_guessed_at_half_the_texts_its_length_suggests():
    admission = Admission(max_texts=100, max_wait_s=60)
    assert admission.texts_in(10_000) == 1  # nothing seen yet: one text
    admission.observe_request(6_400, 100)  # 64 bytes per text
    assert admission.texts_in(6_400) == 50
    assert admission.texts_in(None) == admission.texts_in(10) == 1
    with admission.admit(60):
        admission.check(admission.texts_in(64 * 80))  # 40 guessed: fits
        with pytest.raises(Overloaded):
            admission.check(admission.texts_in(64 * 100))
