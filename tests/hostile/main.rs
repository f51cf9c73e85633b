//! Hostile input (issue 14): one test binary for every attack the issue lists, by area.
//!
//! - `sizes`: sizes read from a file are multiplied with checked arithmetic (point 7);
//! - `features`: non-finite features refused where a features file enters; `encode --out` replaces
//!   only a features file (points 6 and 1);
//! - `images`: decompression bombs refused from their header (point 3);
//! - `terminal`: control characters from data escaped before they reach a terminal (point 8);
//! - `demo_server`: the demo server's links, Host check, timeouts, connection cap (point 5).

#[path = "../bundle_fixture/mod.rs"]
mod bundle_fixture;
#[path = "../common/mod.rs"]
mod common;

mod demo_server;
mod features;
mod images;
mod sizes;
mod terminal;
