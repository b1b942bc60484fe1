//! The insight of the week, without Discord: when each server's post is due ([`schedule`]:
//! weekday + local time + IANA zone -> UTC instants and ISO-week slots, across DST), which insight
//! it shows ([`rotation`]: a per-server order that never repeats within a cycle), and the one task
//! that posts them exactly once ([`poster`]), on an injectable [`clock`].

pub mod clock;
pub mod poster;
pub mod rotation;
pub mod schedule;
