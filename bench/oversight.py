"""Misuse monitoring, measured: a simulated month of a force's use with known misuse injected.

    python -m bench.oversight [--seed N] [--days 30] [--also 2,3] [--rules FILE]

Writes a seeded trail (40 agencies, 400 people, 50 rooms with their own working hours, shifts,
weekends, busy leads, benign noise), injects instances of each rule's pattern by random people at
random times, feeds every event in seq order to the real `core.oversight.engine.Engine` with the
shipped rules, and scores: an alert matches an injection when it has the same rule and subject and
its time is within the injection's span plus the rule's window. Per rule and overall: the share of
injections detected, and false alerts per 1,000 user-days (people x days). An alert about a person
during an injected pattern of another rule (four refusals while probing for rooms) is counted apart,
as incidental: it is about real misuse, if not the pattern that was injected.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench import oversight_misuse as misuse
from bench import oversight_trail as trail
from core.oversight import rules as oversight_rules
from core.oversight.engine import Alert, Engine

SEED = 20260302
ALSO = (1, 2, 3)
DAYS = 30
TARGET_DETECTED, TARGET_FALSE = 0.95, 1.0
ZONE = "Europe/London"


@dataclass
class Score:
    """One rule's (or every rule's) figures."""

    injected: int = 0
    detected: int = 0
    alerts: int = 0
    false: int = 0
    incidental: int = 0
    missed: list[str] = field(default_factory=list)

    def share(self) -> float:
        return self.detected / self.injected if self.injected else 1.0


def _matches(alert: Alert, inj: trail.Injection, window: timedelta) -> bool:
    return alert.subject == inj.subject and inj.start <= alert.at <= inj.end + window


def score(alerts: list[Alert], injections: list[trail.Injection],
          rules: oversight_rules.Rules) -> dict[str, Score]:  # fmt: skip
    """Per rule id, and "overall": injections detected, and alerts that match none."""
    windows = {r.id: r.window or timedelta(0) for r in rules.rules}
    scores = {rule_id: Score() for rule_id in oversight_rules.RULE_IDS}
    by_subject: dict[str, list[trail.Injection]] = {}
    for inj in injections:
        by_subject.setdefault(inj.subject, []).append(inj)
    for alert in alerts:
        s = scores[alert.rule]
        s.alerts += 1
        mine = by_subject.get(alert.subject, [])
        if any(inj.rule == alert.rule and _matches(alert, inj, windows[alert.rule]) for inj in mine):
            continue
        if any(_matches(alert, inj, max(windows[alert.rule], windows[inj.rule])) for inj in mine):
            s.incidental += 1
        else:
            s.false += 1
    for inj in injections:
        s = scores[inj.rule]
        s.injected += 1
        if any(a.rule == inj.rule and _matches(a, inj, windows[inj.rule]) for a in alerts):
            s.detected += 1
        else:
            s.missed.append(inj.what)
    overall = Score()
    for s in scores.values():
        for name in ("injected", "detected", "alerts", "false", "incidental"):
            setattr(overall, name, getattr(overall, name) + getattr(s, name))
    return scores | {"overall": overall}


def simulate(seed: int = SEED, days: int = DAYS, rules_file: Path | None = None) -> dict[str, Any]:
    """One month: generate, feed, score. Returns JSON-able figures."""
    rules = oversight_rules.load(rules_file)
    began = time.perf_counter()
    world = trail.World.make(random.Random(seed), days)
    events, injections = misuse.generate(world, random.Random(seed + 1), rules)
    made = time.perf_counter() - began
    hours = {room.key: room.hours for room in world.rooms}
    engine = Engine(rules, timezone=ZONE, room_hours=hours.get)
    began = time.perf_counter()
    alerts: list[Alert] = []
    most = 0
    for seen in events:
        alerts += engine.feed(seen)
        if seen.seq % 1000 == 0:
            most = max(most, sum(engine.state_size()))
    fed = time.perf_counter() - began
    user_days = len(world.people) * days
    scores = score(alerts, injections, rules)
    per_rule = {}
    for rule_id, s in scores.items():
        per_rule[rule_id] = {"injected": s.injected, "detected": s.detected, "share": s.share(),
                             "alerts": s.alerts, "false": s.false, "incidental": s.incidental,
                             "false_per_1000": s.false / user_days * 1000,
                             "missed": s.missed[:5]}  # fmt: skip
    false_alerts = [a.summary for a in alerts if _false(a, scores, injections, rules)]
    kinds = {k: sum(p.kind == k for p in world.people) for k in ("officer", "guest", "supervisor")}
    return {"seed": seed, "days": days, "start": world.start.isoformat(), "people": len(world.people),
            "kinds": kinds, "leads": sum(p.lead for p in world.people), "agencies": len(world.agencies),
            "rooms": len(world.rooms), "events": len(events), "user_days": user_days,
            "denied_share": sum(e.decision == "deny" for e in events) / len(events),
            "generate_seconds": made, "feed_seconds": fed, "feed_us_per_event": fed / len(events) * 1e6,
            "most_state": most, "rules": per_rule, "false_examples": false_alerts[:6],
            "sample_alerts": [a.summary for a in alerts[:: max(1, len(alerts) // 5)]][:5]}  # fmt: skip


def _false(alert: Alert, scores: dict[str, Score], injections: list[trail.Injection],
           rules: oversight_rules.Rules) -> bool:  # fmt: skip
    windows = {r.id: r.window or timedelta(0) for r in rules.rules}
    return not any(_matches(alert, inj, max(windows[alert.rule], windows[inj.rule])) for inj in injections
                   if inj.subject == alert.subject)  # fmt: skip


def run(seed: int = SEED, days: int = DAYS, also: tuple[int, ...] = ALSO) -> dict[str, Any]:
    """The month with `seed`, then the same with each of `also` (detection and false alerts only)."""
    out = simulate(seed, days)
    _print(out)
    out["other_seeds"] = []
    for other in also:
        o = simulate(other, days)
        overall = o["rules"]["overall"]
        worst = min(r["share"] for k, r in o["rules"].items() if k != "overall" and r["injected"])
        out["other_seeds"].append({"seed": other, "events": o["events"], "share": overall["share"],
                                   "worst_rule_share": worst, "false": overall["false"],
                                   "false_per_1000": overall["false_per_1000"]})  # fmt: skip
        print(
            f"  seed {other}: detected {overall['share']:.1%} (worst rule {worst:.1%}), "
            f"{overall['false']} false alerts ({overall['false_per_1000']:.2f} per 1,000 user-days)"
        )
    return out


def _print(out: dict[str, Any]) -> None:
    print(f"seed {out['seed']}: {out['events']:,} events, {out['people']} people x {out['days']} days; "
          f"fed in {out['feed_seconds']:.1f} s ({out['feed_us_per_event']:.1f} us/event)")  # fmt: skip
    for rule_id, r in out["rules"].items():
        print(
            f"  {rule_id:18} injected {r['injected']:3} detected {r['share']:6.1%}  alerts {r['alerts']:3} "
            f"false {r['false']:2} ({r['false_per_1000']:.2f}/1,000 user-days) incidental {r['incidental']}"
        )
    for text in out["false_examples"]:
        print(f"  false: {text}")


def summary_rows(d: dict[str, Any]) -> list[str]:
    """The issue's targets for misuse monitoring, each with its figure."""
    overall = d["rules"]["overall"]
    rules = [(k, r) for k, r in d["rules"].items() if k != "overall"]
    worst_id, worst = min(rules, key=lambda kr: kr[1]["share"])
    met = {True: "**met**", False: "**not met**"}
    rows = [
        f"| misuse detected >= 95%, overall and per rule (simulated month, seed {d['seed']}) "
        f"| {overall['share']:.1%} overall; lowest rule {worst_id} {worst['share']:.1%} "
        f"| {met[overall['share'] >= TARGET_DETECTED and worst['share'] >= TARGET_DETECTED]} |",
        f"| <= 1 false alert per 1,000 user-days | {overall['false_per_1000']:.2f} ({overall['false']} in "
        f"{d['user_days']:,} user-days) | {met[overall['false_per_1000'] <= TARGET_FALSE]} |",
    ]  # fmt: skip
    others = d.get("other_seeds", [])
    if others:
        figures = "; ".join(f"seed {s['seed']}: {s['share']:.1%} (lowest rule {s['worst_rule_share']:.1%}), "
                            f"{s['false_per_1000']:.2f}" for s in others)  # fmt: skip
        ok = all(
            s["worst_rule_share"] >= TARGET_DETECTED and s["false_per_1000"] <= TARGET_FALSE for s in others
        )
        rows.append(f"| the same, other seeds | {figures} | {met[ok]} |")
    return rows


def section(d: dict[str, Any]) -> list[str]:
    """Per rule figures, the other seeds, and what the simulation assumes."""
    k = d["kinds"]
    lines = [f"`python -m bench.oversight --seed {d['seed']} --days {d['days']}`: {d['people']} people "
             f"({k['officer']} officers of whom {d['leads']} room leads, {k['supervisor']} supervisors, "
             f"{k['guest']} guests of {d['agencies']} agencies), {d['rooms']} rooms, {d['days']} days from "
             f"{d['start'][:10]} (the clocks change on the 29th of March), {d['events']:,} events "
             f"({d['denied_share']:.1%} refused), {d['user_days']:,} user-days. The engine with "
             f"`policies/oversight.toml` took {d['feed_us_per_event']:.1f} us per event "
             f"({d['feed_seconds']:.1f} s in all), holding at most {d['most_state']:,} windows and "
             "cooldowns.", "",
             "| rule | injected | detected | alerts | false | false per 1,000 user-days | incidental | "
             "target | |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for rule_id, r in d["rules"].items():
        ok = r["share"] >= TARGET_DETECTED and (rule_id != "overall" or r["false_per_1000"] <= TARGET_FALSE)
        target = ">= 95%" + (", <= 1" if rule_id == "overall" else "")
        lines.append(f"| {rule_id} | {r['injected']} | {r['detected']} ({r['share']:.1%}) | {r['alerts']} | "
                     f"{r['false']} | {r['false_per_1000']:.2f} | {r['incidental']} | {target} | "
                     f"{'**met**' if ok else '**not met**'} |")  # fmt: skip
    lines += ["", "Other seeds (same month, same rules):", "",
              "| seed | events | detected | lowest rule | false alerts | per 1,000 user-days |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    for s in d.get("other_seeds", []):
        lines.append(f"| {s['seed']} | {s['events']:,} | {s['share']:.1%} | {s['worst_rule_share']:.1%} | "
                     f"{s['false']} | {s['false_per_1000']:.2f} |")  # fmt: skip
    if d.get("false_examples"):
        lines += ["", "False alerts (seed {}), as supervisors would read them:".format(d["seed"]), ""]
        lines += [f"- {text}" for text in d["false_examples"]]
    missed = [(k, m) for k, r in d["rules"].items() if k != "overall" for m in r["missed"]]
    if missed:
        lines += ["", "Injected misuse not detected (seed {}):".format(d["seed"]), ""]
        lines += [f"- {k}: {m}" for k, m in missed]
    return [*lines, "", trail.ASSUMPTIONS]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.oversight", description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=SEED, help=f"the month's seed ({SEED})")
    p.add_argument("--days", type=int, default=DAYS, help=f"days simulated ({DAYS})")
    p.add_argument("--also", default="", help="more seeds to run, comma-separated (none)")
    p.add_argument("--rules", type=Path, help="a rules file (policies/oversight.toml)")
    args = p.parse_args(argv)
    out = simulate(args.seed, args.days, args.rules)
    _print(out)
    for other in (int(s) for s in args.also.split(",") if s.strip()):
        _print(simulate(other, args.days, args.rules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
