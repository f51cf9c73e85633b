//! Hostile input (issue 14): one test binary for every attack the issue lists, by area.
//!
//! - `sizes`: sizes read from a file are multiplied with checked arithmetic (point 7);
//! - `features`: non-finite features refused where a features file enters; `encode --out` replaces
//!   only a features file (points 6 and 1);
//! - `images`: decompression bombs refused from their header (point 3);
//! - `terminal`: control characters from data escaped before they reach a terminal (point 8);
//! - `delta`: delta shards that are devices, pipes, over-long headers or carry terminal escapes
//!   (issue 16, point 6);
//! - `demo_server`: the demo server's links, Host check, timeouts, connection cap (point 5);
//! - `capped`: the worst of these run through the built CLI under a memory cap, below.
//!
//! ## The memory caps
//!
//! `capped` runs the built `omakase` under `prlimit --as=CAP` (util-linux: without it the tests fail,
//! they never skip) with `RAYON_NUM_THREADS=2` and `MALLOC_ARENA_MAX=2`: `--as` caps address space,
//! not RSS, and the space a process reserves grows with its threads and malloc arenas, so both are
//! fixed to keep a cap meaningful on a machine with more cores. Past the cap an allocation fails (the
//! process aborts, or a read reports "out of memory"): the test then fails as a memory regression.
//! A wall-clock guard (120 s, 600 s with the encoders) kills a hung command; it is not a timing test.
//!
//! Each case, with the fixed CLI's peak RSS (`/usr/bin/time`), the least `--as` at which it still
//! passes (bisected with `OMAKASE_HOSTILE_CAP_MIB`), the cap chosen, and what the binary from before
//! the fixes (751366e^, run with `OMAKASE_HOSTILE_BIN`) did under that cap; dev profile,
//! 2 cores, glibc:
//!
//! - `validate`, a dataset with a 20000² PNG bomb (389 KB, every row there) and a truncated
//!   JPEG declaring 16384²: exit 0, both named at `items.jsonl:LINE` field `image`. RSS 8.5 MB, passes
//!   from 21 MiB; cap 256 MiB. Before: decoded (the issue: "usable", 776 MB for the JPEG); aborts.
//! - `encode`, the same dataset: exit 0, the images marked missing. RSS 284 MB (the encoders'
//!   weights), passes from 287 MiB; cap 512 MiB. Before: 1.68 GB; aborts.
//! - `recommend`, `items-00000.bin` a link to `/dev/zero`: exit 2, `FILE: not a regular file`. RSS
//!   5.6 MB, passes from 17 MiB; cap 256 MiB. Before: read until out of memory (4.1 GB); "out of
//!   memory" at the cap.
//! - `recommend`, `manifest.json` a link to `/dev/zero`: the same, RSS 5.2 MB, 17 MiB; cap 256 MiB.
//!   Before: "out of memory" at the cap.
//! - `recommend`, the shard a named pipe nobody writes: exit 2, named. RSS 5.7 MB, 17 MiB; cap
//!   256 MiB. Before: waited forever (killed by the guard).
//! - `embed --image /dev/zero`: exit 2, named. RSS 284 MB, 287 MiB; cap 512 MiB. Before: 4.1 GB;
//!   "out of memory" at the cap.
//! - `embed --image` the PNG bomb: exit 2, size named. RSS 284 MB, 287 MiB; cap 512 MiB. Before:
//!   aborts.
//! - `encode --text-only`, a description of `"[SEP]"` × 100,000 (500 KB): exit 0. RSS 284 MB, 287 MiB;
//!   cap 512 MiB. Before: the same memory, 35-108 s (time, not memory: the tokenizer fuzz target
//!   bounds the work per byte); 1.2 s now.
//! - `export`, a features file with a NaN: exit 2 naming the file, item and modality. RSS 7.7 MB,
//!   17 MiB; cap 256 MiB. Before: exit 0 with an all-zero int8 row.
//!
//! Caps: 512 MiB where the encoders load (1.8× the measured need), 256 MiB elsewhere (12-15×); both
//! below a decoded bomb (a 20000² grey image alone is 400 MB) and any read of `/dev/zero`.

#[path = "../bundle_fixture/mod.rs"]
mod bundle_fixture;
#[path = "../common/mod.rs"]
mod common;

mod capped;
mod delta;
mod demo_server;
mod features;
mod images;
mod sizes;
mod terminal;
