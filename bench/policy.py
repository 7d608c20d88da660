"""Part 5: policy decisions, the shipped Cedar policy through `Policy.decide` and `Policy.decide_many`.

In the bench process, one thread: load the policy once, then time single decisions over a mix
of representative requests (each call timed alone) and batches of 50 `room.see` decisions
(the rooms a caller may see), against the same 50 asked one at a time.
"""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

from policies import Policy, Principal, PrincipalKind, Resource, RoomRole

OFFICER = Principal("o1", "home", PrincipalKind.OFFICER)
GUEST = Principal("g1", "other", PrincipalKind.GUEST, agency="social-care")
SUPERVISOR = Principal("s1", "home", PrincipalKind.SUPERVISOR)
ROOM = Resource(room_key="OP-LANTERN", role=RoomRole.MEMBER)

# What the pipeline asks most: a command in a room, a guest's read, a refusal, an event.
MIX: tuple[tuple[str, Principal, str, Resource], ...] = (
    ("officer task.add (allow)", OFFICER, "task.add", ROOM),
    ("guest task.show (allow)", GUEST, "task.show", replace(ROOM, role=RoomRole.GUEST_VIEWER,
                                                            shared_with_caller=True)),
    ("officer room.close (deny)", OFFICER, "room.close", ROOM),
    ("supervisor audit.export (forbid)", SUPERVISOR, "audit.export", Resource(no_export=True)),
    ("officer event.installed (group)", OFFICER, "event.installed", Resource()),
)  # fmt: skip


@dataclass(frozen=True)
class PolicyConfig:
    """How many decisions to time."""

    decisions: int = 20_000
    warmup: int = 2_000
    batches: int = 300
    rooms: int = 50


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def _summary(samples_ns: list[int], per: int = 1) -> dict[str, float]:
    """p50, p99, mean in µs per call, and decisions per second over the whole run."""
    us = sorted(s / 1000 for s in samples_ns)
    total_s = sum(samples_ns) / 1e9
    rate = len(us) * per / total_s if total_s else 0.0
    return {"calls": len(us), "p50_us": _percentile(us, 0.5), "p99_us": _percentile(us, 0.99),
            "mean_us": statistics.fmean(us), "per_second": rate}  # fmt: skip


def _time_calls(call: Any, count: int) -> list[int]:
    samples: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(count):
        began = clock()
        call()
        samples.append(clock() - began)
    return samples


def _room(i: int) -> tuple[str, Resource]:
    """Some rooms the caller is in, some of their team's, the rest neither."""
    role = RoomRole.MEMBER if i % 4 == 0 else None
    return "room.see", replace(ROOM, room_key=f"OP-{i:03d}", room_in_team=i % 3 == 0, role=role)


def run(cfg: PolicyConfig | None = None) -> dict[str, Any]:
    """Measure; the results dict the report renders."""
    cfg = cfg or PolicyConfig()
    began = time.perf_counter()
    policy = Policy.load()
    policy.remember = False  # what a decision costs in Cedar; the bot remembers repeated ones
    load_ms = (time.perf_counter() - began) * 1000
    gc_was = gc.isenabled()
    gc.disable()  # a collection inside one timed call would be measured as the policy's
    try:
        for label, who, action, facts in MIX:
            decision = policy.decide(who, action, facts)
            assert decision.rule not in ("evaluation-error", "unknown-action"), (label, decision)
        per = max(1, cfg.decisions // len(MIX))
        single: dict[str, dict[str, float]] = {}
        every: list[int] = []
        for label, who, action, facts in MIX:
            _time_calls(lambda w=who, a=action, f=facts: policy.decide(w, a, f), cfg.warmup // len(MIX))
            samples = _time_calls(lambda w=who, a=action, f=facts: policy.decide(w, a, f), per)
            single[label] = _summary(samples)
            every += samples
        rooms = [_room(i) for i in range(cfg.rooms)]
        assert policy.decide_many(OFFICER, rooms) == [policy.decide(OFFICER, a, f) for a, f in rooms]
        _time_calls(lambda: policy.decide_many(OFFICER, rooms), max(1, cfg.batches // 10))
        batch = _time_calls(lambda: policy.decide_many(OFFICER, rooms), cfg.batches)
        loop = _time_calls(lambda: [policy.decide(OFFICER, a, f) for a, f in rooms], cfg.batches)
    finally:
        if gc_was:
            gc.enable()
    return {
        "policies": len(policy), "load_ms": load_ms, "rooms": cfg.rooms,
        "all": _summary(every), "single": single,
        "decide_many": _summary(batch, per=cfg.rooms), "decide_loop": _summary(loop, per=cfg.rooms),
    }  # fmt: skip


def summary_row(results: dict[str, Any]) -> str:
    """The target line for the summary table."""
    s = results["all"]
    met = "**met**" if s["p50_us"] < 200 else "**not met**"
    return (f"| one policy decision well under 1 ms (aim: < 0.2 ms) | p50 {s['p50_us']:.0f} µs, "
            f"p99 {s['p99_us']:.0f} µs, {s['per_second']:,.0f} decisions/s | {met} |")  # fmt: skip


def section(results: dict[str, Any]) -> list[str]:
    """The report section."""
    lines = [f"`policies/opsroom.cedar` ({results['policies']} policies) loaded and checked against its "
             f"schema in {results['load_ms']:.0f} ms, then timed in the bench process (one call per "
             "sample, garbage collector off while timing).", "",
             "| request | calls | p50 µs | p99 µs | mean µs | decisions/s |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, s in [*results["single"].items(), ("all of the above", results["all"])]:
        lines.append(f"| {label} | {s['calls']:,} | {s['p50_us']:.0f} | {s['p99_us']:.0f} | "
                     f"{s['mean_us']:.0f} | {s['per_second']:,.0f} |")  # fmt: skip
    many, loop, n = results["decide_many"], results["decide_loop"], results["rooms"]
    lines += ["", f"The rooms a caller may see: {n} `room.see` decisions per call.", "",
              "| how | calls | p50 ms | p99 ms | µs per decision (mean) | decisions/s |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for label, s in ((f"`decide_many` (one batch of {n})", many), (f"`decide` x {n}", loop)):
        lines.append(f"| {label} | {s['calls']:,} | {s['p50_us'] / 1000:.2f} | {s['p99_us'] / 1000:.2f} | "
                     f"{s['mean_us'] / n:.0f} | {s['per_second']:,.0f} |")  # fmt: skip
    return lines
