from wanflow.run.scheduler import Scheduler


def test_ready_order_follows_dependencies():
    s = Scheduler({"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")})
    assert s.take() == ["a"]
    assert s.take() == []
    s.done("a")
    assert sorted(s.take()) == ["b", "c"]
    s.done("b")
    assert s.take() == []
    s.done("c")
    assert s.take() == ["d"]
    s.done("d")
    assert s.finished


def test_failure_skips_dependents_but_not_independent_work():
    s = Scheduler({"a": (), "b": ("a",), "c": ("b",), "x": ()})
    assert sorted(s.take()) == ["a", "x"]
    assert sorted(s.failed("a")) == ["b", "c"]
    assert s.skipped == {"b": "a", "c": "a"}
    assert not s.finished
    s.done("x")
    assert s.finished


def test_drop_forgets_unstarted_tasks():
    s = Scheduler({"a": (), "b": ()})
    s.take()
    s.done("a")
    s.drop(["b"])
    assert s.finished
