//! Time and ids for the runtime half: wall-clock milliseconds, a sub-millisecond clock for
//! measuring, and ids for frames, sessions and document lives.

use std::cell::Cell;

/// Milliseconds since the epoch.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> u64 {
    worker::Date::now().as_millis()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(target_arch = "wasm32")]
#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// A clock for durations: sub-millisecond where the runtime allows (deployed Workers advance
/// clocks only on I/O, so there it measures the waits, not the computation).
#[cfg(target_arch = "wasm32")]
pub fn clock_ms() -> f64 {
    performance_now()
}

#[cfg(not(target_arch = "wasm32"))]
pub fn clock_ms() -> f64 {
    thread_local!(static START: std::time::Instant = std::time::Instant::now());
    START.with(|s| s.elapsed().as_secs_f64() * 1000.0)
}

/// The isolate's wasm memory, bytes (0 natively).
pub fn memory_bytes() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return core::arch::wasm32::memory_size(0) as u64 * 65_536;
    #[cfg(not(target_arch = "wasm32"))]
    0
}

thread_local! {
    /// Server frame ids: a per-instance random prefix and a counter, not a uuid per frame.
    static FRAME_IDS: (String, Cell<u64>) = (uuid::Uuid::new_v4().simple().to_string()[..8].to_string(), Cell::new(0));
}

/// A unique id for one outgoing frame.
pub fn frame_id() -> String {
    FRAME_IDS.with(|(prefix, n)| {
        n.set(n.get() + 1);
        format!("{prefix}-{}", n.get())
    })
}

/// A socket's session id.
pub fn new_session_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A new life of a document id (a deleted id reused gets a new one).
pub fn new_incarnation() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_string()
}
