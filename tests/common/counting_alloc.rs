//! A counting global allocator for the memory-budget tests: the current and the peak heap. A test
//! file includes it with `#[path]` and installs it with `#[global_allocator]` (one per binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub struct Counting;

pub static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

pub const MIB: usize = 1024 * 1024;
/// The stated budget for one room's heap, awake or waking (§7, §8).
pub const BUDGET: usize = 48 * MIB;

/// Heap allocated now.
pub fn current() -> usize {
    CURRENT.load(Relaxed)
}

/// Peak heap growth while `f` runs, above what was allocated when it started.
pub fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = f();
    (out, PEAK.load(Relaxed) - base)
}
