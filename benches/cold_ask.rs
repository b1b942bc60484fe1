//! A cold `insight-bot ask`: a new process that loads the built-in collection and the model
//! built into the binary, embeds the question and answers, with the vector cache warm (goal:
//! <= 300 ms). Also the process's peak resident memory, which is what the model costs.
//!
//! Run: `cargo bench --bench cold_ask` (uses the release binary `cargo bench` builds).

use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 15;
const GOAL: Duration = Duration::from_millis(300);

fn main() {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let run = || {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_insight-bot"))
            .args(["ask", "How do I stop micromanaging my team?"])
            .env("EMBEDDING_CACHE_DIR", cache.path())
            .env_remove("INSIGHTS_PATH")
            .env_remove("RUST_LOG")
            .current_dir(cache.path())
            .output()
            .expect("run insight-bot ask");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed()
    };
    let first = run();
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort();
    let p50 = times[RUNS / 2];
    // Peak resident set of the children (the largest of the runs), in KiB on Linux.
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a rusage into the pointer it is given, which points at one.
    let max_rss_kib = unsafe {
        libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr());
        usage.assume_init().ru_maxrss
    };
    println!("cold ask: first run (cache empty but for the shipped vectors) {first:.2?}");
    println!(
        "cold ask with a warm cache, {RUNS} runs: p50 {p50:.2?}, min {:.2?}, max {:.2?} -> goal <= {GOAL:?} {}",
        times[0],
        times[RUNS - 1],
        if p50 <= GOAL { "met" } else { "MISSED" }
    );
    println!(
        "peak resident memory of an ask process (model loaded): {:.0} MiB",
        max_rss_kib as f64 / 1024.0
    );
}
