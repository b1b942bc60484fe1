//! Per-server rotation: which insight a server's weekly post shows next.
//!
//! Each server walks the whole collection in its own shuffled order before any insight repeats
//! (a *cycle*), and a new cycle never opens with the insight that closed the previous one, so no
//! server sees the same insight two weeks running. The collection is human-edited and changes
//! between posts: insights added mid-cycle join the current cycle at a random place among those
//! not yet shown, and removed ones are skipped.
//!
//! This module is pure: [`RotationState`] is a plain value that `next` turns into a pick and a new
//! value, with randomness from a caller-supplied rng (seeded in tests, so runs are reproducible).
//! The store persists the state as JSON; nothing here knows about SQLite or Discord.

use std::collections::{BTreeSet, HashSet};

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Where one server is in its rotation.
///
/// The whole cycle's order is kept (rather than only the ids already shown) so that "next up" can
/// be shown without drawing from the rng, and a pick is an index bump. It is one id per insight
/// in the collection: a few hundred bytes of JSON for a collection of tens.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RotationState {
    /// Cycles started so far; 0 before the first pick.
    pub cycle: u32,
    /// This cycle's order. `order[..shown]` were handed out (kept even if later removed from the
    /// collection, so an id removed and re-added within the cycle is not shown twice);
    /// `order[shown..]` are still to come.
    pub order: Vec<String>,
    /// How many of `order` were handed out.
    pub shown: usize,
    /// The last id handed out, which the next cycle must not start with.
    pub last: Option<String>,
}

impl RotationState {
    /// Pick the next insight id from `ids` (the collection now, in any order; duplicates are
    /// ignored) and return it with the new state. `None` when the collection is empty.
    ///
    /// Pure given the rng: the same state, the same set of ids and the same rng give the same
    /// result, whatever order `ids` come in.
    pub fn next<R: Rng + ?Sized>(
        &self,
        ids: &[&str],
        rng: &mut R,
    ) -> Option<(String, RotationState)> {
        let current = collection(ids);
        if current.is_empty() {
            return None;
        }
        // With no cycle begun there is nothing for new ids to join: the first cycle takes all.
        let mut state = if self.order.is_empty() {
            self.clone()
        } else {
            self.reconciled(&current, rng)
        };
        if state.shown >= state.order.len() {
            state = state.new_cycle(&current, rng);
        }
        let pick = state.order[state.shown].clone();
        state.shown += 1;
        state.last = Some(pick.clone());
        Some((pick, state))
    }

    /// The id the next call to [`next`](Self::next) will return, when that is already decided:
    /// `None` if the collection is empty, if the cycle is over (the new order is not drawn yet),
    /// or if ids were added (one of them may be placed first).
    pub fn peek<'a>(&'a self, ids: &[&str]) -> Option<&'a str> {
        let current = collection(ids);
        let known = self.known();
        if current.iter().any(|id| !known.contains(id)) {
            return None;
        }
        self.upcoming()
            .iter()
            .map(String::as_str)
            .find(|id| current.contains(id))
    }

    /// How many insights of `ids` are still to be shown before the collection starts over.
    pub fn remaining_in_cycle(&self, ids: &[&str]) -> usize {
        let current = collection(ids);
        let known = self.known();
        let upcoming = self
            .upcoming()
            .iter()
            .filter(|id| current.contains(id.as_str()))
            .count();
        upcoming + current.iter().filter(|id| !known.contains(*id)).count()
    }

    /// A stored `shown` larger than `order` (a hand-edited row, say) means "all shown".
    fn shown_clamped(&self) -> usize {
        self.shown.min(self.order.len())
    }

    fn upcoming(&self) -> &[String] {
        &self.order[self.shown_clamped()..]
    }

    fn known(&self) -> HashSet<&str> {
        self.order.iter().map(String::as_str).collect()
    }

    /// This cycle brought up to date with the collection: removed ids dropped from the upcoming
    /// part, new ids inserted at uniformly random places in it. Inserting one at a time at a
    /// uniform position is the insertion form of a shuffle, so the upcoming order stays a
    /// uniformly random order of everything not yet shown.
    fn reconciled<R: Rng + ?Sized>(&self, current: &BTreeSet<&str>, rng: &mut R) -> RotationState {
        let shown = self.shown_clamped();
        let known = self.known();
        let mut seen_upcoming = HashSet::new();
        let mut upcoming: Vec<String> = self.order[shown..]
            .iter()
            // `insert` also drops duplicates a corrupted row might hold.
            .filter(|id| current.contains(id.as_str()) && seen_upcoming.insert(id.as_str()))
            .cloned()
            .collect();
        for id in current.iter().filter(|id| !known.contains(*id)) {
            let at = rng.gen_range(0..=upcoming.len());
            upcoming.insert(at, (*id).to_string());
        }
        let mut order = self.order[..shown].to_vec();
        order.extend(upcoming);
        RotationState {
            cycle: self.cycle,
            order,
            shown,
            last: self.last.clone(),
        }
    }

    /// A fresh shuffled cycle over the whole collection.
    fn new_cycle<R: Rng + ?Sized>(&self, current: &BTreeSet<&str>, rng: &mut R) -> RotationState {
        let mut order: Vec<String> = current.iter().map(|id| (*id).to_string()).collect();
        order.shuffle(rng);
        // Avoid a back-to-back repeat across the cycle boundary by swapping the offender with a
        // uniformly chosen other position. Every permutation not starting with `last` stays
        // equally likely (each is reached directly, or from exactly one rejected permutation with
        // probability 1/(n-1)), so no insight is favoured to open a cycle.
        if order.len() > 1 && self.last.as_deref() == Some(order[0].as_str()) {
            let j = rng.gen_range(1..order.len());
            order.swap(0, j);
        }
        RotationState {
            cycle: self.cycle.saturating_add(1),
            order,
            shown: 0,
            last: self.last.clone(),
        }
    }
}

/// The collection as a sorted set: sorting makes the shuffle depend on which ids exist, not on
/// the order the data file happens to list them in.
fn collection<'a>(ids: &[&'a str]) -> BTreeSet<&'a str> {
    ids.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn make_ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("insight-{i:02}")).collect()
    }

    fn refs(ids: &[String]) -> Vec<&str> {
        ids.iter().map(String::as_str).collect()
    }

    /// `k` picks from `ids`, returning each pick with the cycle it belongs to.
    fn draw(
        state: &mut RotationState,
        ids: &[String],
        rng: &mut StdRng,
        k: usize,
    ) -> Vec<(String, u32)> {
        (0..k)
            .map(|_| {
                let (pick, next) = state.next(&refs(ids), rng).expect("non-empty collection");
                *state = next;
                (pick, state.cycle)
            })
            .collect()
    }

    /// The rest of cycle `cycle`: picks until the next pick would open a new cycle, leaving
    /// `state` just before that boundary.
    fn finish_cycle(
        state: &mut RotationState,
        ids: &[String],
        rng: &mut StdRng,
        cycle: u32,
    ) -> Vec<String> {
        let mut picks = Vec::new();
        for _ in 0..1000 {
            let (pick, next) = state.next(&refs(ids), rng).unwrap();
            if next.cycle != cycle {
                return picks;
            }
            picks.push(pick);
            *state = next;
        }
        panic!("cycle {cycle} never ended: {picks:?}");
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn empty_collection_gives_nothing() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(RotationState::default().next(&[], &mut rng), None);
        assert_eq!(RotationState::default().peek(&[]), None);
        // Emptying the collection mid-cycle also gives nothing (rather than a removed id).
        let (_, state) = RotationState::default()
            .next(&["a", "b"], &mut rng)
            .unwrap();
        assert_eq!(state.next(&[], &mut rng), None);
    }

    #[test]
    fn a_single_insight_repeats_with_a_new_cycle_each_time() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut state = RotationState::default();
        for cycle in 1..=3 {
            let (pick, next) = state.next(&["only"], &mut rng).unwrap();
            assert_eq!((pick.as_str(), next.cycle), ("only", cycle));
            state = next;
        }
    }

    #[test]
    fn two_insights_strictly_alternate() {
        // With two ids, "each once per cycle" plus "no repeat across the boundary" forces
        // a b a b ...: any back-to-back repeat would break one of the two rules.
        let mut rng = StdRng::seed_from_u64(3);
        let ids = make_ids(2);
        let picks = draw(&mut RotationState::default(), &ids, &mut rng, 40);
        for pair in picks.windows(2) {
            assert_ne!(pair[0].0, pair[1].0, "{picks:?}");
        }
    }

    #[test]
    fn orders_are_shuffled_not_fixed() {
        let ids = make_ids(6);
        let firsts: HashSet<String> = (0..60)
            .map(|seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                draw(&mut RotationState::default(), &ids, &mut rng, 1)[0]
                    .0
                    .clone()
            })
            .collect();
        assert_eq!(firsts.len(), 6, "every insight should sometimes come first");
    }

    #[test]
    fn same_seed_and_set_give_the_same_sequence_whatever_the_input_order() {
        let ids = make_ids(9);
        let mut reversed = ids.clone();
        reversed.reverse();
        let run = |ids: &[String]| {
            let mut rng = StdRng::seed_from_u64(42);
            draw(&mut RotationState::default(), ids, &mut rng, 27)
        };
        assert_eq!(run(&ids), run(&reversed));
        // and a different seed gives a different sequence (27 picks of 9: collision is ~1/9!^3)
        let mut rng = StdRng::seed_from_u64(43);
        assert_ne!(
            run(&ids),
            draw(&mut RotationState::default(), &ids, &mut rng, 27)
        );
    }

    #[test]
    fn added_insights_land_anywhere_in_the_rest_of_the_cycle() {
        // 10 upcoming + 1 new: the new one's place among the 11 should vary from first to last.
        let ids = make_ids(10);
        let mut with_new = ids.clone();
        with_new.push("new".into());
        let mut positions = BTreeSet::new();
        for seed in 0..300 {
            let mut rng = StdRng::seed_from_u64(seed);
            let (_, mut state) = RotationState::default()
                .next(&refs(&ids), &mut rng)
                .unwrap();
            let rest = finish_cycle(&mut state, &with_new, &mut rng, 1);
            positions.insert(rest.iter().position(|id| id == "new").unwrap());
        }
        assert_eq!(
            positions,
            (0..=9).collect(),
            "positions seen: {positions:?}"
        );
    }

    #[test]
    fn peek_tells_what_next_will_pick_when_it_is_decided() {
        let ids = make_ids(4);
        let mut rng = StdRng::seed_from_u64(5);
        let mut state = RotationState::default();
        // Before the first pick the order is not drawn yet.
        assert_eq!(state.peek(&refs(&ids)), None);
        for i in 0..3 {
            let (_, next) = state.next(&refs(&ids), &mut rng).unwrap();
            state = next;
            let peeked = state.peek(&refs(&ids)).map(str::to_string);
            let (pick, _) = state.next(&refs(&ids), &mut rng.clone()).unwrap();
            assert_eq!(peeked, Some(pick));
            if i == 0 {
                // Removing the peeked id moves peek on to the one after it.
                let (first, second) = (&state.order[1], &state.order[2]);
                let fewer: Vec<&str> = refs(&ids).into_iter().filter(|id| id != first).collect();
                assert_eq!(state.peek(&fewer), Some(second.as_str()));
                // With a new id, the next pick depends on where it lands.
                let mut more = ids.clone();
                more.push("new".into());
                assert_eq!(state.peek(&refs(&more)), None);
            }
        }
        // After the last pick of the cycle, the next cycle is not drawn yet.
        let (_, state) = state.next(&refs(&ids), &mut rng).unwrap();
        assert_eq!(state.remaining_in_cycle(&refs(&ids)), 0);
        assert_eq!(state.peek(&refs(&ids)), None);
    }

    #[test]
    fn remaining_counts_upcoming_and_new_but_not_removed() {
        let ids = make_ids(5);
        let mut rng = StdRng::seed_from_u64(9);
        let mut state = RotationState::default();
        draw(&mut state, &ids, &mut rng, 2);
        assert_eq!(state.remaining_in_cycle(&refs(&ids)), 3);
        let upcoming = state.upcoming()[0].clone();
        let mut changed: Vec<&str> = refs(&ids)
            .into_iter()
            .filter(|id| *id != upcoming)
            .collect();
        changed.push("new-a");
        changed.push("new-b");
        assert_eq!(state.remaining_in_cycle(&changed), 4);
    }

    #[test]
    fn an_id_removed_and_re_added_is_not_shown_twice_in_a_cycle() {
        let ids = make_ids(5);
        let mut rng = StdRng::seed_from_u64(11);
        let mut state = RotationState::default();
        let first = draw(&mut state, &ids, &mut rng, 1)[0].0.clone();
        let without: Vec<String> = ids.iter().filter(|id| **id != first).cloned().collect();
        let mut picks = vec![first.clone()];
        picks.extend(
            draw(&mut state, &without, &mut rng, 1)
                .into_iter()
                .map(|p| p.0),
        );
        picks.extend(finish_cycle(&mut state, &ids, &mut rng, 1));
        assert_eq!(sorted(picks), ids);
    }

    #[test]
    fn tolerates_a_corrupted_stored_state() {
        let ids = ["a", "b", "c"];
        let mut rng = StdRng::seed_from_u64(2);
        let broken = RotationState {
            cycle: 4,
            order: vec!["a".into(), "b".into(), "b".into(), "gone".into()],
            shown: 1,
            last: Some("a".into()),
        };
        let mut state = broken.clone();
        let mut picks = Vec::new();
        while state.cycle == 4 {
            let (pick, next) = state.next(&ids, &mut rng).unwrap();
            if next.cycle == 4 {
                picks.push(pick);
            }
            state = next;
        }
        assert_eq!(sorted(picks), ["b", "c"]);

        // `shown` past the end reads as "cycle over": a new cycle starts, and not with `last`.
        let overshot = RotationState {
            shown: 99,
            ..broken
        };
        let (pick, next) = overshot.next(&["a", "b"], &mut rng).unwrap();
        assert_eq!((pick.as_str(), next.cycle), ("b", 5));
    }

    #[test]
    fn state_is_plain_json_and_missing_fields_default() {
        let state = RotationState {
            cycle: 2,
            order: vec!["x".into(), "y".into()],
            shown: 1,
            last: Some("x".into()),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(
            json,
            r#"{"cycle":2,"order":["x","y"],"shown":1,"last":"x"}"#
        );
        let partial: RotationState = serde_json::from_str(r#"{"cycle":3}"#).unwrap();
        assert_eq!(
            partial,
            RotationState {
                cycle: 3,
                ..RotationState::default()
            }
        );
    }

    proptest! {
        #[test]
        fn three_cycles_each_show_everything_once(n in 1usize..40, seed: u64) {
            let ids = make_ids(n);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut state = RotationState::default();
            let mut previous_last: Option<String> = None;
            for cycle in 1..=3u32 {
                let mut picks = Vec::new();
                for _ in 0..n {
                    let (pick, next) = state.next(&refs(&ids), &mut rng).unwrap();
                    prop_assert_eq!(next.cycle, cycle);
                    let json = serde_json::to_string(&next).unwrap();
                    let back: RotationState = serde_json::from_str(&json).unwrap();
                    prop_assert_eq!(&back, &next);
                    picks.push(pick);
                    state = next;
                }
                if n > 1 {
                    if let Some(last) = &previous_last {
                        prop_assert_ne!(&picks[0], last);
                    }
                }
                previous_last = picks.last().cloned();
                prop_assert_eq!(sorted(picks), ids.clone());
            }
        }

        #[test]
        fn removed_ids_are_never_shown_again(
            n in 2usize..40,
            seed: u64,
            shown_frac in 0.0f64..1.0,
            removed in proptest::collection::vec(any::<bool>(), 40),
        ) {
            let ids = make_ids(n);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut state = RotationState::default();
            let k = (shown_frac * n as f64) as usize;
            let before: Vec<String> = draw(&mut state, &ids, &mut rng, k).into_iter().map(|p| p.0).collect();
            let mut kept: Vec<String> =
                ids.iter().zip(&removed).filter(|(_, r)| !**r).map(|(id, _)| id.clone()).collect();
            if kept.is_empty() {
                kept.push(ids[0].clone());
            }
            let gone: HashSet<&String> = ids.iter().filter(|id| !kept.contains(id)).collect();

            let cycle = state.cycle.max(1);
            let after = finish_cycle(&mut state, &kept, &mut rng, cycle);
            for id in &after {
                prop_assert!(!gone.contains(id), "removed {id} was shown");
            }
            // The cycle is what was shown before the change plus every kept id not yet shown.
            let mut expected: BTreeSet<String> = before.iter().cloned().collect();
            expected.extend(kept.iter().cloned());
            let mut cycle_picks = before.clone();
            cycle_picks.extend(after);
            prop_assert_eq!(sorted(cycle_picks), expected.into_iter().collect::<Vec<_>>());

            // The next cycle is exactly the remaining collection.
            let next = draw(&mut state, &kept, &mut rng, kept.len());
            prop_assert!(next.iter().all(|(_, c)| *c == cycle + 1));
            prop_assert_eq!(sorted(next.into_iter().map(|p| p.0).collect()), sorted(kept));
        }

        #[test]
        fn added_ids_join_the_current_cycle(
            n in 1usize..40,
            m in 1usize..10,
            seed: u64,
            shown_frac in 0.0f64..=1.0,
        ) {
            let ids = make_ids(n);
            let mut rng = StdRng::seed_from_u64(seed);
            let mut state = RotationState::default();
            let k = ((shown_frac * n as f64) as usize).clamp(1, n);
            let before: Vec<String> = draw(&mut state, &ids, &mut rng, k).into_iter().map(|p| p.0).collect();
            let mut grown = ids.clone();
            grown.extend((0..m).map(|i| format!("added-{i}")));

            let after = finish_cycle(&mut state, &grown, &mut rng, 1);
            prop_assert_eq!(after.len(), n - k + m);
            let mut cycle_picks = before;
            cycle_picks.extend(after);
            prop_assert_eq!(sorted(cycle_picks), sorted(grown.clone()));
        }
    }
}
