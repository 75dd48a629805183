//! Thread pools by size. Work runs inside a pool of the requested size; pools are built
//! once per size and kept, so asking for a thread count costs nothing after the first time.
//!
//! In the WebAssembly build (`wasm32-wasip1-threads`, `npm run build:wasi`) the threads are
//! real: std spawns them through wasi-threads, and napi-rs's runtime (emnapi) runs each as a
//! Node worker thread sharing the module's memory. Nothing here differs by target, except
//! that WASI cannot tell the core count, so `default_threads()` is 1 there; the TypeScript
//! layer asks for Node's `os.availableParallelism()` instead (src/backend/native.ts,
//! `threadsArg`), since with one thread a long call holds every other call back.

use crate::error::{Error, Result};
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Most threads a caller may ask for.
pub const MAX_THREADS: usize = 1024;

/// Threads used when the caller does not say: every core this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn pool(threads: usize) -> Result<Arc<ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<ThreadPool>>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(p) = pools.get(&threads) {
        return Ok(p.clone());
    }
    let p = ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("sead-{i}"))
        .build()
        .map_err(|e| Error::invalid(format!("could not start {threads} threads: {e}")))?;
    let p = Arc::new(p);
    pools.insert(threads, p.clone());
    Ok(p)
}

/// Runs `f` on `threads` threads (0 = `default_threads()`).
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    if threads > MAX_THREADS {
        return Err(Error::invalid(format!(
            "threads must be from 0 (all cores) to {MAX_THREADS}, got {threads}"
        )));
    }
    let n = if threads == 0 {
        default_threads()
    } else {
        threads
    };
    Ok(pool(n)?.install(f))
}
