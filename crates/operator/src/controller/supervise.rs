//! The operator's controllers as a list of named futures, run together once this replica leads.
//! A controller is meant to run forever; when one ends (an error, a panic in a debug build, or
//! an unexpected `Ok`) it is logged, counted in `sriov_operator_controller_restarts_total`, and
//! started again after a back-off, while the others go on. Dropping the future of
//! [`Controllers::run`] stops every controller (leadership lost, shutdown).
//!
//! Adding a controller to the binary is one line:
//! `.add("node-states", node_states::run)` for `async fn run(ctx: OperatorContext) -> Result<(), E>`.

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::OperatorContext;
use super::metrics::ControllerLabel;

/// What a controller's future ends with: `()` or `Result<(), E>` with a displayable error.
pub trait Outcome {
    fn into_result(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> Outcome for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        // `{:#}` prints an anyhow chain; other errors print as `{}`.
        self.map_err(|e| format!("{e:#}"))
    }
}

type RunFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Start = Box<dyn Fn(OperatorContext) -> RunFuture + Send + Sync>;

/// Restart back-off: `first`, doubled on each consecutive failure, at most `max`; a controller
/// that ran at least `max` before ending starts again after `first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The pause before restart number `failures` (1 = the first restart in a row).
    pub fn delay(&self, failures: u32) -> Duration {
        let factor = 2u32.saturating_pow(failures.saturating_sub(1));
        self.first.saturating_mul(factor).min(self.max)
    }
}

/// The named controllers of the operator.
#[derive(Default)]
pub struct Controllers {
    entries: Vec<(&'static str, Start)>,
    backoff: Backoff,
}

impl Controllers {
    pub fn new() -> Controllers {
        Controllers::default()
    }

    /// Adds a controller: `start` is called with the shared context each time it (re)starts.
    /// `name` is the `controller` label of its metrics and the `controller` field of its logs.
    pub fn add<F, Fut>(mut self, name: &'static str, start: F) -> Controllers
    where
        F: Fn(OperatorContext) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: Outcome,
    {
        let start: Start = Box::new(move |ctx| {
            let fut = start(ctx);
            Box::pin(async move { fut.await.into_result() })
        });
        self.entries.push((name, start));
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Controllers {
        self.backoff = backoff;
        self
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|(n, _)| *n).collect()
    }

    /// Runs every controller, each in its own task, until this future is dropped. Never
    /// returns (with no controllers it waits forever).
    pub async fn run(self, ctx: OperatorContext) {
        let mut tasks = tokio::task::JoinSet::new();
        let backoff = self.backoff;
        for (name, start) in self.entries {
            tracing::info!(controller = name, "starting controller");
            // Zero-valued series from the start, so `rate()` and alerts see every controller.
            let label = ControllerLabel {
                controller: name.to_string(),
            };
            drop(ctx.metrics.controller_restarts.get_or_create(&label));
            drop(ctx.metrics.reconcile_errors.get_or_create(&label));
            tasks.spawn(supervise(name, start, ctx.clone(), backoff));
        }
        // The supervisors loop forever; join_next only yields if one of them is aborted.
        while tasks.join_next().await.is_some() {}
        std::future::pending::<()>().await;
    }
}

/// Aborts the task when dropped, so dropping a supervisor stops its controller too.
struct AbortOnDrop(tokio::task::JoinHandle<Result<(), String>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn supervise(name: &'static str, start: Start, ctx: OperatorContext, backoff: Backoff) {
    let label = ControllerLabel {
        controller: name.to_string(),
    };
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        let mut task = AbortOnDrop(tokio::spawn(start(ctx.clone())));
        let outcome = match (&mut task.0).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(format!("panicked: {}", panic_text(e.into_panic()))),
            Err(e) => Err(format!("task ended: {e}")),
        };
        failures = if started.elapsed() >= backoff.max {
            1
        } else {
            failures.saturating_add(1)
        };
        let delay = backoff.delay(failures);
        match outcome {
            Ok(()) => tracing::warn!(controller = name, ?delay, "controller stopped; restarting"),
            Err(error) => tracing::error!(controller = name, %error, ?delay, "controller failed; restarting"),
        }
        ctx.metrics.controller_restarts.get_or_create(&label).inc();
        tokio::time::sleep(delay).await;
    }
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic".into()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff {
            first: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(5), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn outcomes_carry_the_error_text() {
        assert_eq!(().into_result(), Ok(()));
        assert_eq!(Ok::<(), String>(()).into_result(), Ok(()));
        assert_eq!(Err::<(), _>("boom").into_result(), Err("boom".to_string()));
        let chained = anyhow::anyhow!("inner").context("outer");
        assert_eq!(
            Err::<(), _>(chained).into_result(),
            Err("outer: inner".to_string())
        );
    }

    /// A context whose client never connects: the controllers under test make no request.
    fn offline_context() -> OperatorContext {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        OperatorContext {
            client: kube::Client::try_from(config).unwrap(),
            namespace: "ns".into(),
            metrics: std::sync::Arc::new(crate::controller::metrics::OperatorMetrics::new()),
        }
    }

    fn restarts(ctx: &OperatorContext, name: &str) -> u64 {
        ctx.metrics
            .controller_restarts
            .get_or_create(&ControllerLabel {
                controller: name.into(),
            })
            .get()
    }

    #[tokio::test]
    async fn a_failing_controller_is_restarted_and_counted_while_the_others_run_on() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicU32, Ordering};
        let ctx = offline_context();
        let (flaky_starts, steady_starts) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (f, s) = (flaky_starts.clone(), steady_starts.clone());
        let controllers = Controllers::new()
            .with_backoff(Backoff {
                first: Duration::from_millis(5),
                max: Duration::from_secs(5),
            })
            .add("flaky", move |_ctx| {
                let n = f.fetch_add(1, Ordering::SeqCst);
                async move {
                    match n {
                        0 => Err("first failure".to_string()),
                        1 => panic!("second failure"),
                        _ => std::future::pending().await,
                    }
                }
            })
            .add("steady", move |_ctx| {
                s.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>()
            });
        let run = tokio::spawn(controllers.run(ctx.clone()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while flaky_starts.load(Ordering::SeqCst) < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(flaky_starts.load(Ordering::SeqCst), 3);
        assert_eq!(steady_starts.load(Ordering::SeqCst), 1);
        assert_eq!(restarts(&ctx, "flaky"), 2);
        assert_eq!(restarts(&ctx, "steady"), 0);
        let text = ctx.metrics.encode().unwrap();
        assert!(
            text.contains("sriov_operator_controller_restarts_total{controller=\"flaky\"} 2"),
            "{text}"
        );
        // Series exist from the start, at zero.
        assert!(
            text.contains("sriov_operator_controller_restarts_total{controller=\"steady\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("sriov_operator_reconcile_errors_total{controller=\"steady\"} 0"),
            "{text}"
        );
        assert!(!run.is_finished(), "run() never returns on its own");
        run.abort();
    }

    #[tokio::test]
    async fn dropping_the_run_stops_every_controller() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        struct SetOnDrop(Arc<AtomicBool>);
        impl Drop for SetOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let stopped = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let started_tx = std::sync::Mutex::new(Some(started_tx));
        let flag = stopped.clone();
        let controllers = Controllers::new().add("long", move |_ctx| {
            let guard = SetOnDrop(flag.clone());
            if let Some(tx) = started_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            async move {
                let _guard = guard;
                std::future::pending::<()>().await
            }
        });
        let run = tokio::spawn(controllers.run(offline_context()));
        started_rx.await.unwrap();
        assert!(!stopped.load(Ordering::SeqCst));
        run.abort();
        let _ = run.await;
        let deadline = Instant::now() + Duration::from_secs(5);
        while !stopped.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            stopped.load(Ordering::SeqCst),
            "the controller's future was dropped"
        );
    }

    #[test]
    fn names_keep_the_order_added() {
        let c = Controllers::new()
            .add("a", |_ctx| async {})
            .add("b", |_ctx| async { Ok::<(), String>(()) });
        assert_eq!(c.names(), vec!["a", "b"]);
    }
}
