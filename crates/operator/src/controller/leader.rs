//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's protocol (what
//! controller-runtime's `--leader-elect` runs): read the Lease, take it when it is free or its
//! holder has not renewed for `leaseDurationSeconds` as *observed on our own clock*, renew it
//! every retry period by a write at the read `resourceVersion` (a race loses with 409), give up
//! leadership when no renewal succeeded within the renew deadline, and clear the holder on a
//! clean shutdown so the next replica takes over at once.
//!
//! Why not a crate: `kube-lease-manager` 0.13 (the one maintained crate on kube 5) keeps
//! reporting "leader" when its renewals fail (its watch loop logs the error and keeps the last
//! state), so a replica cut off from the API server would go on reconciling after another
//! replica took over; it also judges expiry from the holder's `renewTime` against the local
//! wall clock (skew-sensitive) and clears the holder before taking an expired lease, which is
//! not client-go's record protocol, so a mixed rollout (upstream's Go operator and this one on
//! the same Lease) would not be guaranteed one leader. The loop below is client-go's, ~200
//! lines, and its decision ([`decide`]) is a plain function with tests.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};

/// Upstream's Lease name (`LeaderElectionID`, `pkg/consts` before leader election was removed
/// upstream in 2025-02), so a Go replica and this one exclude each other.
pub const LEASE_NAME: &str = "a56def2a.openshift.io";

/// Timings and names of the election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub name: String,
    pub namespace: String,
    /// Unique per process: [`local_identity`].
    pub identity: String,
    /// How long a holder's claim lasts without renewal; what a follower waits after the
    /// holder's last observed renewal before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it stops leading (must be shorter
    /// than `lease_duration`, so it stops before anyone may take over).
    pub renew_deadline: Duration,
    /// The pause between renewals, and between a follower's looks at the Lease.
    pub retry_period: Duration,
}

/// Defaults chosen so that a replica takes over within 15 s of the leader's death: the
/// follower sees the last renewal at most one retry period late, then waits one lease
/// duration: ≤ 2 s + 10 s + one round trip. (controller-runtime's 15 s/10 s/2 s would allow
/// up to 17 s; upstream's 137 s/107 s/26 s, minutes.)
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(10);
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(8);
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);

/// Timings that cannot give one leader.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LeaseConfigError {
    #[error("lease duration {lease:?} must be longer than the renew deadline {renew:?}")]
    LeaseNotLongerThanRenew { lease: Duration, renew: Duration },
    #[error("renew deadline {renew:?} must be longer than 1.2 × the retry period {retry:?}")]
    RenewTooShort { renew: Duration, retry: Duration },
    #[error("the retry period must be positive")]
    ZeroRetry,
}

impl LeaseConfig {
    /// client-go's checks (`NewLeaderElector`).
    pub fn validate(&self) -> Result<(), LeaseConfigError> {
        if self.retry_period.is_zero() {
            return Err(LeaseConfigError::ZeroRetry);
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaseConfigError::LeaseNotLongerThanRenew {
                lease: self.lease_duration,
                renew: self.renew_deadline,
            });
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(LeaseConfigError::RenewTooShort {
                renew: self.renew_deadline,
                retry: self.retry_period,
            });
        }
        Ok(())
    }
}

/// `<hostname>_<unique>`, as controller-runtime names its candidates.
pub fn identity(hostname: &str, unique: &str) -> String {
    format!("{hostname}_{unique}")
}

/// This process's identity: the hostname (the pod name in a pod) and a fresh random UUID from
/// the kernel, so a restarted pod with the same name is a new candidate.
pub fn local_identity() -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let host = read("/proc/sys/kernel/hostname")
        .or_else(|| std::env::var("HOSTNAME").ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "sriov-network-operator".into());
    let unique = read("/proc/sys/kernel/random/uuid").unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{}-{nanos:x}", std::process::id())
    });
    identity(&host, &unique)
}

/// What one look at the Lease decides.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Write this spec: create the Lease when there is none, else replace it at the version read.
    Write(LeaseSpec),
    /// Another candidate holds an unexpired claim; it expires `expires_in` from now unless
    /// renewed.
    Follow { holder: String, expires_in: Duration },
}

fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// client-go's `tryAcquireOrRenew` decision. `current` is the Lease's spec (`None`: no Lease),
/// `observed_at` when its current content was first seen on this process's monotonic clock,
/// `now` that clock now, `wall_now` the time written into `acquireTime`/`renewTime`.
pub fn decide(
    current: Option<&LeaseSpec>,
    observed_at: Instant,
    now: Instant,
    wall_now: Timestamp,
    me: &str,
    lease_duration: Duration,
) -> Step {
    let stamp = Some(MicroTime(wall_now));
    let seconds = whole_seconds(lease_duration);
    let Some(current) = current else {
        return Step::Write(first_claim(me, lease_duration, wall_now));
    };
    let transitions = current.lease_transitions.unwrap_or(0);
    match holder(current) {
        Some(h) if h == me => Step::Write(LeaseSpec {
            holder_identity: Some(me.to_string()),
            lease_duration_seconds: Some(seconds),
            acquire_time: current.acquire_time.clone().or(stamp.clone()),
            renew_time: stamp,
            lease_transitions: Some(transitions),
            ..current.clone()
        }),
        Some(h) => {
            // The holder's own duration counts, as client-go reads it from the record.
            let theirs = current
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map_or(lease_duration, Duration::from_secs);
            let expires = observed_at + theirs;
            if now < expires {
                Step::Follow {
                    holder: h.to_string(),
                    expires_in: expires - now,
                }
            } else {
                take(current, me, seconds, stamp, transitions)
            }
        }
        None => take(current, me, seconds, stamp, transitions),
    }
}

fn whole_seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// The spec of a Lease created by us.
pub fn first_claim(me: &str, lease_duration: Duration, wall_now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(whole_seconds(lease_duration)),
        acquire_time: Some(MicroTime(wall_now)),
        renew_time: Some(MicroTime(wall_now)),
        lease_transitions: Some(0),
        ..LeaseSpec::default()
    }
}

fn take(current: &LeaseSpec, me: &str, seconds: i32, stamp: Option<MicroTime>, transitions: i32) -> Step {
    Step::Write(LeaseSpec {
        holder_identity: Some(me.to_string()),
        lease_duration_seconds: Some(seconds),
        acquire_time: stamp.clone(),
        renew_time: stamp,
        lease_transitions: Some(transitions.saturating_add(1)),
        ..current.clone()
    })
}

/// The spec written on a clean shutdown (client-go's `release`): no holder, a 1 s duration.
pub fn released(current: &LeaseSpec, wall_now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(String::new()),
        lease_duration_seconds: Some(1),
        acquire_time: Some(MicroTime(wall_now)),
        renew_time: Some(MicroTime(wall_now)),
        ..current.clone()
    }
}

/// The outcome of one attempt.
#[derive(Debug, PartialEq)]
enum Attempt {
    Leading,
    Following { holder: String, expires_in: Duration },
}

/// Why [`LeaderElector::hold`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum HoldEnd {
    /// The stop future resolved: shut down, then [`LeaderElector::release`].
    Stopped,
    /// Leadership is gone; the controllers must stop now (the binary exits, as
    /// controller-runtime does).
    Lost(String),
}

/// One candidate. Not `Clone`: one per process.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The Lease spec as last seen and when it was first seen so.
    observed: Option<(LeaseSpec, Instant)>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Result<LeaderElector, LeaseConfigError> {
        config.validate()?;
        Ok(LeaderElector {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        })
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn observe(&mut self, spec: LeaseSpec, at: Instant) -> Instant {
        match &self.observed {
            Some((seen, since)) if *seen == spec => *since,
            _ => {
                self.observed = Some((spec, at));
                at
            }
        }
    }

    async fn attempt(&mut self) -> Result<Attempt, kube::Error> {
        let now = Instant::now();
        let me = self.config.identity.clone();
        let name = self.config.name.clone();
        let existing = self.api.get_opt(&name).await?;
        let Some(mut lease) = existing else {
            let spec = first_claim(&me, self.config.lease_duration, Timestamp::now());
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec.unwrap_or_default(), Instant::now());
                    Ok(Attempt::Leading)
                }
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following {
                    holder: String::new(),
                    expires_in: Duration::ZERO,
                }),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let observed_at = self.observe(spec.clone(), now);
        match decide(
            Some(&spec),
            observed_at,
            Instant::now(),
            Timestamp::now(),
            &me,
            self.config.lease_duration,
        ) {
            Step::Follow { holder, expires_in } => Ok(Attempt::Following { holder, expires_in }),
            Step::Write(new) => {
                lease.spec = Some(new);
                match self
                    .api
                    .replace(&self.config.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(written) => {
                        self.observe(written.spec.unwrap_or_default(), Instant::now());
                        Ok(Attempt::Leading)
                    }
                    // Someone wrote in between: look again next round.
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(Attempt::Following {
                        holder: holder(&spec).unwrap_or_default().to_string(),
                        expires_in: Duration::ZERO,
                    }),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Returns once this process holds the Lease. Looks every retry period, and right when the
    /// holder's claim would expire if that comes sooner.
    pub async fn acquire(&mut self) {
        let mut last_holder = None::<String>;
        loop {
            let pause = match self.attempt().await {
                Ok(Attempt::Leading) => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Ok(Attempt::Following { holder, expires_in }) => {
                    if last_holder.as_deref() != Some(holder.as_str()) && !holder.is_empty() {
                        tracing::info!(lease = %self.config.name, %holder, "waiting for the leader's lease to expire");
                        last_holder = Some(holder);
                    }
                    // 5 ms past the expiry, so the next look sees it expired.
                    self.config
                        .retry_period
                        .min(expires_in + Duration::from_millis(5))
                }
                Err(e) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "cannot read or write the Lease");
                    self.config.retry_period
                }
            };
            tokio::time::sleep(pause).await;
        }
    }

    /// Renews the Lease every retry period until `stop` resolves ([`HoldEnd::Stopped`]), another
    /// candidate holds it, or no renewal succeeded within the renew deadline ([`HoldEnd::Lost`]).
    pub async fn hold(&mut self, stop: impl Future<Output = ()>) -> HoldEnd {
        tokio::pin!(stop);
        let mut renewed = Instant::now();
        let deadline_passed = |d: Duration| {
            HoldEnd::Lost(format!(
                "the Lease was not renewed within the renew deadline ({d:?})"
            ))
        };
        loop {
            // Wake at the deadline at the latest, so leadership ends within it, not a retry later.
            let until_deadline = self.config.renew_deadline.saturating_sub(renewed.elapsed());
            tokio::select! {
                _ = &mut stop => return HoldEnd::Stopped,
                _ = tokio::time::sleep(self.config.retry_period.min(until_deadline)) => {}
            }
            let left = self.config.renew_deadline.saturating_sub(renewed.elapsed());
            if left.is_zero() {
                return deadline_passed(self.config.renew_deadline);
            }
            let outcome = tokio::select! {
                _ = &mut stop => return HoldEnd::Stopped,
                r = tokio::time::timeout(left, self.attempt()) => r,
            };
            match outcome {
                Ok(Ok(Attempt::Leading)) => renewed = Instant::now(),
                Ok(Ok(Attempt::Following { holder, .. })) if !holder.is_empty() => {
                    return HoldEnd::Lost(format!("the Lease is now held by {holder}"));
                }
                Ok(Ok(Attempt::Following { .. })) => {}
                Ok(Err(e)) => {
                    tracing::warn!(lease = %self.config.name, error = %e, "renewing the Lease failed")
                }
                Err(_) => {}
            }
            if renewed.elapsed() >= self.config.renew_deadline {
                return deadline_passed(self.config.renew_deadline);
            }
        }
    }

    /// Clears the holder when this process holds the Lease, so another candidate takes it on
    /// its next look instead of waiting out the lease duration.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if holder(&spec) != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(released(&spec, Timestamp::now()));
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await?;
        tracing::info!(lease = %self.config.name, "released the Lease");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const LD: Duration = Duration::from_secs(10);

    fn wall() -> Timestamp {
        Timestamp::from_second(1_800_000_000).unwrap()
    }

    fn held_by(who: &str, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(who.into()),
            lease_duration_seconds: Some(10),
            acquire_time: Some(MicroTime(Timestamp::from_second(1_700_000_000).unwrap())),
            renew_time: Some(MicroTime(Timestamp::from_second(1_700_000_100).unwrap())),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn no_lease_is_created_with_us_holding_it() {
        let t = Instant::now();
        let Step::Write(spec) = decide(None, t, t, wall(), "me", LD) else {
            panic!("write expected")
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_duration_seconds, Some(10));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall())));
        assert_eq!(spec.renew_time, spec.acquire_time);
    }

    #[test]
    fn an_unexpired_claim_of_another_is_followed_until_its_expiry() {
        let seen = Instant::now();
        let now = seen + Duration::from_secs(4);
        let step = decide(Some(&held_by("other", 3)), seen, now, wall(), "me", LD);
        assert_eq!(
            step,
            Step::Follow {
                holder: "other".into(),
                expires_in: Duration::from_secs(6)
            }
        );
    }

    #[test]
    fn the_holders_own_duration_counts_not_ours() {
        let seen = Instant::now();
        let mut spec = held_by("other", 0);
        spec.lease_duration_seconds = Some(137);
        let step = decide(
            Some(&spec),
            seen,
            seen + Duration::from_secs(100),
            wall(),
            "me",
            LD,
        );
        assert!(matches!(step, Step::Follow { expires_in, .. } if expires_in == Duration::from_secs(37)));
    }

    #[test]
    fn an_expired_claim_is_taken_with_one_more_transition() {
        let seen = Instant::now();
        let now = seen + Duration::from_secs(10);
        let Step::Write(spec) = decide(Some(&held_by("other", 3)), seen, now, wall(), "me", LD) else {
            panic!("write expected")
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall())));
        assert_eq!(spec.renew_time, Some(MicroTime(wall())));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let seen = Instant::now();
        let released = released(&held_by("other", 5), wall());
        assert_eq!(released.holder_identity.as_deref(), Some(""));
        assert_eq!(released.lease_duration_seconds, Some(1));
        assert_eq!(released.lease_transitions, Some(5));
        let Step::Write(spec) = decide(Some(&released), seen, seen, wall(), "me", LD) else {
            panic!("write expected")
        };
        assert_eq!(spec.holder_identity.as_deref(), Some("me"));
        assert_eq!(spec.lease_transitions, Some(6));
        let mut absent = released.clone();
        absent.holder_identity = None;
        assert!(matches!(
            decide(Some(&absent), seen, seen, wall(), "me", LD),
            Step::Write(_)
        ));
    }

    #[test]
    fn our_own_claim_is_renewed_keeping_acquire_time_and_transitions() {
        let seen = Instant::now();
        // Even long after we last renewed: it is ours until someone else writes.
        let now = seen + Duration::from_secs(60);
        let old = held_by("me", 2);
        let Step::Write(spec) = decide(Some(&old), seen, now, wall(), "me", LD) else {
            panic!("write expected")
        };
        assert_eq!(spec.acquire_time, old.acquire_time);
        assert_eq!(spec.lease_transitions, Some(2));
        assert_eq!(spec.renew_time, Some(MicroTime(wall())));
    }

    #[test]
    fn timings_are_checked_as_client_go_checks_them() {
        let config = |l, r, p| LeaseConfig {
            name: LEASE_NAME.into(),
            namespace: "ns".into(),
            identity: "me".into(),
            lease_duration: Duration::from_secs(l),
            renew_deadline: Duration::from_secs(r),
            retry_period: Duration::from_secs(p),
        };
        assert_eq!(config(10, 8, 2).validate(), Ok(()));
        assert!(matches!(
            config(8, 8, 2).validate(),
            Err(LeaseConfigError::LeaseNotLongerThanRenew { .. })
        ));
        assert!(matches!(
            config(10, 2, 2).validate(),
            Err(LeaseConfigError::RenewTooShort { .. })
        ));
        assert_eq!(config(10, 8, 0).validate(), Err(LeaseConfigError::ZeroRetry));
        let defaults = LeaseConfig {
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
            ..config(1, 1, 1)
        };
        assert_eq!(defaults.validate(), Ok(()));
    }

    #[test]
    fn identities_are_host_and_unique_part() {
        assert_eq!(identity("op-5d9", "0f3c"), "op-5d9_0f3c");
        let (a, b) = (local_identity(), local_identity());
        assert_ne!(a, b, "two processes on one host must differ");
        assert!(a.contains('_'), "{a}");
    }
}
