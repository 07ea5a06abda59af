//! SIGTERM/SIGINT as a callback: the signals are blocked in the calling thread (call this before
//! spawning threads, so they inherit the mask) and a dedicated thread waits for them.

use nix::sys::signal::{SigSet, Signal};

/// Calls `f` once on the first SIGTERM or SIGINT.
pub fn on_terminate(f: impl FnOnce() + Send + 'static) -> nix::Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Ok(sig) = set.wait() {
                tracing::info!(signal = %sig, "terminating");
            }
            f();
        })
        .map_err(|_| nix::errno::Errno::EAGAIN)?;
    Ok(())
}
