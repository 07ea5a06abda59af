//! Giving freed heap back to the kernel (glibc only). sriovdp is a DaemonSet on every node: what
//! matters is its resident memory between bursts of work, and glibc keeps freed pages mapped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Returns the heap's free pages to the kernel now. Discovery of thousands of VFs allocates many
/// short-lived strings between the long-lived ones, and so does every ListAndWatch message
/// (2,048 devices: ~61 kB encoded, built from ~6,000 small allocations): without this a
/// DaemonSet that rediscovers every 30 s, or that served many streams once, would carry the freed
/// pages for ever (measured: docs/device-plugin.md).
#[allow(unsafe_code)]
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own allocator state under its arena locks and
    // returns unused pages with madvise; it touches no memory that Rust code owns, takes no
    // pointers, and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

static PENDING: AtomicBool = AtomicBool::new(false);

/// After a burst of frees that is still unwinding (a closed stream's buffers are dropped by
/// tonic and h2 after ours): one [`release_freed_memory`] shortly after, however many callers
/// asked meanwhile. Needs a tokio runtime; without one it does nothing.
pub fn release_soon() {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if PENDING.swap(true, Ordering::AcqRel) {
        return;
    }
    rt.spawn(async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        PENDING.store(false, Ordering::Release);
        release_freed_memory();
    });
}
