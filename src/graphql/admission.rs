//! The in-flight cost budget, shared fairly between callers.
//!
//! An operation waits here for as many units as it costs (at most one
//! caller's share) before it executes, and gives them back when it ends: the
//! memory of requests in flight grows with the answers they build, and a few
//! dozen deep pages at once would hold hundreds of MiB where running them a
//! few at a time is as fast on the same cores.
//!
//! What it guarantees:
//! - at most `budget` units are held at once;
//! - one operation never reserves more than `share` units, so no single
//!   operation holds the whole budget while everyone queues behind it;
//! - while another caller waits, no caller is granted units that would take
//!   it over `share` in all: a script firing deep pages from many connections
//!   keeps its share and the support desk gets the rest; a caller alone may
//!   use the whole budget (nothing is left idle);
//! - among the waiters that may go, first come, first served: the first one
//!   that does not fit yet stops the others behind it, so a large operation is
//!   not overtaken forever by small ones.
//!
//! A waiter that goes away (its client disconnected, its time ran out) is
//! dropped from the queue, and units granted to it are given back at once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The budget and who holds what of it.
pub struct Admission {
    budget: u32,
    share: u32,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Most units one caller may hold while others wait.
    share: u32,
    free: u32,
    /// Units held, by caller.
    held: HashMap<String, u32>,
    /// Waiters in arrival order.
    queue: VecDeque<Waiter>,
}

struct Waiter {
    caller: String,
    units: u32,
    /// Where its turn is sent once granted. The turn travels in the channel,
    /// so units granted to a waiter that goes away before it is polled again
    /// (its client disconnected just then) come back when the channel drops
    /// the turn: none can leak.
    wake: oneshot::Sender<Turn>,
}

/// Units held by one operation; given back when dropped.
pub struct Turn {
    state: Arc<Mutex<State>>,
    caller: String,
    units: u32,
}

impl Admission {
    /// `budget` units in all; one caller holds at most `share_percent` % of
    /// them while others wait (at least one unit).
    pub fn new(budget: u32, share_percent: u8) -> Self {
        let budget = budget.max(1);
        let share =
            (u64::from(budget) * u64::from(share_percent.clamp(1, 100)) / 100).max(1) as u32;
        Self {
            budget,
            share,
            state: Arc::new(Mutex::new(State {
                share,
                free: budget,
                ..State::default()
            })),
        }
    }

    /// The units one operation of `cost` reserves.
    pub fn units(&self, cost: u64) -> u32 {
        cost.clamp(1, u64::from(self.share)) as u32
    }

    /// The budget's size.
    pub fn budget(&self) -> u32 {
        self.budget
    }

    /// Waits until `caller` may run an operation of `cost`.
    pub async fn acquire(&self, caller: &str, cost: u64) -> Turn {
        let units = self.units(cost);
        let (wake, woken) = oneshot::channel();
        match self.state.lock() {
            Ok(mut state) => {
                state.queue.push_back(Waiter {
                    caller: caller.to_owned(),
                    units,
                    wake,
                });
                dispatch(&self.state, &mut state);
            }
            // Poisoned (a panic elsewhere): go on, uncounted, rather than
            // wait on a channel nobody can send on.
            Err(_) => drop(wake),
        }
        match woken.await {
            Ok(turn) => turn,
            // A closed channel means the state's lock was poisoned (a panic
            // elsewhere): go on rather than hang; the units are not counted
            // then.
            Err(_) => Turn {
                state: self.state.clone(),
                caller: caller.to_owned(),
                units: 0,
            },
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // A turn of no units holds nothing (and must not lock: `dispatch`
        // drops such turns while it holds the lock).
        if self.units == 0 {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            release(&mut state, &self.caller, self.units);
            dispatch(&self.state, &mut state);
        }
    }
}

fn release(state: &mut State, caller: &str, units: u32) {
    state.free = state.free.saturating_add(units);
    if let Some(held) = state.held.get_mut(caller) {
        *held = held.saturating_sub(units);
        if *held == 0 {
            state.held.remove(caller);
        }
    }
}

/// Grants what may go now, in arrival order. `shared` is the lock `state`
/// was taken from: each granted turn gives its units back through it.
fn dispatch(shared: &Arc<Mutex<State>>, state: &mut State) {
    let share = state.share;
    let mut i = 0;
    while i < state.queue.len() {
        if state.queue[i].wake.is_closed() {
            state.queue.remove(i);
            continue;
        }
        let waiter = &state.queue[i];
        let held = state.held.get(&waiter.caller).copied().unwrap_or(0);
        let within_share = held.saturating_add(waiter.units) <= share;
        let others_wait = state
            .queue
            .iter()
            .any(|o| o.caller != waiter.caller && !o.wake.is_closed());
        if !within_share && others_wait {
            i += 1;
            continue;
        }
        if waiter.units > state.free {
            break;
        }
        let Some(waiter) = state.queue.remove(i) else {
            break;
        };
        state.free -= waiter.units;
        *state.held.entry(waiter.caller.clone()).or_default() += waiter.units;
        let turn = Turn {
            state: shared.clone(),
            caller: waiter.caller.clone(),
            units: waiter.units,
        };
        if let Err(mut turn) = waiter.wake.send(turn) {
            // Gone between the check and now: give the units back here (the
            // lock is held: the turn is emptied before it drops).
            release(state, &turn.caller, turn.units);
            turn.units = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn granted(f: impl std::future::Future<Output = Turn>) -> Option<Turn> {
        tokio::time::timeout(Duration::from_millis(50), f)
            .await
            .ok()
    }

    #[tokio::test]
    async fn one_operation_never_holds_more_than_a_share() {
        let admission = Admission::new(100, 50);
        assert_eq!(admission.units(1_000_000), 50);
        let greedy = admission.acquire("script", 1_000_000).await;
        // Another caller still gets in at once.
        let person = granted(admission.acquire("alice", 10)).await;
        assert!(person.is_some());
        drop(greedy);
    }

    #[tokio::test]
    async fn a_caller_alone_may_use_everything_but_not_while_others_wait() {
        let admission = Arc::new(Admission::new(100, 50));
        let a = admission.acquire("script", 40).await;
        let b = admission.acquire("script", 40).await; // alone: over its share
        // alice waits for room (20 free, she needs 30) …
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.acquire("alice", 30).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // … and meanwhile the script is not let further over its share.
        assert!(granted(admission.acquire("script", 10)).await.is_none());
        drop(a);
        let alice = tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("alice is served once room is freed")
            .expect("task");
        drop((b, alice));
    }

    /// A waiter granted its units and then dropped before it ran again (its
    /// client went away at that moment, as every connection of a load test
    /// does when it ends) gives them back: the budget never shrinks.
    #[tokio::test]
    async fn units_granted_to_a_waiter_that_is_gone_before_it_runs_come_back() {
        let admission = Arc::new(Admission::new(10, 100));
        let all = admission.acquire("a", 10).await;
        let waiting = {
            let admission = admission.clone();
            tokio::spawn(async move { admission.acquire("b", 10).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Its turn is granted, and the task is cancelled before it is polled.
        drop(all);
        waiting.abort();
        let _ = waiting.await;
        assert!(
            granted(admission.acquire("c", 10)).await.is_some(),
            "the whole budget is free again"
        );
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place() {
        let admission = Admission::new(10, 100);
        let all = admission.acquire("a", 10).await;
        assert!(granted(admission.acquire("b", 5)).await.is_none());
        drop(all);
        // The timed-out waiter is gone: the full budget is free again.
        assert!(granted(admission.acquire("c", 10)).await.is_some());
    }
}
