import pytest

from embedloop.service.admission import Admission, Overloaded


def busy(admission: Admission, tokens_per_s: float) -> Admission:
    """``admission`` after one full batch drained at ``tokens_per_s`` per slot."""
    admission.observe_batch(admission.min_batch, int(tokens_per_s), 1.0, now=0.0)
    return admission


def test_a_request_that_finds_nothing_pending_is_admitted_however_large():
    admission = busy(Admission(max_texts=10, max_wait_s=0.1), 100)
    with admission.admit(100, 10_000):  # 100 s of work
        assert (admission.pending_texts, admission.pending_tokens) == (100, 10_000)
    assert (admission.pending_texts, admission.pending_tokens) == (0, 0)


def test_reservations_last_until_the_request_ends_even_when_it_fails():
    admission = Admission(max_texts=10, max_wait_s=60)
    with pytest.raises(RuntimeError):
        with admission.admit(6, 60):
            admission.check(4, 40)  # fits exactly
            with pytest.raises(Overloaded):
                admission.check(5, 50)
            raise RuntimeError("the request failed")
    assert (admission.pending_texts, admission.pending_tokens) == (0, 0)
    admission.check(100, 1_000)


def test_the_text_limit_refuses_and_says_when_to_retry():
    admission = busy(Admission(max_texts=100, max_wait_s=60), 200)  # 200 tokens/s
    with admission.admit(90, 900):  # 10 tokens per text
        with pytest.raises(Overloaded) as refused:
            admission.check(50, 500)  # 40 texts over: 400 tokens, 2 s
    assert refused.value.retry_after_s == 2


def test_the_wait_limit_counts_tokens_at_the_drain_rate_of_every_slot():
    admission = busy(Admission(max_texts=10_000, max_wait_s=1.0, in_flight=2), 500)
    assert admission.drain_rate == 1_000  # tokens/s, two batches in flight
    with admission.admit(10, 600):
        admission.check(50, 200)  # 600 + 2 x 200 tokens: 1 s
        admission.check(1_000, 200)  # many texts are no problem if they are short
        with pytest.raises(Overloaded) as refused:
            admission.check(1, 1_500)  # one long document: 600 + 2 x 1,500 tokens, 2.6 s over
    assert refused.value.retry_after_s == 3
    assert "0.60 s of work and this request 1.50 s" in str(refused.value)


def test_large_requests_leave_room_for_small_ones():
    admission = busy(Admission(max_texts=10_000, max_wait_s=1.0), 1_000)
    with admission.admit(32, 500):
        with pytest.raises(Overloaded):
            admission.check(32, 300)  # 500 + 600 > 1,000
        admission.check(1, 20)  # 500 + 40: a question still fits


def test_a_reservation_is_corrected_once_its_tokens_are_counted():
    admission = busy(Admission(max_texts=100, max_wait_s=1.0), 1_000)
    with admission.admit(2, 100) as reservation:
        admission.settle(reservation, 900)  # longer than its body suggested
        assert admission.pending_tokens == 900
        with pytest.raises(Overloaded):
            admission.check(1, 100)
    assert admission.pending_tokens == 0


def test_the_drain_rate_comes_from_full_batches_and_forgets_old_ones():
    admission = Admission(max_texts=100, max_wait_s=1.0, min_batch=32)
    assert admission.drain_rate is None and admission.wait_s(1_000) == 0.0  # no rate yet: texts limit only
    admission.observe_batch(256, 4_096, 1.0, now=0.0)  # a deep queue of questions
    for i in range(20):
        admission.observe_batch(1, 16, 0.01, now=0.1 * i)  # quiet traffic: not counted
    assert admission.drain_rate == pytest.approx(4_096)
    admission.observe_batch(64, 1_024, 0.5, now=1.0)
    assert admission.drain_rate == pytest.approx((4_096 * 0.905 + 1_024) / (1.0 * 0.905 + 0.5), rel=0.01)
    admission.observe_batch(32, 9_600, 3.0, now=100.0)  # much later, long documents
    assert admission.drain_rate == pytest.approx(3_200, rel=0.01)


def test_a_body_is_estimated_at_the_tokens_per_byte_of_recent_requests():
    admission = Admission(max_texts=100, max_wait_s=60)
    assert admission.tokens_in(4_000) == 1_000  # before any request: 4 bytes per token
    assert admission.tokens_in(None) == 0
    for _ in range(100):
        admission.observe_request(1_000, 100)  # JSON around short texts: 10 bytes per token
    assert admission.tokens_in(4_000) == pytest.approx(400, rel=0.01)


def test_settling_a_reservation_teaches_the_tokens_per_byte():
    admission = Admission(max_texts=100, max_wait_s=60)
    with admission.admit(1, admission.tokens_in(1_000), 1_000) as reservation:
        admission.settle(reservation, 100)  # 10 bytes per token, not 4
    assert admission.tokens_per_byte == pytest.approx(0.25 + 0.1 * (0.1 - 0.25))
