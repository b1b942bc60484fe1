//! Scheduled insight posts, without Discord. A server has up to ten *feeds* ([`feed`]: one per
//! channel, each with its own cadence, topic, thread and ping). When each feed's post is due
//! ([`schedule`]: weekly, every two weeks, weekdays or daily at a local time in an IANA zone ->
//! UTC instants and periods, across DST), which insight it shows ([`rotation`]: a per-feed order
//! that never repeats within a cycle), and the one task that posts them exactly once per (feed,
//! period) ([`poster`]), on an injectable [`clock`].

pub mod clock;
pub mod feed;
pub mod poster;
pub mod rotation;
pub mod schedule;
