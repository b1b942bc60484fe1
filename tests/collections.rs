//! Each server's collection (`insight_bot::collections`), without Discord: what a server sees,
//! how a change reaches the next answer, what survives a restart, and the near-duplicate check.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use insight_bot::collections::{
    CollectionError, Collections, Draft, MAX_OWN_INSIGHTS, NEAR_DUPLICATE,
};
use insight_bot::embedding::DIM;
use insight_bot::insights::search::semantic::InsightVectors;
use insight_bot::insights::{Insight, Source};
use insight_bot::store::{InsightSource, ServerInsight, Store, StoreError, StoredVectors};
use insight_bot::weekly::poster::ServerLibraries;
use insight_bot::weekly::rotation::RotationState;
use rand::SeedableRng;
use support::bot::{catalog, fresh_store, library_catalog};

const A: u64 = 1_100_000_000_000_000_001;
const B: u64 = 1_100_000_000_000_000_002;
const CURATOR: u64 = 42;

fn insight(id: &str, title: &str, text: &str, asks: &[&str]) -> Insight {
    Insight {
        id: id.into(),
        title: title.into(),
        text: text.into(),
        topics: vec!["meetings".into()],
        asks: asks.iter().map(|s| s.to_string()).collect(),
        source: Source {
            title: "Our handbook".into(),
            publisher: "Team".into(),
            url: None,
        },
        pack: None,
    }
}

fn offsites() -> Insight {
    insight(
        "remote-offsites",
        "Plan offsites around decisions, not activities",
        "A remote team's offsite is expensive time together. Decide beforehand which two or three \
         decisions need everyone in one room, put them on the first morning, and leave the \
         games for after. People remember an offsite for what it settled.",
        &["how do I plan an offsite for a remote team?"],
    )
}

async fn draft(collections: &Collections, insight: Insight) -> Draft {
    collections.prepare(vec![insight]).await.unwrap().remove(0)
}

fn ids(collections: &Arc<insight_bot::collections::ServerCollection>) -> HashSet<String> {
    collections
        .library()
        .insights()
        .iter()
        .map(|i| i.id.clone())
        .collect()
}

async fn best(collections: &Collections, guild: Option<u64>, question: &str) -> Option<String> {
    let collection = collections.get(guild).await.unwrap();
    let answer = collection.catalog().ask(question, 3).unwrap();
    answer.best().map(|m| m.insight.id.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_insight_answers_at_once_and_only_in_its_server() {
    let (store, _dir) = fresh_store();
    let collections = Collections::new(catalog(), store);
    let question =
        "we're planning our first offsite for a fully remote team, how do we make it worth it?";
    assert_ne!(
        best(&collections, Some(A), question).await.as_deref(),
        Some("remote-offsites")
    );
    let d = draft(&collections, offsites()).await;
    let outcome = collections
        .save(A, vec![d], CURATOR, Utc::now())
        .await
        .unwrap();
    assert_eq!((outcome.added, outcome.replaced), (1, 0));

    assert_eq!(
        best(&collections, Some(A), question).await.as_deref(),
        Some("remote-offsites")
    );
    // Shipped insights still answer in A: one ranking over both.
    assert_eq!(
        best(&collections, Some(A), "just made dir, now what")
            .await
            .as_deref(),
        Some("manager-to-director")
    );
    // Another server and DMs never see it.
    for place in [Some(B), None] {
        assert!(!ids(&collections.get(place).await.unwrap()).contains("remote-offsites"));
        assert_ne!(
            best(&collections, place, question).await.as_deref(),
            Some("remote-offsites")
        );
    }
    let a = collections.get(Some(A)).await.unwrap();
    assert_eq!(a.own().len(), 1);
    assert_eq!(a.library().len(), catalog().library().len() + 1);
    assert_eq!(
        a.origin("remote-offsites"),
        Some(insight_bot::collections::Origin::Own)
    );
    assert_eq!(
        a.origin("tour-of-duty"),
        Some(insight_bot::collections::Origin::Shipped)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_removals_reach_the_next_answer() {
    let (store, _dir) = fresh_store();
    let collections = Collections::new(catalog(), store);
    let d = draft(&collections, offsites()).await;
    collections
        .save(A, vec![d], CURATOR, Utc::now())
        .await
        .unwrap();
    // The same id, now about something else: replaced, not added.
    let edited = insight(
        "remote-offsites",
        "Name a decision owner for every cross-team dependency",
        "When two teams depend on each other, name one person who decides when they disagree.",
        &[],
    );
    let d = draft(&collections, edited).await;
    let outcome = collections
        .save(A, vec![d], CURATOR, Utc::now())
        .await
        .unwrap();
    assert_eq!((outcome.added, outcome.replaced), (0, 1));
    let a = collections.get(Some(A)).await.unwrap();
    assert_eq!(a.own().len(), 1);
    assert!(a.own()[0].title.starts_with("Name a decision owner"));
    assert_ne!(
        best(
            &collections,
            Some(A),
            "how do I plan an offsite for a remote team?"
        )
        .await
        .as_deref(),
        Some("remote-offsites"),
        "the old text no longer answers"
    );

    assert!(collections.remove(A, "remote-offsites").await.unwrap());
    assert!(!collections.remove(A, "remote-offsites").await.unwrap());
    let a = collections.get(Some(A)).await.unwrap();
    assert!(a.own().is_empty());
    assert_eq!(a.library().len(), catalog().library().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_insights_and_source_ours_change_what_a_server_sees() {
    let (store, _dir) = fresh_store();
    let collections = Collections::new(catalog(), store);
    assert!(collections
        .set_hidden(A, "manager-to-director", true)
        .await
        .unwrap());
    assert!(!collections
        .set_hidden(A, "manager-to-director", true)
        .await
        .unwrap());
    let a = collections.get(Some(A)).await.unwrap();
    assert!(!ids(&a).contains("manager-to-director"));
    assert_ne!(
        best(&collections, Some(A), "just made dir, now what")
            .await
            .as_deref(),
        Some("manager-to-director")
    );
    // Not in B, and the rotation's library follows the same rule.
    assert!(ids(&collections.get(Some(B)).await.unwrap()).contains("manager-to-director"));
    let weekly = collections.library_for(A).await.unwrap();
    assert!(weekly.get("manager-to-director").is_none());
    // Only shipped ids can be hidden.
    assert!(matches!(
        collections.set_hidden(A, "no-such-insight", true).await,
        Err(CollectionError::NotShipped(_))
    ));

    // Own only, with none: nothing to answer from, and no error.
    collections
        .set_source(A, InsightSource::Ours)
        .await
        .unwrap();
    let a = collections.get(Some(A)).await.unwrap();
    assert!(a.library().is_empty());
    let answer = a.catalog().ask("should I become a manager?", 3).unwrap();
    assert!(answer.no_close_match && answer.matches.is_empty());
    // Own only, with one: that one is the whole collection, for answers and the weekly post.
    let d = draft(&collections, offsites()).await;
    collections
        .save(A, vec![d], CURATOR, Utc::now())
        .await
        .unwrap();
    let weekly = collections.library_for(A).await.unwrap();
    let weekly_ids: Vec<&str> = weekly.insights().iter().map(|i| i.id.as_str()).collect();
    assert_eq!(weekly_ids, ["remote-offsites"]);
    assert!(collections
        .set_hidden(A, "manager-to-director", false)
        .await
        .unwrap());
    collections.set_source(A, InsightSource::All).await.unwrap();
    let a = collections.get(Some(A)).await.unwrap();
    assert_eq!(a.library().len(), catalog().library().len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_turned_off_leaves_a_servers_answers_and_rotation_and_joins_the_round_again_when_on()
{
    let (store, _dir) = fresh_store();
    let collections = Collections::new(library_catalog(), store);
    let in_pack = |pack: &str| -> HashSet<String> {
        library_catalog()
            .library()
            .insights()
            .iter()
            .filter(|i| i.pack == Some(pack))
            .map(|i| i.id.clone())
            .collect()
    };
    let hiring = in_pack("hiring");
    let served: Vec<&str> = collections.packs().iter().map(|(id, _)| *id).collect();
    assert_eq!(served.len(), 11, "{served:?}");
    assert!(collections.set_pack_on(A, "hiring", false).await.unwrap());
    assert!(!collections.set_pack_on(A, "hiring", false).await.unwrap());
    assert!(matches!(
        collections.set_pack_on(A, "no-such-pack", false).await,
        Err(CollectionError::UnknownPack(_))
    ));
    // A pack the operator does not serve cannot be turned on, but its ids stay reserved: a
    // server's own insight cannot take one and collide the day the pack is served.
    let (store, _dir2) = fresh_store();
    let seed_only = Collections::new(catalog(), store);
    assert!(matches!(
        seed_only.set_pack_on(A, "hiring", true).await,
        Err(CollectionError::UnknownPack(_))
    ));
    let hiring_id = hiring.iter().next().unwrap().clone();
    assert!(seed_only.is_shipped_id(&hiring_id));
    assert!(matches!(
        seed_only.set_hidden(A, &hiring_id, true).await,
        Err(CollectionError::NotShipped(_))
    ));
    let mut taken = offsites();
    taken.id = hiring_id.clone();
    let d = draft(&seed_only, taken).await;
    assert!(matches!(
        seed_only.save(A, vec![d], CURATOR, Utc::now()).await,
        Err(CollectionError::ShippedId(id)) if id == hiring_id
    ));
    // Hidden insights still count: a pack off and a hidden insight together.
    collections
        .set_hidden(A, "tour-of-duty", true)
        .await
        .unwrap();
    let a = collections.get(Some(A)).await.unwrap();
    assert!(ids(&a).is_disjoint(&hiring));
    assert!(!ids(&a).contains("tour-of-duty"));
    assert_eq!(
        a.library().len(),
        library_catalog().library().len() - hiring.len() - 1
    );
    assert!(ids(&collections.get(Some(B)).await.unwrap()).is_superset(&hiring));

    // The weekly rotation: a round begun without the pack ...
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let weekly = collections.library_for(A).await.unwrap();
    assert!(weekly.insights().iter().all(|i| !hiring.contains(&i.id)));
    let without: Vec<&str> = weekly.insights().iter().map(|i| i.id.as_str()).collect();
    let (first, state) = RotationState::default().next(&without, &mut rng).unwrap();
    assert!(!hiring.contains(&first));
    assert!(state.order.iter().all(|id| !hiring.contains(id)));
    // ... takes the pack's insights into what is left of it once the pack is on again.
    assert!(collections.set_pack_on(A, "hiring", true).await.unwrap());
    let weekly = collections.library_for(A).await.unwrap();
    assert!(
        weekly
            .insights()
            .iter()
            .filter(|i| hiring.contains(&i.id))
            .count()
            == hiring.len()
    );
    let with: Vec<&str> = weekly.insights().iter().map(|i| i.id.as_str()).collect();
    let (_, state) = state.next(&with, &mut rng).unwrap();
    assert_eq!(state.cycle, 1, "the same round");
    assert_eq!(
        state.order.iter().filter(|id| hiring.contains(*id)).count(),
        hiring.len(),
        "every insight of the pack joined this round"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_server_and_loads_without_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let collections = Collections::new(catalog(), Store::open(&path).unwrap());
        let d = draft(&collections, offsites()).await;
        collections
            .save(A, vec![d], CURATOR, Utc::now())
            .await
            .unwrap();
        collections
            .set_hidden(A, "tour-of-duty", true)
            .await
            .unwrap();
        collections.set_curator_role(A, Some(7)).await.unwrap();
        collections.set_review_channel(B, Some(8)).await.unwrap();
    }
    let collections = Arc::new(Collections::new(catalog(), Store::open(&path).unwrap()));
    let warm = collections.warm_up().await.unwrap();
    assert_eq!((warm.servers, warm.insights, warm.deferred), (1, 1, 0));
    assert_eq!(collections.loaded(), 1);
    let a = collections.get(Some(A)).await.unwrap();
    assert!(ids(&a).contains("remote-offsites"));
    assert!(!ids(&a).contains("tour-of-duty"));
    assert_eq!(a.settings().curator_role, Some(7));
    assert_eq!(
        best(
            &collections,
            Some(A),
            "how do I plan an offsite for a remote team?"
        )
        .await
        .as_deref(),
        Some("remote-offsites")
    );
    let b = collections.get(Some(B)).await.unwrap();
    assert_eq!(b.settings().review_channel, Some(8));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vectors_of_another_model_are_embedded_again_and_stored() {
    let (store, _dir) = fresh_store();
    let row = ServerInsight {
        guild_id: A,
        insight: offsites(),
        created_by: CURATOR,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        vectors: Some(StoredVectors {
            fingerprint: 1,
            bytes: vec![1, 2, 3],
        }),
    };
    store
        .blocking()
        .save_server_insights(A, &[row], 10)
        .unwrap();
    let collections = Arc::new(Collections::new(catalog(), store.clone()));
    assert_eq!(collections.warm_up().await.unwrap().deferred, 1);
    assert_eq!(
        best(
            &collections,
            Some(A),
            "how do I plan an offsite for a remote team?"
        )
        .await
        .as_deref(),
        Some("remote-offsites")
    );
    let stored = store.blocking().server_insights(A).unwrap();
    let vectors = stored[0].vectors.as_ref().unwrap();
    assert_eq!(
        vectors.fingerprint,
        catalog().searcher().embedder().fingerprint()
    );
    assert!(InsightVectors::decode(&vectors.bytes).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insight_stored_over_the_limits_is_cut_once_and_saved_so() {
    // Saved before the limits existed: 2,000 example questions and 40 topics. Loading it used
    // to embed all 2,000 again at every load.
    let (store, _dir) = fresh_store();
    let mut over = offsites();
    over.asks = (0..2000)
        .map(|i| format!("offsite question {i}?"))
        .collect();
    over.topics = (0..40).map(|i| format!("t{i}")).collect();
    let row = ServerInsight {
        guild_id: A,
        insight: over,
        created_by: CURATOR,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        vectors: None,
    };
    store
        .blocking()
        .save_server_insights(A, &[row], 10)
        .unwrap();
    let collections = Arc::new(Collections::new(catalog(), store.clone()));
    assert_eq!(collections.warm_up().await.unwrap().deferred, 1);
    let own = collections.get(Some(A)).await.unwrap().own().to_vec();
    assert_eq!(own[0].asks.len(), insight_bot::insights::MAX_ASKS);
    assert_eq!(own[0].topics.len(), insight_bot::insights::MAX_TOPICS);
    assert_eq!(
        own[0].asks[24], "offsite question 24?",
        "the first ones are kept"
    );
    // Saved cut, with vectors: the next process loads it without the model.
    let stored = store.blocking().server_insights(A).unwrap();
    assert_eq!(
        stored[0].insight.asks.len(),
        insight_bot::insights::MAX_ASKS
    );
    let again = Arc::new(Collections::new(catalog(), store.clone()));
    assert_eq!(again.warm_up().await.unwrap().deferred, 0);
}

/// A draft with made-up vectors: the limit is the store's to enforce, the model is not needed.
fn cheap_draft(n: usize) -> Draft {
    let mut v = [0f32; DIM];
    v[n % DIM] = 1.0;
    Draft {
        insight: insight(&format!("note-{n}"), &format!("Note {n}"), "Text.", &[]),
        vectors: InsightVectors::from_vectors(&[v]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_save_changes_nothing() {
    let (store, _dir) = fresh_store();
    let collections = Collections::new(catalog(), store.clone());
    collections
        .save(A, vec![cheap_draft(0)], CURATOR, Utc::now())
        .await
        .unwrap();
    let before = ids(&collections.get(Some(A)).await.unwrap());

    // Over the limit: refused whole, with the limit in the error.
    let too_many: Vec<Draft> = (1..=MAX_OWN_INSIGHTS).map(cheap_draft).collect();
    let error = collections
        .save(A, too_many, CURATOR, Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            CollectionError::Store(StoreError::Limit {
                limit: MAX_OWN_INSIGHTS,
                ..
            })
        ),
        "{error}"
    );
    assert!(error.to_string().contains("1000"), "{error}");
    // A shipped id: refused before anything is written.
    let mut shipped = cheap_draft(5);
    shipped.insight.id = "tour-of-duty".into();
    let error = collections
        .save(A, vec![cheap_draft(6), shipped], CURATOR, Utc::now())
        .await
        .unwrap_err();
    assert!(matches!(error, CollectionError::ShippedId(_)), "{error}");

    assert_eq!(ids(&collections.get(Some(A)).await.unwrap()), before);
    assert_eq!(store.blocking().server_insight_count(A).unwrap(), 1);
    // And a fresh process reading the database agrees.
    let reread = Collections::new(catalog(), store);
    assert_eq!(ids(&reread.get(Some(A)).await.unwrap()), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_duplicates_are_told_apart_from_neighbours() {
    let (store, _dir) = fresh_store();
    let collections = Collections::new(catalog(), store);
    let shipped = collections.get(None).await.unwrap();
    // Distinct shipped insights are not near-duplicates of each other.
    let mut closest = 0f32;
    for i in shipped.library().insights() {
        let d = draft(&collections, i.clone()).await;
        let (other, similarity) = shipped.catalog().nearest(&d.vectors, Some(&i.id)).unwrap();
        assert_ne!(other.id, i.id);
        closest = closest.max(similarity);
    }
    eprintln!("closest pair of shipped insights: {closest:.3}");
    assert!(
        closest < NEAR_DUPLICATE,
        "two shipped insights at {closest}"
    );

    // A reworded copy of one is.
    let reworded = insight(
        "delegate-with-trust",
        "Learning to trust and delegate",
        "Moving from hands-on contributor to leader is one of the hardest career shifts. You \
         have to deliberately step back from doing the work by learning to trust and delegate: \
         hire talented people, empower them, and get out of their way.",
        &[],
    );
    let d = draft(&collections, reworded).await;
    let (nearest, similarity) = shipped.catalog().nearest(&d.vectors, None).unwrap();
    assert_eq!(nearest.id, "trust-and-delegate", "{similarity}");
    eprintln!("a reworded copy: {similarity:.3}");
    assert!(similarity >= NEAR_DUPLICATE, "{similarity}");
    // Something new is not.
    let d = draft(&collections, offsites()).await;
    let (_, similarity) = shipped.catalog().nearest(&d.vectors, None).unwrap();
    assert!(similarity < NEAR_DUPLICATE, "{similarity}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_up_leaves_a_server_changed_meanwhile_as_it_is() {
    let (store, _dir) = fresh_store();
    let collections = Arc::new(Collections::new(catalog(), store));
    let d = draft(&collections, offsites()).await;
    collections
        .save(A, vec![d], CURATOR, Utc::now())
        .await
        .unwrap();
    collections
        .set_hidden(A, "tour-of-duty", true)
        .await
        .unwrap();
    let before = collections.get(Some(A)).await.unwrap();
    collections.warm_up().await.unwrap();
    let after = collections.get(Some(A)).await.unwrap();
    assert!(Arc::ptr_eq(&before, &after));
}
