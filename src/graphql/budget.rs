//! Fair use over time: a cost budget per caller and minute
//! (`BACKPLANE_PERSON_COST_PER_MINUTE`, `BACKPLANE_SERVICE_COST_PER_MINUTE`).
//!
//! Each caller (by subject) has a token bucket of a minute's budget, refilled
//! evenly (GCRA, governor's keyed limiter): a person may spend the whole
//! minute at once and then gets budget back at `budget / 60` units a second.
//! An operation is charged its cost as the gate measured it, at most one
//! minute's budget (so that no single operation is refused forever). Past the
//! budget the operation is refused before it runs: 429 with `Retry-After`
//! and the IETF `RateLimit` / `RateLimit-Policy` fields, and
//! `LIMIT_EXCEEDED`. Budgets are per instance: behind a load balancer with N
//! instances a caller may spend up to N budgets.
//!
//! What runs at once is shared fairly by `admission` (a caller's share of
//! the in-flight cost while others wait); this bounds what one caller takes
//! over a minute.
//!
//! A caller refused is told when to come back (`Retry-After`). Until then,
//! its requests are refused before anything of them is read
//! ([`Budgets::early`]), and held back as long as it should have waited (at
//! most [`MAX_HOLD`]), [`MAX_HELD`] of them at a time: a script that hammers
//! on without waiting gets its refusals at the pace it was asked to keep, and
//! the people sharing the cores keep them. Past `MAX_HELD`, refusals are
//! answered at once (a lookup each, no parse), so that one caller never
//! holds more than that many of the server's requests in flight.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::identity::{Principal, PrincipalKind};

/// The budgets as configured; `None` is no per-minute budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FairUse {
    pub person_per_minute: Option<u32>,
    pub service_per_minute: Option<u32>,
}

type Limiter =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One kind of caller's buckets.
struct Buckets {
    /// The policy's name in `RateLimit-Policy`: `person` or `service`.
    policy: &'static str,
    per_minute: NonZeroU32,
    limiter: Limiter,
    /// Checks since the idle buckets were last dropped.
    checks: AtomicU64,
    /// Callers refused: their requests before then are refused unread.
    refused: Arc<Mutex<HashMap<String, Refused>>>,
}

/// A caller refused.
#[derive(Clone, Copy, Debug)]
struct Refused {
    /// When the refused operation would have been admitted.
    until: Instant,
    /// What it needed.
    charged: u32,
    /// Its early refusals being held back now.
    held: usize,
}

/// Longest an early refusal is held back.
pub const MAX_HOLD: Duration = Duration::from_secs(1);
/// Most early refusals of one caller held back at once.
pub const MAX_HELD: usize = 64;

/// An early refusal held back: wait [`Hold::delay`] before answering; the
/// slot is given back when this drops.
pub struct Hold {
    pub delay: Duration,
    refused: Arc<Mutex<HashMap<String, Refused>>>,
    subject: String,
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Ok(mut refused) = self.refused.lock()
            && let Some(entry) = refused.get_mut(&self.subject)
        {
            entry.held = entry.held.saturating_sub(1);
        }
    }
}

/// Buckets of callers idle for a minute hold nothing: they are dropped every
/// this many checks, so memory follows the callers of the last minute.
const SWEEP_EVERY: u64 = 4096;

/// Where a caller's budget stands after an operation was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    /// `person` or `service`.
    pub policy: &'static str,
    /// A minute's budget.
    pub limit: u32,
    /// What the caller may still spend at once.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
}

impl Standing {
    /// `RateLimit-Policy`: the policy, its quota and window (seconds).
    pub fn policy_field(&self) -> String {
        format!("\"{}\";q={};w=60", self.policy, self.limit)
    }

    /// `RateLimit`: the policy, what remains, and seconds until it resets.
    pub fn field(&self) -> String {
        format!(
            "\"{}\";r={};t={}",
            self.policy, self.remaining, self.reset_secs
        )
    }
}

/// An operation refused: over budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exhausted {
    pub standing: Standing,
    /// Whole seconds until the operation would be admitted.
    pub retry_after: u64,
    /// What the operation would have been charged.
    pub charged: u32,
}

/// Every caller's budget.
pub struct Budgets {
    people: Option<Buckets>,
    services: Option<Buckets>,
}

impl Budgets {
    pub fn new(fair_use: FairUse) -> Self {
        let buckets = |policy, per_minute: Option<u32>| {
            let per_minute = NonZeroU32::new(per_minute?)?;
            Some(Buckets {
                policy,
                per_minute,
                limiter: RateLimiter::keyed(Quota::per_minute(per_minute))
                    .with_middleware::<StateInformationMiddleware>(),
                checks: AtomicU64::new(0),
                refused: Arc::new(Mutex::new(HashMap::new())),
            })
        };
        Self {
            people: buckets("person", fair_use.person_per_minute),
            services: buckets("service", fair_use.service_per_minute),
        }
    }

    fn of(&self, principal: &Principal) -> Option<&Buckets> {
        match principal.kind {
            PrincipalKind::Service => self.services.as_ref(),
            PrincipalKind::Staff | PrincipalKind::Demo => self.people.as_ref(),
        }
    }

    /// Whether `principal` was refused and its `Retry-After` has not come
    /// yet: then the refusal again, with the time left, without reading the
    /// request, and how long to hold it back (`None`: answer at once).
    pub fn early(&self, principal: &Principal) -> Option<(Exhausted, Option<Hold>)> {
        let buckets = self.of(principal)?;
        let mut refused = buckets.refused.lock().ok()?;
        let entry = refused.get_mut(&principal.subject)?;
        let now = Instant::now();
        let Some(wait) = entry
            .until
            .checked_duration_since(now)
            .filter(|w| !w.is_zero())
        else {
            if entry.held == 0 {
                refused.remove(&principal.subject);
            }
            return None;
        };
        let hold = (entry.held < MAX_HELD).then(|| {
            entry.held += 1;
            Hold {
                delay: wait.min(MAX_HOLD),
                refused: buckets.refused.clone(),
                subject: principal.subject.clone(),
            }
        });
        let charged = entry.charged;
        drop(refused);
        // Answered after the hold: what is left of the wait then.
        let after = wait.saturating_sub(hold.as_ref().map_or(Duration::ZERO, |h| h.delay));
        Some((
            buckets.exhausted(after.max(Duration::from_millis(1)), charged),
            hold,
        ))
    }

    /// Charges `principal` for an operation of `cost`: where its budget
    /// stands then (`None` when its kind has no budget), or why not.
    pub fn charge(&self, principal: &Principal, cost: u64) -> Result<Option<Standing>, Exhausted> {
        let Some(buckets) = self.of(principal) else {
            return Ok(None);
        };
        let limit = buckets.per_minute.get();
        let charged = u32::try_from(cost).unwrap_or(u32::MAX).clamp(1, limit);
        let n = NonZeroU32::new(charged).unwrap_or(NonZeroU32::MIN);
        if buckets.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            buckets.limiter.retain_recent();
            buckets.limiter.shrink_to_fit();
            if let Ok(mut refused) = buckets.refused.lock() {
                let now = Instant::now();
                refused.retain(|_, entry| entry.until > now || entry.held > 0);
            }
        }
        match buckets.limiter.check_key_n(&principal.subject, n) {
            Ok(Ok(snapshot)) => {
                let remaining = snapshot.remaining_burst_capacity();
                Ok(Some(buckets.standing(remaining)))
            }
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(buckets.limiter.clock().now());
                if let Ok(mut refused) = buckets.refused.lock() {
                    let entry = refused.entry(principal.subject.clone()).or_insert(Refused {
                        until: Instant::now(),
                        charged,
                        held: 0,
                    });
                    entry.until = Instant::now() + wait;
                    entry.charged = charged;
                }
                Err(buckets.exhausted(wait, charged))
            }
            // `charged` is clamped to the bucket's size: cannot happen.
            Err(_) => Ok(None),
        }
    }
}

impl Buckets {
    /// How long one unit takes to refill.
    fn per_unit(&self) -> Duration {
        Duration::from_secs(60) / self.per_minute.get()
    }

    fn standing(&self, remaining: u32) -> Standing {
        let limit = self.per_minute.get();
        let missing = limit.saturating_sub(remaining);
        Standing {
            policy: self.policy,
            limit,
            remaining,
            reset_secs: (self.per_unit() * missing).as_secs_f64().ceil() as u64,
        }
    }

    /// The refusal of an operation that needs `charged` units, which the
    /// bucket will hold after `wait`.
    fn exhausted(&self, wait: Duration, charged: u32) -> Exhausted {
        let short = (wait.as_nanos() / self.per_unit().as_nanos().max(1)) as u32;
        Exhausted {
            standing: self.standing(charged.saturating_sub(short.saturating_add(1))),
            retry_after: (wait.as_secs_f64().ceil() as u64).max(1),
            charged,
        }
    }
}

/// The metrics labels of a caller: its kind and roles, never its subject.
pub fn labels(principal: &Principal) -> (&'static str, String) {
    let kind = match principal.kind {
        PrincipalKind::Staff => "person",
        PrincipalKind::Service => "service",
        PrincipalKind::Demo => "demo",
    };
    let roles = if principal.roles.is_empty() {
        "none".to_owned()
    } else {
        principal
            .roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join("+")
    };
    (kind, roles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(subject: &str, kind: PrincipalKind) -> Principal {
        Principal {
            subject: subject.into(),
            kind,
            ..Principal::demo_admin()
        }
    }

    #[test]
    fn a_caller_spends_a_minute_at_once_then_waits_and_others_go_on() {
        let budgets = Budgets::new(FairUse {
            person_per_minute: Some(600),
            service_per_minute: Some(60),
        });
        let script = caller("etl", PrincipalKind::Service);
        let first = budgets.charge(&script, 50).expect("within budget");
        assert_eq!(
            first,
            Some(Standing {
                policy: "service",
                limit: 60,
                remaining: 10,
                reset_secs: 50
            })
        );
        let refused = budgets.charge(&script, 30).expect_err("over budget");
        assert_eq!(refused.charged, 30);
        // 10 left, 20 short: 20 seconds at one unit a second.
        assert!(
            (19..=21).contains(&refused.retry_after),
            "{}",
            refused.retry_after
        );
        assert_eq!(refused.standing.policy_field(), "\"service\";q=60;w=60");
        // Another caller has its own bucket; a person has another policy.
        assert!(
            budgets
                .charge(&caller("etl-2", PrincipalKind::Service), 60)
                .is_ok()
        );
        let person = budgets
            .charge(&caller("alice", PrincipalKind::Staff), 1_000_000)
            .expect("an operation above the budget is charged the budget");
        assert_eq!(person.map(|s| s.remaining), Some(0));
    }

    #[test]
    fn a_caller_refused_is_refused_unread_until_its_retry_after() {
        let budgets = Budgets::new(FairUse {
            person_per_minute: None,
            service_per_minute: Some(60),
        });
        let script = caller("etl", PrincipalKind::Service);
        assert!(budgets.early(&script).is_none());
        budgets.charge(&script, 60).expect("a full bucket");
        let refused = budgets.charge(&script, 10).expect_err("empty");
        let (early, hold) = budgets.early(&script).expect("refused until its retry");
        assert_eq!(early.charged, 10);
        assert!(early.retry_after <= refused.retry_after);
        let hold = hold.expect("held back");
        assert_eq!(hold.delay, MAX_HOLD);
        // At most MAX_HELD held at once; then answered at once.
        let mut holds = vec![hold];
        for _ in 1..MAX_HELD {
            holds.push(budgets.early(&script).and_then(|(_, h)| h).expect("held"));
        }
        assert!(budgets.early(&script).expect("refused").1.is_none());
        holds.pop();
        assert!(budgets.early(&script).expect("refused").1.is_some());
        // Others are not held back by it.
        assert!(
            budgets
                .early(&caller("etl-2", PrincipalKind::Service))
                .is_none()
        );
    }

    #[test]
    fn no_budget_charges_nothing() {
        let budgets = Budgets::new(FairUse::default());
        assert_eq!(
            budgets.charge(&caller("a", PrincipalKind::Staff), u64::MAX),
            Ok(None)
        );
    }
}
