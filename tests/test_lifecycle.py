"""The run lifecycle's chunk loop (purerl.run.lifecycle.run_chunks) on a stand-in job that compiles nothing: when
it checkpoints, what a stop request, a second one and the non-finite guard leave, and what a run of several
processes agrees on. No signals, subprocesses or files: the stop requests and the store are plain objects."""

import numpy as np
import pytest

from purerl.run import lifecycle
from purerl.run.guard import find_non_finite
from purerl.run.signals import Abandon
from _helpers import StopIn


class Counter(lifecycle.Job):
    """A run whose state is the update count of 2 seeds and whose metric ``loss`` is the update number, NaN from
    update ``nan_at`` on."""

    def __init__(self, num_updates=10, every=3, save_every=False, nan_at=None, several=False, others_stop=()):
        self.num_updates, self.every, self.save_every, self.nan_at = num_updates, every, save_every, nan_at
        self.layout = lifecycle.Layout()
        self.layout.several = several
        self.others_stop = others_stop   # after these chunks another process got a stop signal
        self.chunks, self.logged_at = 0, []

    def chunk(self, state, done, n):
        self.chunks += 1
        updates = np.arange(done + 1, done + n + 1, dtype=np.float64)
        loss = np.where(updates >= (self.nan_at or np.inf), np.nan, updates)
        return state + n, {"loss": np.stack([loss, loss])}

    def check(self, metrics, state, first):
        return find_non_finite(metrics, state, first, flags=lambda s: {"count": np.isfinite(s)})

    def logged(self, metrics, first):
        self.logged_at.append(first)

    def any(self, flag):
        return flag or self.chunks in self.others_stop


class Saves:
    """A store that records the checkpoints it is asked for (step, state, how many log points of metrics) and
    its commits."""

    def __init__(self):
        self.steps, self.states, self.points, self.commits = [], [], [], 0

    def save(self, job, state, step, metrics):
        self.steps.append(step)
        self.states.append(state.tolist())
        self.points.append(metrics["loss"].shape[1] if metrics else 0)

    def commit(self):
        self.commits += 1


class AbandonIn(StopIn):
    """Two stop requests during chunk ``k``: it is abandoned."""

    def run(self, fn):
        self.calls += 1
        if self.calls == self.k:
            self.received += [2, 2]
            raise Abandon()
        return fn()

    abandon = property(lambda self: len(self.received) >= 2)


def _record(start=0, state=None):
    return lifecycle.Record(np.full(2, float(start)) if state is None else state, start, 10, start=start,
                            saved=start or None)


@pytest.mark.parametrize("save_every, saved", [(False, [10]), (True, [3, 6, 9, 10])])
def test_a_run_saves_at_its_end_or_after_every_chunk(save_every, saved):
    job, store = Counter(save_every=save_every), Saves()
    record = lifecycle.run_chunks(job, _record(), lifecycle.NoStops(), store)
    assert record.done == 10 and record.finished and not record.interrupted
    assert store.steps == store.points == saved             # each with the metrics up to it
    assert job.logged_at == [1, 4, 7, 10] and record.metrics["loss"][0].tolist() == list(range(1, 11))
    assert record.state.tolist() == [10, 10] and record.saved == 10


def test_a_stop_request_ends_the_run_after_the_running_chunk_saved():
    job, store = Counter(), Saves()
    record = lifecycle.run_chunks(job, _record(), StopIn(2), store)
    assert job.chunks == 2 and record.done == 6 and record.interrupted and store.steps == [6]
    assert store.states == [[6, 6]] and record.metrics["loss"].shape == (2, 6)


def test_a_second_stop_request_abandons_the_running_chunk_and_saves_the_last_finished_one():
    job, store = Counter(), Saves()
    record = lifecycle.run_chunks(job, _record(), AbandonIn(2), store)
    assert record.done == 3 and record.interrupted and store.steps == [3] and store.states == [[3, 3]]
    job, store = Counter(), Saves()
    record = lifecycle.run_chunks(job, _record(), AbandonIn(1), store)   # in the first chunk: the initial state
    assert record.done == 0 and store.steps == [0] and store.states == [[0, 0]]
    job, store = Counter(several=True), Saves()
    with pytest.raises(KeyboardInterrupt, match="without saving"):       # one process of several saves nothing
        lifecycle.run_chunks(job, _record(), AbandonIn(2), store)
    assert store.steps == []


def test_the_guard_keeps_the_state_before_the_bad_chunk_and_the_metrics_up_to_the_failure():
    job, store = Counter(nan_at=5), Saves()
    record = lifecycle.run_chunks(job, _record(), lifecycle.NoStops(), store)
    assert record.error is not None and record.error.update == 5 and record.error.quantity == "loss"
    assert record.done == 3 and store.steps == store.points == [3] and store.states == [[3, 3]]
    assert store.commits == 1
    assert record.metrics["loss"].shape == (2, 6) and np.isnan(record.metrics["loss"][0, 4])   # the bad chunk too
    assert job.logged_at == [1]                          # the bad chunk is not logged
    job, store = Counter(nan_at=2), Saves()              # in the first chunk: nothing to keep, but files to read
    record = lifecycle.run_chunks(job, _record(), lifecycle.NoStops(), store)
    assert record.error.update == 2 and store.steps == [] and store.commits == 1


def test_a_resumed_run_continues_where_its_checkpoint_is_and_saves_no_step_twice():
    job, store = Counter(nan_at=8), Saves()
    record = lifecycle.run_chunks(job, _record(start=6), lifecycle.NoStops(), store)
    assert record.error.update == 8 and store.steps == [] and record.done == 6   # the checkpoint at 6 is there
    job, store = Counter(), Saves()
    record = lifecycle.run_chunks(job, _record(start=6), lifecycle.NoStops(), store)
    assert job.chunks == 2 and record.done == 10 and store.steps == [10] and record.start == 6


def test_every_process_stops_after_the_chunk_in_which_any_got_a_stop_signal():
    job, store = Counter(several=True, others_stop=(2,)), Saves()
    record = lifecycle.run_chunks(job, _record(), lifecycle.NoStops(), store)
    assert record.done == 6 and record.interrupted and store.steps == [6]


def test_the_first_stop_message_says_what_happens():
    job = Counter()
    assert job.describe(3) == "stopping after the running chunk (updates 4-6 of 10) and saving the run"
    job.kind, job.layout.primary = "sweep", False
    assert job.describe(9) == "stopping after the running chunk (updates 10-10 of 10); process 0 saves the sweep"
    assert [lifecycle.chunk_length(n) for n in (8, 100, 7, 3)] == [1, 10, 1, 1]
    assert lifecycle.chunk_length(100, 7) == 7
