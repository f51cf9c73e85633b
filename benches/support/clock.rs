//! The benches' clock: wall time by default, or with `OMAKASE_BENCH_CLOCK=cpu` the process's CPU
//! time (all threads) — on a machine other work loads, what a pass costs rather than how long it
//! waited for a core. Included by the bench files with `#[path]` (not a bench target of its own).

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;

/// CPU time of this process so far (user + system, all threads), from `/proc/self/stat` in clock
/// ticks of 1/100 s (Linux's USER_HZ).
fn process_cpu_time() -> Duration {
    let stat =
        std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (OMAKASE_BENCH_CLOCK=cpu is Linux only)");
    // Fields after the parenthesised command name: state is field 3, utime 14 and stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("/proc/self/stat").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// Times `pass` by the clock `OMAKASE_BENCH_CLOCK` picks (wall by default, or `cpu`).
pub fn measure<R>(b: &mut criterion::Bencher<'_, WallTime>, mut pass: impl FnMut() -> R) {
    if std::env::var("OMAKASE_BENCH_CLOCK").is_ok_and(|c| c == "cpu") {
        b.iter_custom(|iters| {
            let start = process_cpu_time();
            for _ in 0..iters {
                black_box(pass());
            }
            process_cpu_time() - start
        })
    } else {
        b.iter(|| black_box(pass()))
    }
}
