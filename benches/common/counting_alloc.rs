//! A counting global allocator for the benchmarks: wraps the system allocator and, while counting
//! is on, tracks live heap bytes and their peak, so a benchmark can report the memory a phase
//! needs. Shared by the benches through `#[path = "common/counting_alloc.rs"] mod counting_alloc;`
//! and installed by each with `#[global_allocator]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

pub struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes allocated since counting was switched on (frees of older blocks can make it < 0).
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

#[inline]
fn grew(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = CURRENT.fetch_add(bytes as isize, Ordering::Relaxed) + bytes as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

#[inline]
fn shrank(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        CURRENT.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

/// Heap growth measured over one phase.
#[derive(Debug, Clone, Copy)]
pub struct HeapUse {
    /// The most live bytes at any moment of the phase, above the start.
    pub peak: isize,
    /// Live bytes at the end of the phase, above the start (what the phase kept).
    pub retained: isize,
}

/// Runs `f` with counting on; returns its value and the heap it used.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, HeapUse) {
    CURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let value = f();
    COUNTING.store(false, Ordering::SeqCst);
    let used = HeapUse {
        peak: PEAK.load(Ordering::SeqCst),
        retained: CURRENT.load(Ordering::SeqCst),
    };
    (value, used)
}

pub fn mib(bytes: isize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
