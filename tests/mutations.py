"""Switch each safety mechanism off, one at a time, and check that the tests named for it fail.

    python -m tests.mutations          # the unit tests named for each mechanism (a few minutes)
    python -m tests.mutations --e2e    # also the end-to-end tests (real servers; much longer)

Each mutation is a small edit to a copy of the sources; the checkout itself is never changed. A mechanism
whose tests still pass without it is reported, and the script exits 1: that test does not pin it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutation:
    mechanism: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]
    e2e: tuple[str, ...] = ()


MUTATIONS = (
    Mutation("the lease is checked before every write", "controller/applier.py",
             "            self._fence()\n", "            pass\n",
             ("tests/test_applier.py::test_after_the_lease_is_lost_nothing_more_is_written_and_every_step_left_is_skipped",
              "tests/test_applier.py::test_the_fence_is_checked_before_every_retry_too"),
             ("tests/e2e/test_lease_safety.py::test_an_apply_paused_past_its_lease_never_undoes_the_apply_that_took_over",)),
    Mutation("the holder judges its lease by its own clock", "controller/lease.py",
             "            if self._lost is None and self._clock() >= self._valid_until:",
             "            if False:",
             ("tests/test_lease.py::test_the_holder_judges_its_lease_by_its_own_clock_from_its_last_renewal",
              "tests/test_lease.py::test_a_holder_that_cannot_renew_loses_its_lease_and_does_not_release_it")),
    Mutation("a late renewal does not revive a lost lease", "controller/lease.py",
             "                self._valid_until = max(self._valid_until, sent + self.policy.ttl - self.policy.margin)",
             "                self._valid_until = self._clock() + self.policy.ttl - self.policy.margin",
             ("tests/test_lease.py::test_a_renewal_that_answers_late_does_not_revive_a_lost_lease",)),
    Mutation("failed renewals are retried", "controller/lease.py",
             "                wait = min(1.0, policy.renew_every / 2)", "                return",
             ("tests/test_lease.py::test_the_renewer_retries_failed_renewals_and_keeps_the_lease",)),
    Mutation("takeover only after a whole TTL of observation", "controller/lease.py",
             "        if now - since >= ttl:", "        if float(holder.get('expires_at', '0')) < time.time():",
             ("tests/test_lease.py::test_a_renewing_holder_keeps_a_waiter_out_whatever_its_wall_clock_says",),
             ("tests/e2e/test_lease_safety.py::test_a_runner_with_a_fast_clock_cannot_take_a_live_lease",)),
    Mutation("the record is read again just before a takeover deletes it", "controller/lease.py",
             "    if again is None or (again.get(\"owner\", \"\"), again.get(\"renewals\", \"\")) != stale:",
             "    if again is None:",
             ("tests/test_lease.py::test_a_renewal_between_the_two_reads_of_a_takeover_stops_it",)),
    Mutation("a takeover is checked after it settles", "controller/lease.py",
             "    if holder is None or holder.get(\"owner\") != owner:\n        return None\n    return Lease(",
             "    return Lease(",
             ("tests/test_lease.py::test_a_rival_taking_over_during_our_settle_wins_and_we_wait",)),
    Mutation("the release is retried", "controller/lease.py",
             "    def release(self, sleep: Callable[[float], None] = _sleep, attempts: int = 3) -> None:",
             "    def release(self, sleep: Callable[[float], None] = _sleep, attempts: int = 1) -> None:",
             ("tests/test_lease.py::test_release_is_retried_and_a_failure_is_reported_not_raised",)),
    Mutation("the read-back is compared with what the plan leads to", "controller/applier.py",
             "                if found:\n                    unexpected[name] = found", "                pass",
             ("tests/test_applier.py::test_an_effect_the_plan_did_not_lead_to_is_reported_and_no_archive_is_credited",)),
    Mutation("an archive is read back", "controller/applier.py",
             "    if version is not None and version.stage is step.to_stage:", "    if True:",
             ("tests/test_applier.py::test_a_promotion_that_archived_nothing_fails_the_archive_it_was_to_perform",)),
    Mutation("ownership is a model's first write", "controller/applier.py",
             "                registry.mark_managed(step.model, model_tags)\n", "",
             ("tests/test_applier.py::test_ownership_is_each_models_first_write_and_a_refusal_holds_only_that_model",)),
    Mutation("a model another file manages is refused", "controller/planner.py",
             "    if current is None or current == owner:", "    if True:",
             ("tests/test_planner.py::test_a_model_another_file_manages_is_a_violated_owner_gate_unless_adopted",),
             ("tests/e2e/test_lease_safety.py::test_a_model_another_stages_file_manages_is_refused_until_adopted",)),
    Mutation("only transient answers are retried", "controller/registry.py",
             "    return status is not None and (status in (408, 429) or status >= 500)", "    return True",
             ("tests/test_registry_errors.py",)),
    Mutation("a write of unknown outcome is read back first", "controller/applier.py",
             "                if done():\n                    return result()", "                pass",
             ("tests/test_applier.py::test_a_write_whose_reply_was_lost_is_read_back_not_repeated",),
             ("tests/e2e/test_faults.py::test_a_write_whose_reply_was_lost_is_read_back_not_sent_again",)),
    Mutation("bad input is refused before the registry is contacted", "controller/desired.py",
             "    if doc.problems:\n        raise ConfigError(tuple(sorted(doc.problems, key=lambda p: "
             "(p.line or 0, p.col or 0))))\n", "",
             ("tests/test_desired.py::test_all_problems_are_reported_at_once_in_file_order",),
             ("tests/e2e/test_corpus.py",)),
    Mutation("gates hold", "controller/planner.py",
             "        checks += _gates(model, have, model_steps, (staged_before or {}).get(model.name, {}))\n", "",
             ("tests/test_planner.py::test_require_tags_checks_each_version_entering_production",),
             ("tests/e2e/test_gates.py::test_require_tags_and_promote_from_violations_block_apply_with_no_write",)),
    Mutation("production is never empty while another version is promoted", "controller/planner.py",
             "    for stage in _SERVING:\n        steps = _atomic_promotion(steps, stage, have)\n", "",
             ("tests/test_planner.py::test_production_is_never_over_full_nor_emptied_needlessly",)),
    Mutation("secrets are masked in everything printed", "controller/uris.py",
             "    for secret in secrets() if known is None else known:\n        for form in _encodings(secret):\n"
             "            text = text.replace(form, MASK)\n", "",
             ("tests/test_uris.py::test_scrub_masks_known_secrets_in_every_encoding",),
             ("tests/e2e/test_secrets.py::test_no_command_leaks_a_secret_on_any_path",)),
    Mutation("stale saved plans are refused", "controller/savedplan.py",
             "        if fingerprint(now) == fingerprint(then):\n            continue\n",
             "        continue\n",
             (),
             ("tests/e2e/test_saved_plans.py::test_a_stale_saved_plan_is_refused_saying_what_changed_and_writes_nothing",)),
    Mutation("the plan is made again under the lease", "controller/commands/apply.py",
             "        plan, live = current_plan()  # what another apply did while we waited is live now",
             "        pass",
             (),
             ("tests/e2e/test_concurrency.py::test_an_apply_that_waited_for_the_lease_plans_again_under_it",)),
)


def _run(mutation: Mutation, tests: tuple[str, ...]) -> bool:
    """True when the tests fail with the mechanism switched off."""
    with tempfile.TemporaryDirectory(prefix="stagectl-mutant-") as tmp:
        copy = Path(tmp)
        for part in ("controller", "tests", "schemas", "pyproject.toml"):
            source = ROOT / part
            (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / part)
        target = copy / mutation.file
        text = target.read_text()
        if text.count(mutation.old) != 1:
            raise SystemExit(f"{mutation.file}: the code of '{mutation.mechanism}' moved; update tests/mutations.py")
        target.write_text(text.replace(mutation.old, mutation.new))
        env = {**os.environ, "PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                                 "-k", "not postgresql", *tests], cwd=copy, env=env, capture_output=True, text=True)
        return result.returncode != 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--e2e", action="store_true", help="also the end-to-end tests named for each mechanism")
    args = parser.parse_args()
    pinned = True
    for mutation in MUTATIONS:
        tests = mutation.tests + (mutation.e2e if args.e2e else ())
        if not tests:
            print(f"-  {mutation.mechanism}: end-to-end only (--e2e)")
            continue
        failed = _run(mutation, tests)
        pinned &= failed
        names = ", ".join(t.split("::")[-1] for t in tests)
        print(f"{'ok' if failed else 'NOT PINNED'}  {mutation.mechanism}: {names}", flush=True)
    return 0 if pinned else 1


if __name__ == "__main__":
    sys.exit(main())
