"""The periodic schedule reconciles with rq-scheduler on real Redis."""

from workers.schedule import PREFIX, Periodic, declared, make_scheduler, reconcile


def _scheduled(scheduler):
    return {job.id: job for job in scheduler.get_jobs() if job.id.startswith(PREFIX)}


def test_reconcile_adds_keeps_and_cancels(redis):
    scheduler = make_scheduler(redis, "mail")
    wanted = [Periodic("a", "workers.jobs.dispatch_fetches", 60)]
    assert reconcile(scheduler, wanted, "mail")["added"] == ["periodic:a"]
    assert reconcile(scheduler, wanted, "mail") == {
        "added": [],
        "cancelled": [],
        "kept": ["periodic:a"],
    }
    changed = [Periodic("a", "workers.jobs.dispatch_fetches", 120)]
    result = reconcile(scheduler, changed, "mail")
    assert result["cancelled"] == ["periodic:a"] and result["added"] == ["periodic:a"]
    assert _scheduled(scheduler)["periodic:a"].meta["interval"] == 120
    assert reconcile(scheduler, [], "mail")["cancelled"] == ["periodic:a"]
    assert _scheduled(scheduler) == {}


def test_restarting_the_scheduler_never_duplicates_jobs(redis, db):
    wanted = declared(db)
    for _ in range(3):
        reconcile(make_scheduler(redis, "mail"), wanted, "mail")
    assert sorted(_scheduled(make_scheduler(redis, "mail"))) == [
        "periodic:dispatch-fetches",
        "periodic:mass-mail",
        "periodic:sweep-outbox",
    ]


def test_the_outbox_sweeper_is_declared(db):
    sweeper = {p.name: p for p in declared(db)}["sweep-outbox"]
    assert sweeper.func == "workers.jobs.sweep_outbox" and sweeper.interval <= 60


def test_fetch_period_comes_from_the_admin_setting(db):
    from crm import settings

    settings.put(db, "fetch_period_seconds", 300)
    assert declared(db)[0].interval == 300


def test_periodic_jobs_are_json_serialised(redis, db):
    scheduler = make_scheduler(redis, "mail")
    reconcile(scheduler, declared(db), "mail")
    raw = redis.hget("rq:job:periodic:dispatch-fetches", "data")
    assert raw.startswith(b"x") or raw.lstrip().startswith(b"[")  # zlib-compressed JSON or JSON
