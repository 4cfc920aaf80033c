"""CountingToggleSet behaves as kopf's ToggleSet, without waking every waiter per object.

The reference is kopf's own class (kopf._cogs.aiokits.aiotoggles.ToggleSet, kept aside
before `install()` replaces it): the same operations are applied to both and their states
compared after each one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from costgov.handlers.toggles import CountingToggleSet

KOPFS = CountingToggleSet.__mro__[1]
"""kopf's own class (`install()` may have replaced the module's name already)."""

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("make"), st.booleans()),
        st.tuples(st.just("drop"), st.integers(0, 20)),
        st.tuples(st.just("turn"), st.integers(0, 20), st.booleans()),
    ),
    max_size=40,
)


async def _play(kind: Any, fn: Any, ops: list[Any]) -> list[bool]:
    toggles_set = kind(fn)
    made: list[Any] = []
    states = []
    for op in ops:
        if op[0] == "make":
            made.append(await toggles_set.make_toggle(op[1]))
        elif op[0] == "drop" and made:
            await toggles_set.drop_toggle(made[op[1] % len(made)])
        elif op[0] == "turn" and made:
            await made[op[1] % len(made)].turn_to(op[2])
        states.append(toggles_set.is_on())
    return states


@settings(max_examples=300, deadline=None)
@given(ops=OPS, fn=st.sampled_from([all, any]))
def test_the_same_states_as_kopfs_toggle_set(ops: list[Any], fn: Any) -> None:
    ours = asyncio.run(_play(CountingToggleSet, fn, ops))
    theirs = asyncio.run(_play(KOPFS, fn, ops))
    assert ours == theirs


def test_the_waiters_wake_when_the_set_or_their_toggle_turns() -> None:
    async def scenario() -> None:
        indexed = CountingToggleSet(all)
        resource = await indexed.make_toggle(False)
        objects = [await indexed.make_toggle(False) for _ in range(3)]
        whole = asyncio.create_task(indexed.wait_for(True))
        one = asyncio.create_task(resource.wait_for(True))
        await asyncio.sleep(0)
        for toggle in objects:
            await indexed.drop_toggle(toggle)
        await asyncio.sleep(0)
        assert not whole.done() and not one.done()
        await resource.turn_to(True)  # the last one off turns on: the set is on
        await asyncio.wait_for(asyncio.gather(whole, one), 1)
        assert indexed.is_on()

    asyncio.run(scenario())


def test_listing_many_objects_wakes_the_waiters_once_not_once_per_object() -> None:
    # kopf's start-up: a toggle per listed object, each object's worker waiting for the
    # whole set, each toggle dropped once its object is indexed.
    async def start_up(kind: Any, objects: int) -> int:
        indexed = kind(all)
        listing = await indexed.make_toggle(False)  # the resource kind's own listing
        woken = 0
        original = indexed._condition.notify_all

        def counting() -> None:
            nonlocal woken
            woken += len(indexed._condition._waiters)
            original()

        indexed._condition.notify_all = counting
        workers = []
        for _ in range(objects):
            toggle = await indexed.make_toggle(False)
            workers.append(asyncio.create_task(indexed.wait_for(True)))
            await asyncio.sleep(0)
            await indexed.drop_toggle(toggle)
        await listing.turn_to(True)
        await asyncio.wait_for(asyncio.gather(*workers), 5)
        return woken

    ours = asyncio.run(start_up(CountingToggleSet, 300))
    theirs = asyncio.run(start_up(KOPFS, 300))
    assert ours == 300  # every worker woken once, when the listing ended
    assert theirs > 300 * 299  # kopf's: every worker woken at every later object's toggle
