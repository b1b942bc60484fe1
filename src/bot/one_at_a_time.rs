//! At most one costly piece of work per server at a time: `/insights gaps`' listing, which may
//! embed kept questions (seconds of CPU) before it groups them, and (through
//! [`super::heavy_work`], a set of its own) reading and embedding an import.
//!
//! A second request while one runs is refused at once, not queued: the caller tells the curator
//! to try again in a few seconds. Queueing would let a server stack up listings behind each other
//! (every curator, every click); refusing keeps the work per server to one listing, and the next
//! one is quick, since the first wrote back the vectors it computed.
//!
//! The state is the process's: enough, since all of a server's interactions reach the process
//! that runs its shard.
//!
//! The [`Turn`] is owned, so it can move into the blocking task that does the work: it ends when
//! the work ends, even if the command that started it stopped waiting.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

/// The servers whose work is running.
#[derive(Debug, Clone, Default)]
pub struct OneAtATime {
    busy: Arc<Mutex<HashSet<u64>>>,
}

/// One server's turn: the server is busy until it is dropped.
#[derive(Debug)]
pub struct Turn {
    busy: Arc<Mutex<HashSet<u64>>>,
    guild: u64,
}

impl OneAtATime {
    /// The server's turn, or `None` while another turn of the same server is held.
    pub fn try_start(&self, guild: u64) -> Option<Turn> {
        let mut busy = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        busy.insert(guild).then(|| Turn {
            busy: Arc::clone(&self.busy),
            guild,
        })
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.guild);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_turn_per_server_at_a_time_and_other_servers_are_not_held() {
        let turns = OneAtATime::default();
        let first = turns.try_start(1).expect("a free server");
        assert!(turns.try_start(1).is_none(), "the same server is busy");
        let other = turns.try_start(2).expect("another server is not held");
        drop(first);
        let again = turns.try_start(1).expect("free again once the turn ends");
        assert!(
            turns.clone().try_start(2).is_none(),
            "clones share the state"
        );
        drop((again, other));
    }

    #[test]
    fn a_turn_moved_into_a_thread_holds_the_server_until_the_work_ends() {
        let turns = OneAtATime::default();
        let turn = turns.try_start(7).unwrap();
        let (finish, wait) = std::sync::mpsc::channel::<()>();
        let work = std::thread::spawn(move || {
            let _turn = turn;
            wait.recv().unwrap();
        });
        assert!(turns.try_start(7).is_none(), "held while the work runs");
        finish.send(()).unwrap();
        work.join().unwrap();
        assert!(turns.try_start(7).is_some(), "released when it ends");
    }
}
